/*
 * fuzz_zip.c -- libFuzzer harness for the zip container reader and writer
 * (src/formats/zip.c), which npz and PyTorch files share.
 *
 * Every input is opened as a zip from memory. For an archive that opens,
 * every member is extracted (stored members are CRC-checked against a copy,
 * deflated ones inflated to exactly their declared size), then the members
 * are written into a new archive through the streaming writer (alternating
 * stored with 64-byte alignment and deflated), which must reopen and give
 * back the same names and bytes. Any difference abort()s.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zip.h"

struct member {
    char *name;
    unsigned char *data;
    size_t len;
};

static void check_roundtrip(const struct member *m, size_t n)
{
    char path[64];
    struct wv__err err = {0};
    struct wv__wfile f;
    struct wv__zipw w;
    snprintf(path, sizeof path, "/tmp/wv-fuzz-zip-%ld.zip", (long)getpid());
    if (wv__wfile_open(&f, path, &err) != WV_OK)
        abort();
    wv__zipw_init(&w, &f, &err);
    for (size_t i = 0; i < n; i++) {
        int method = i % 2 ? WV__ZIP_DEFLATED : WV__ZIP_STORED;
        if (wv__zipw_begin(&w, m[i].name, method, m[i].len,
                           method == WV__ZIP_STORED ? 64 : 1) != WV_OK)
            abort();
        wv__zipw_write(&w, m[i].data, m[i].len);
        if (wv__zipw_end(&w) != WV_OK)
            abort();
    }
    if (wv__zipw_finish(&w) != WV_OK)
        abort();
    wv__zipw_release(&w);
    if (wv__wfile_commit(&f) != WV_OK)
        abort();

    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        abort();
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc(sz > 0 ? (size_t)sz : 1);
    if (buf == NULL || fread(buf, 1, (size_t)sz, fp) != (size_t)sz)
        abort();
    fclose(fp);
    unlink(path);
    struct wv__src src = {.fd = -1, .size = (uint64_t)sz, .map = buf,
                          .name = "roundtrip"};
    struct wv__zip z;
    if (wv__zip_open(&z, &src, &err) != WV_OK || z.n_ents != n)
        abort();
    for (size_t i = 0; i < n; i++) {
        const unsigned char *d;
        void *owned;
        if (strcmp(z.ents[i].name, m[i].name) != 0 ||
            wv__zip_entry_data(&z, &z.ents[i], &d, &owned, &err) != WV_OK ||
            z.ents[i].size != m[i].len ||
            (m[i].len && memcmp(d, m[i].data, m[i].len) != 0))
            abort();
        wv__free(owned);
    }
    wv__zip_close(&z);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wv__err err = {0};
    struct wv__src src = {.fd = -1, .size = size,
                          .map = size ? data : (const uint8_t *)"",
                          .name = "input"};
    struct wv__zip z;
    if (wv__zip_open(&z, &src, &err) != WV_OK) {
        wv__zip_close(&z);
        return 0;
    }
    struct member *m = calloc(z.n_ents + 1, sizeof *m);
    size_t n = 0;
    bool ok = m != NULL;
    for (size_t i = 0; ok && i < z.n_ents; i++) {
        const unsigned char *d;
        void *owned;
        if (wv__zip_entry_data(&z, &z.ents[i], &d, &owned, &err) != WV_OK) {
            ok = false; /* a damaged member: refused, fine */
            break;
        }
        m[n].name = strdup(z.ents[i].name);
        m[n].len = (size_t)z.ents[i].size;
        m[n].data = malloc(m[n].len ? m[n].len : 1);
        if (m[n].name == NULL || m[n].data == NULL)
            abort();
        if (m[n].len)
            memcpy(m[n].data, d, m[n].len);
        n++;
        wv__free(owned);
    }
    wv__zip_close(&z);
    if (ok)
        check_roundtrip(m, n);
    for (size_t i = 0; i < n; i++) {
        free(m[i].name);
        free(m[i].data);
    }
    free(m);
    return 0;
}
