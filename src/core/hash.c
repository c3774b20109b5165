/*
 * hash.c -- SHA-256 (OpenSSL libcrypto, which uses SHA-NI where the CPU has
 * it), SHA-1 (libcrypto too: only to check the checksums other formats
 * carry, such as ONNX external data's) and CRC-32 (zlib) behind small
 * wrappers, so only this file includes their headers.
 */
#include "core.h"

#include <openssl/evp.h>
#include <zlib.h>

/* Both digests are one libcrypto context behind a type of its own (so a
 * SHA-1 state cannot be handed where SHA-256 is wanted); md_* do the work. */
struct wv__sha256 {
    EVP_MD_CTX *ctx;
};
struct wv__sha1 {
    EVP_MD_CTX *ctx;
};

static EVP_MD_CTX *md_new(const EVP_MD *md)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c != NULL && EVP_DigestInit_ex(c, md, NULL) != 1) {
        EVP_MD_CTX_free(c);
        c = NULL;
    }
    return c;
}

static void md_update(EVP_MD_CTX *c, const void *p, size_t n)
{
    if (n)
        EVP_DigestUpdate(c, p, n);
}

static void md_final(EVP_MD_CTX *c, unsigned char *out)
{
    unsigned int len = 0;
    EVP_DigestFinal_ex(c, out, &len);
}

struct wv__sha256 *wv__sha256_new(void)
{
    struct wv__sha256 *h = wv__malloc(sizeof *h);
    if (h != NULL && (h->ctx = md_new(EVP_sha256())) == NULL) {
        wv__free(h);
        h = NULL;
    }
    return h;
}

void wv__sha256_update(struct wv__sha256 *h, const void *p, size_t n)
{
    md_update(h->ctx, p, n);
}

void wv__sha256_final(struct wv__sha256 *h, unsigned char out[32])
{
    md_final(h->ctx, out);
}

void wv__sha256_free(struct wv__sha256 *h)
{
    if (h == NULL)
        return;
    EVP_MD_CTX_free(h->ctx);
    wv__free(h);
}

void wv__sha256_buf(const void *p, size_t n, unsigned char out[32])
{
    unsigned int len = 32;
    EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

struct wv__sha1 *wv__sha1_new(void)
{
    struct wv__sha1 *h = wv__malloc(sizeof *h);
    if (h != NULL && (h->ctx = md_new(EVP_sha1())) == NULL) {
        wv__free(h);
        h = NULL;
    }
    return h;
}

void wv__sha1_update(struct wv__sha1 *h, const void *p, size_t n)
{
    md_update(h->ctx, p, n);
}

void wv__sha1_final(struct wv__sha1 *h, unsigned char out[20])
{
    md_final(h->ctx, out);
}

void wv__sha1_free(struct wv__sha1 *h)
{
    if (h == NULL)
        return;
    EVP_MD_CTX_free(h->ctx);
    wv__free(h);
}

uint32_t wv__crc32(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n > 0) {
        uInt step = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32(crc, b, step);
        b += step;
        n -= step;
    }
    return crc;
}
