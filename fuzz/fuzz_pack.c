/*
 * fuzz_pack.c -- libFuzzer harness for the check of a pack as it arrives
 * (src/repo/object.c: wv__pack_check, run by sync.c on every pack a push,
 * pull or clone copies; its frame and trailer checks are verify.c's too):
 * the input is a plain repository's pack, bytes a copy may receive from a
 * store it does not trust. It is named by the hash of its tail, as a
 * sound pack is, so that the checks past the name are reached.
 *
 * The check must return a status, never crash or read outside the input;
 * a pack it accepts has as many chunks checked as its trailer lists.
 * Chunks claiming more than 16 MiB are skipped here (the check allows up
 * to 1 GiB, manifest.c's bound on chunk_size, which is more than
 * libFuzzer's memory limit).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "object.h"
#include "repo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t none[1];
    wv_repo r;
    struct wv__pack_scratch ps = {0};
    struct wv__err err = {0};
    unsigned char id[32];
    char key[96] = "packs/00/"
                   "0000000000000000000000000000000000000000000000000000000"
                   "000000000";
    uint64_t n_chunks = 0;
    uint32_t n = 0;
    memset(&r, 0, sizeof r);
    r.uri = (char *)"fuzz";
    if (size == 0)
        data = none;
    if (size >= 20) {
        n = wv__le32(data + size - 12);
        uint64_t tlen = wv__pack_tail_len(&r, n);
        if (tlen <= size - 8) {
            const uint8_t *e = data + size - tlen;
            for (uint32_t i = 0; i < n; i++)
                if (wv__le64(e + (size_t)i * WV__PACK_ENTRY + 48) >
                    ((uint64_t)16 << 20))
                    return 0;
            wv__sha256_buf(e, (size_t)tlen, id);
            wv__pack_key(id, key);
        }
    }
    int rc = wv__pack_check(&r, key, data, size, &ps, &n_chunks, &err);
    if (rc == WV_OK && n_chunks != n)
        abort();
    if (rc != WV_OK && err.msg[0] == '\0')
        abort(); /* every refusal says why */
    wv__pack_scratch_release(&ps);
    return 0;
}
