/*
 * out.c -- printing text that came from a file or repository. Every plain
 * text print of a tensor name, key, metadata value, commit message, ref or
 * tag name, label or library message goes through cli_q / cli_text, which
 * escape control characters with the library's wv_escape (as git quotes
 * paths); --json output goes through cli_json_string, which escapes them
 * the JSON way.
 *
 * The results live in a small ring of buffers so that several can be
 * arguments of one printf; a result stays valid until RING more calls.
 *
 * Also helpers that wv log/show/diff and the web view share: a
 * checkpoint tensor's shape as text, what counts as a numeric metadata
 * value (a metric), and the list of a repository's branches and tags.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { RING = 8 };

static const char *escape_ring(const char *s, size_t n, unsigned flags)
{
    static char *ring[RING];
    static unsigned next;
    size_t need = wv_escape(NULL, 0, s, n, flags);
    /* Nothing to change and the whole string: print it as it is. */
    if (need == n && s[n] == '\0')
        return s;
    char *b = malloc(need + 1);
    if (b == NULL)
        return "(out of memory)";
    wv_escape(b, need + 1, s, n, flags);
    free(ring[next]);
    ring[next] = b;
    next = (next + 1) % RING;
    return b;
}

/* At most max bytes of s, not cutting a UTF-8 character in two. */
static size_t prefix_len(const char *s, size_t max)
{
    size_t n = strnlen(s, max), k = n;
    if (s[n] == '\0')
        return n;
    while (k > 0 && n - k < 3 && ((unsigned char)s[k] & 0xc0) == 0x80)
        k--;
    return ((unsigned char)s[k] & 0xc0) == 0x80 ? n : k;
}

const char *cli_q(const char *s)
{
    return escape_ring(s, strlen(s), WV_ESCAPE_QUOTE);
}

const char *cli_qn(const char *s, size_t max)
{
    return escape_ring(s, prefix_len(s, max), WV_ESCAPE_QUOTE);
}

const char *cli_text(const char *s)
{
    return escape_ring(s, strlen(s), 0);
}

const char *cli_textn(const char *s, size_t max)
{
    return escape_ring(s, prefix_len(s, max), 0);
}

void cli_ckpt_shape(const wv_checkpoint *c, size_t i, char *buf, size_t cap)
{
    const uint64_t *s = wv_checkpoint_tensor_shape(c, i);
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < wv_checkpoint_tensor_ndim(c, i) && o < cap; d++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%llu", d ? ", " : "",
                              (unsigned long long)s[d]);
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
}

bool cli_is_number(const char *s)
{
    char *end;
    if (s[0] == '\0' || strlen(s) > 40)
        return false;
    errno = 0;
    (void)strtod(s, &end);
    return *end == '\0' && errno == 0;
}

static int refs_add(void *arg, const char *name, const char *id)
{
    struct cli_refs *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        void *nv = realloc(l->v, cap * sizeof *l->v);
        if (nv == NULL)
            return WV_NOMEM;
        l->v = nv;
        l->cap = cap;
    }
    if ((l->v[l->n].name = strdup(name)) == NULL)
        return WV_NOMEM;
    snprintf(l->v[l->n].id, WV_ID_HEX, "%s", id);
    l->v[l->n].tag = l->collecting_tags;
    l->n++;
    return WV_OK;
}

int cli_refs_collect(wv_repo *r, struct cli_refs *l)
{
    l->collecting_tags = false;
    int rc = wv_repo_list_branches(r, refs_add, l);
    if (rc == WV_OK) {
        l->collecting_tags = true;
        rc = wv_repo_list_tags(r, refs_add, l);
    }
    return rc;
}

void cli_refs_release(struct cli_refs *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
    memset(l, 0, sizeof *l);
}
