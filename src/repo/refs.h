/*
 * refs.h -- branch and tag refs as stored (refs.c): their store keys and
 * values, plain (the checkpoint id) or sealed (name, id, write counter and
 * the trust-list version they were written under).
 */
#ifndef WV_REFS_H
#define WV_REFS_H

#include "core.h"

#define WV__REF_RAW_MAX 512 /* a ref's stored value, either kind     */

/* Refs. The store key of branch or tag `name` (dir "heads" or "tags"):
 * refs/<dir>/<name>, or a keyed hash of it when encrypted. */
int wv__ref_key(const wv_repo *r, const char *dir, const char *name,
                char key[160]);
/* Read ref `key`: its value as stored (what a compare-and-swap compares:
 * in an encrypted repository a fresh nonce makes every write differ), the
 * checkpoint id it holds and, if name_cap, its name. `shown` names it in
 * messages (NULL: the key). WV_NOTFOUND passes through; a value that does
 * not decode or authenticate is WV_CORRUPT. */
int wv__ref_read(wv_repo *r, const char *key, const char *shown,
                 char raw[WV__REF_RAW_MAX], char id[65], char *name,
                 size_t name_cap);
/* The value to store for ref `key` named `name` holding `id`. */
int wv__ref_value(wv_repo *r, const char *key, const char *name,
                  const char *id, char out[WV__REF_RAW_MAX]);

/* The head of `branch` (ref key refkey; commit.c): its id ("" if the
 * branch does not exist) and its value as stored, which a compare-and-swap
 * expects. */
int wv__read_head(wv_repo *r, const char *refkey, const char *branch,
                  char head[65], char raw[WV__REF_RAW_MAX]);

#endif
