/*
 * fuzz_onnx_template.c -- libFuzzer harness for the ONNX writer (onnx.c):
 * the template's ModelProto re-emitted field by field with its
 * initializers replaced (wv_save_opts.template_path). The writer reads
 * the template only from a file, so every input is written to a fresh
 * temporary directory as the template; the output (and any external data
 * file beside it) goes to the same directory, which is removed after.
 *
 * Two sets are saved over each template:
 *   - one or two float tensors named like typical initializers ("weight",
 *     "bias", "1", "w", ...; byte 0 of the input picks them), which most
 *     templates refuse (not an initializer, other dtype or shape);
 *   - the template's own initializers, when the reader loads it from
 *     memory, which reach the emitter itself.
 *
 * Properties: no crash, leak or sanitizer report; a refusal always comes
 * with a message; nothing is left in the temporary directory but what the
 * harness names (template, output, output.data), all removed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weightvault.h"

#define MAX_INPUT (256u << 10)

static const char *const names[] = {
    "weight", "bias", "1", "2", "w", "fc.weight", "conv1.bias", "float_typed",
};
#define N_NAMES (sizeof names / sizeof names[0])

static const float vals[24];

static void save_over(wv_model *m, const char *tpl, const char *out)
{
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    char data[600];
    so.format = WV_FMT_ONNX;
    so.template_path = tpl;
    int rc = wv_model_save(m, out, &so);
    if (rc != WV_OK && wv_model_errmsg(m)[0] == '\0') {
        fprintf(stderr, "onnx save refused (%d) without a message\n", rc);
        abort();
    }
    snprintf(data, sizeof data, "%s.data", out);
    unlink(out);
    unlink(data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[] = "/tmp/fuzz_onnx_tpl_XXXXXX";
    char tpl[sizeof dir + 16], out[sizeof dir + 16];
    wv_model *m = NULL, *own = NULL;
    wv_load_opts lo = WV_LOAD_OPTS_INIT;
    if (size > MAX_INPUT || mkdtemp(dir) == NULL)
        return 0;
    snprintf(tpl, sizeof tpl, "%s/t.onnx", dir);
    snprintf(out, sizeof out, "%s/o.onnx", dir);
    FILE *f = fopen(tpl, "wb");
    if (f == NULL)
        goto out;
    if (size > 0 && fwrite(data, 1, size, f) != size) {
        fclose(f);
        goto out;
    }
    fclose(f);

    /* One or two typical initializer names, shapes [4] or [2, 3]. */
    if (wv_model_new(&m) != WV_OK)
        goto out;
    unsigned sel = size > 0 ? data[0] : 0;
    uint64_t s1[1] = {4}, s2[2] = {2, 3};
    wv_model_add(m, names[sel % N_NAMES], WV_F32, sel & 8u ? 2 : 1,
                 sel & 8u ? s2 : s1, vals, (sel & 8u ? 6 : 4) * sizeof(float),
                 WV_DATA_BORROW);
    if (sel & 16u)
        wv_model_add(m, names[(sel >> 5) % N_NAMES], WV_F32, 1, s1, vals,
                     4 * sizeof(float), WV_DATA_BORROW);
    save_over(m, tpl, out);

    /* The template's own initializers, written back over it. */
    lo.format = WV_FMT_ONNX;
    if (size > 0 && wv_model_load_mem(data, size, &lo, &own) == WV_OK)
        save_over(own, tpl, out);
out:
    wv_model_free(m);
    wv_model_free(own);
    unlink(tpl);
    if (rmdir(dir) != 0) {
        fprintf(stderr, "%s: the writer left files behind\n", dir);
        abort();
    }
    return 0;
}
