/*
 * s3xml.c -- a bounded parser for the XML that S3 servers send back
 * (ListObjectsV2 pages, errors, multipart replies).
 *
 * The bytes come from the network, so nothing is trusted: the document is
 * at most 8 MiB, elements nest at most 32 deep, every tag must close in
 * order, there is exactly one root, and each captured text is at most 4096
 * bytes once unescaped, valid UTF-8 and free of NUL. The subset accepted
 * is what S3 writes: elements, attributes (skipped), text with the five
 * named entities and numeric character references, comments and
 * processing instructions (skipped). DOCTYPE and CDATA are refused: no
 * entity is ever defined, so none is ever expanded.
 *
 * The walker reports start tags, texts and end tags to a visitor. Callers
 * that act on entries (wv__s3xml_each) walk twice: first to check the
 * whole document, then to deliver, so a page that turns out malformed at
 * its end has not been half acted upon.
 */
#include "core.h"
#include "http.h"

#define XML_MAX_LEN ((size_t)8 << 20)
#define XML_MAX_DEPTH 32
#define XML_MAX_TEXT 4096
#define XML_MAX_FIELDS 8

enum { EV_START, EV_TEXT, EV_END };

typedef int (*xml_visit)(void *arg, int ev, int depth, const char *s,
                         size_t n);

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == ':' || c == '.' ||
           c == '-' || c >= 0x80;
}

/* Find the two- or three-byte terminator `t` at or after p. */
static const char *find(const char *p, const char *end, const char *t)
{
    size_t tl = strlen(t);
    while ((size_t)(end - p) >= tl) {
        if (memcmp(p, t, tl) == 0)
            return p;
        p++;
    }
    return NULL;
}

static bool text_ok(const char *s, size_t n);

static int xml_walk(const char *xml, size_t len, xml_visit v, void *arg)
{
    const char *p = xml, *end = xml + len;
    const char *stk[XML_MAX_DEPTH];
    size_t stl[XML_MAX_DEPTH];
    int d = 0, rc;
    bool root_done = false, root_seen = false;

    if (len > XML_MAX_LEN)
        return WV_CORRUPT;
    if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
        p += 3;
    while (p < end) {
        if (*p != '<') {
            const char *t = p;
            while (p < end && *p != '<')
                p++;
            if (d == 0) {
                for (const char *q = t; q < p; q++)
                    if (!is_ws(*q))
                        return WV_CORRUPT;
                continue;
            }
            if (!text_ok(t, (size_t)(p - t)))
                return WV_CORRUPT;
            if (v && (rc = v(arg, EV_TEXT, d, t, (size_t)(p - t))) != 0)
                return rc;
            continue;
        }
        size_t left = (size_t)(end - p);
        if (left >= 4 && memcmp(p, "<!--", 4) == 0) {
            const char *q = find(p + 4, end, "-->");
            if (q == NULL)
                return WV_CORRUPT;
            p = q + 3;
            continue;
        }
        if (left >= 2 && p[1] == '?') {
            const char *q = find(p + 2, end, "?>");
            if (q == NULL)
                return WV_CORRUPT;
            p = q + 2;
            continue;
        }
        if (left >= 2 && p[1] == '!')
            return WV_CORRUPT; /* DOCTYPE, CDATA */
        if (left >= 2 && p[1] == '/') {
            const char *n = p + 2, *q = n;
            while (q < end && name_char((unsigned char)*q))
                q++;
            size_t nl = (size_t)(q - n);
            while (q < end && is_ws(*q))
                q++;
            if (q >= end || *q != '>' || d == 0 || nl != stl[d - 1] ||
                memcmp(n, stk[d - 1], nl) != 0)
                return WV_CORRUPT;
            if (v && (rc = v(arg, EV_END, d, n, nl)) != 0)
                return rc;
            d--;
            if (d == 0)
                root_done = true;
            p = q + 1;
            continue;
        }
        /* A start tag. */
        const char *n = p + 1, *q = n;
        while (q < end && name_char((unsigned char)*q))
            q++;
        size_t nl = (size_t)(q - n);
        if (nl == 0 || root_done || d == XML_MAX_DEPTH)
            return WV_CORRUPT;
        bool closed = false;
        for (;;) { /* attributes, skipped */
            while (q < end && is_ws(*q))
                q++;
            if (q >= end)
                return WV_CORRUPT;
            if (*q == '>') {
                q++;
                break;
            }
            if (*q == '/') {
                if (end - q < 2 || q[1] != '>')
                    return WV_CORRUPT;
                q += 2;
                closed = true;
                break;
            }
            const char *an = q;
            while (q < end && name_char((unsigned char)*q))
                q++;
            if (q == an)
                return WV_CORRUPT;
            while (q < end && is_ws(*q))
                q++;
            if (q >= end || *q != '=')
                return WV_CORRUPT;
            q++;
            while (q < end && is_ws(*q))
                q++;
            if (q >= end || (*q != '"' && *q != '\''))
                return WV_CORRUPT;
            char quote = *q++;
            while (q < end && *q != quote && *q != '<')
                q++;
            if (q >= end || *q != quote)
                return WV_CORRUPT;
            q++;
        }
        stk[d] = n;
        stl[d] = nl;
        d++;
        root_seen = true;
        if (v && (rc = v(arg, EV_START, d, n, nl)) != 0)
            return rc;
        if (closed) {
            if (v && (rc = v(arg, EV_END, d, n, nl)) != 0)
                return rc;
            d--;
            if (d == 0)
                root_done = true;
        }
        p = q;
    }
    return d == 0 && root_seen ? WV_OK : WV_CORRUPT;
}

static void put_utf8(char *o, size_t *ol, uint32_t cp)
{
    if (cp < 0x80) {
        o[(*ol)++] = (char)cp;
    } else if (cp < 0x800) {
        o[(*ol)++] = (char)(0xc0 | (cp >> 6));
        o[(*ol)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        o[(*ol)++] = (char)(0xe0 | (cp >> 12));
        o[(*ol)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[(*ol)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        o[(*ol)++] = (char)(0xf0 | (cp >> 18));
        o[(*ol)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        o[(*ol)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[(*ol)++] = (char)(0x80 | (cp & 0x3f));
    }
}

/* Parse the reference at s[i] == '&' (at most 12 bytes to its ';'):
 * the character it stands for and the index after it. False if it is not
 * one of the five named entities or a valid numeric reference. */
static bool entity(const char *s, size_t n, size_t i, uint32_t *cp,
                   size_t *next)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"lt", '<'}, {"gt", '>'}, {"amp", '&'},
                 {"quot", '"'}, {"apos", '\''}};
    size_t j = i + 1;
    while (j < n && j - i <= 12 && s[j] != ';')
        j++;
    if (j >= n || s[j] != ';')
        return false;
    const char *e = s + i + 1;
    size_t el = j - i - 1;
    *next = j + 1;
    if (el >= 2 && e[0] == '#') {
        uint32_t v = 0;
        bool hex = e[1] == 'x';
        size_t k = hex ? 2 : 1;
        if (k == el)
            return false;
        for (; k < el; k++) {
            char h = e[k];
            int dv = h >= '0' && h <= '9' ? h - '0'
                   : hex && h >= 'a' && h <= 'f' ? h - 'a' + 10
                   : hex && h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
            if (dv < 0)
                return false;
            v = v * (hex ? 16 : 10) + (uint32_t)dv;
            if (v > 0x10ffff)
                return false;
        }
        if (v == 0 || (v >= 0xd800 && v <= 0xdfff))
            return false;
        *cp = v;
        return true;
    }
    for (size_t k = 0; k < sizeof named / sizeof named[0]; k++)
        if (strlen(named[k].name) == el &&
            memcmp(named[k].name, e, el) == 0) {
            *cp = (uint32_t)(unsigned char)named[k].c;
            return true;
        }
    return false;
}

/* Every text of the document: valid UTF-8, no NUL, references valid. */
static bool text_ok(const char *s, size_t n)
{
    if (memchr(s, '\0', n) != NULL || !wv__utf8_valid(s, n))
        return false;
    for (const char *a = memchr(s, '&', n); a != NULL;) {
        uint32_t cp;
        size_t next;
        if (!entity(s, n, (size_t)(a - s), &cp, &next))
            return false;
        a = next < n ? memchr(s + next, '&', n - next) : NULL;
    }
    return true;
}

/* Append the unescaped text s[0..n) (checked by text_ok) to out
 * (capacity cap, room for the NUL kept). WV_RANGE if it does not fit. */
static int unescape_append(char *out, size_t cap, size_t *olen,
                           const char *s, size_t n)
{
    size_t i = 0;
    if (cap == 0 || *olen >= cap)
        return WV_RANGE;
    while (i < n) {
        /* Room for what this step writes and the NUL: the limit is the
         * same however the text is spelled. */
        if (s[i] != '&') {
            if (cap - *olen < 2)
                return WV_RANGE;
            out[(*olen)++] = s[i++];
            continue;
        }
        uint32_t cp;
        size_t next;
        if (!entity(s, n, i, &cp, &next))
            return WV_CORRUPT;
        size_t need = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        if (cap - *olen < need + 1)
            return WV_RANGE;
        put_utf8(out, olen, cp);
        i = next;
    }
    out[*olen] = '\0';
    return WV_OK;
}

static bool name_is(const char *s, size_t n, const char *want)
{
    return strlen(want) == n && memcmp(s, want, n) == 0;
}

/* ---- root ---------------------------------------------------------------- */

struct root_ctx {
    char *name;
    size_t cap;
    bool done;
};

static int root_visit(void *arg, int ev, int depth, const char *s, size_t n)
{
    struct root_ctx *c = arg;
    if (ev == EV_START && depth == 1 && !c->done) {
        if (n >= c->cap)
            return WV_RANGE;
        memcpy(c->name, s, n);
        c->name[n] = '\0';
        c->done = true;
    }
    return 0;
}

int wv__s3xml_root(const char *xml, size_t len, char *name, size_t cap)
{
    struct root_ctx c = {name, cap, false};
    if (cap == 0)
        return WV_RANGE;
    name[0] = '\0';
    return xml_walk(xml, len, root_visit, &c);
}

/* ---- one field ----------------------------------------------------------- */

struct field_ctx {
    const char *want;
    char *out;
    size_t cap, olen;
    bool in, found;
};

static int field_visit(void *arg, int ev, int depth, const char *s, size_t n)
{
    struct field_ctx *c = arg;
    if (depth != 2)
        return 0;
    if (ev == EV_START && !c->found && name_is(s, n, c->want)) {
        c->in = true;
        c->found = true;
    } else if (ev == EV_TEXT && c->in) {
        return unescape_append(c->out, c->cap, &c->olen, s, n);
    } else if (ev == EV_END) {
        c->in = false;
    }
    return 0;
}

int wv__s3xml_field(const char *xml, size_t len, const char *name,
                    char *out, size_t cap)
{
    if (cap < 8)
        return WV_RANGE;
    struct field_ctx c = {name, out, cap, 0, false, false};
    out[0] = '\0';
    int rc = xml_walk(xml, len, field_visit, &c);
    if (rc != WV_OK)
        return rc;
    if (!wv__utf8_valid(out, c.olen))
        return WV_CORRUPT;
    return c.found ? WV_OK : WV_NOTFOUND;
}

/* ---- repeated entries ---------------------------------------------------- */

struct each_ctx {
    const char *elem;
    const char *const *fields;
    size_t n_fields;
    int (*cb)(void *arg, const char *const *vals);
    void *arg;
    bool deliver;
    bool in_elem;
    int cur; /* field being captured, -1 none */
    bool seen[XML_MAX_FIELDS];
    size_t olen[XML_MAX_FIELDS];
    char *text[XML_MAX_FIELDS]; /* XML_MAX_TEXT + 8 bytes each */
};

static int each_visit(void *arg, int ev, int depth, const char *s, size_t n)
{
    struct each_ctx *c = arg;
    if (depth == 2 && ev == EV_START && name_is(s, n, c->elem)) {
        c->in_elem = true;
        c->cur = -1;
        for (size_t i = 0; i < c->n_fields; i++) {
            c->seen[i] = false;
            c->olen[i] = 0;
            c->text[i][0] = '\0';
        }
        return 0;
    }
    if (!c->in_elem)
        return 0;
    if (depth == 2 && ev == EV_END) {
        const char *vals[XML_MAX_FIELDS];
        c->in_elem = false;
        for (size_t i = 0; i < c->n_fields; i++) {
            if (c->seen[i] && !wv__utf8_valid(c->text[i], c->olen[i]))
                return WV_CORRUPT;
            vals[i] = c->seen[i] ? c->text[i] : NULL;
        }
        return c->deliver ? c->cb(c->arg, vals) : 0;
    }
    if (depth == 3 && ev == EV_START) {
        c->cur = -1;
        for (size_t i = 0; i < c->n_fields; i++)
            if (!c->seen[i] && name_is(s, n, c->fields[i])) {
                c->seen[i] = true;
                c->cur = (int)i;
            }
    } else if (depth == 3 && ev == EV_TEXT && c->cur >= 0) {
        int k = c->cur;
        int rc = unescape_append(c->text[k], XML_MAX_TEXT + 1, &c->olen[k],
                                 s, n);
        return rc == WV_RANGE ? WV_CORRUPT : rc;
    } else if (depth == 3 && ev == EV_END) {
        c->cur = -1;
    }
    return 0;
}

int wv__s3xml_each(const char *xml, size_t len, const char *elem,
                   const char *const *fields, size_t n_fields,
                   int (*cb)(void *arg, const char *const *vals), void *arg)
{
    struct each_ctx c;
    int rc;
    if (n_fields > XML_MAX_FIELDS)
        return WV_MISUSE;
    memset(&c, 0, sizeof c);
    c.elem = elem;
    c.fields = fields;
    c.n_fields = n_fields;
    c.cb = cb;
    c.arg = arg;
    c.cur = -1;
    char *mem = wv__malloc((n_fields ? n_fields : 1) * (XML_MAX_TEXT + 8));
    if (mem == NULL)
        return WV_NOMEM;
    for (size_t i = 0; i < n_fields; i++)
        c.text[i] = mem + i * (XML_MAX_TEXT + 8);
    /* Check the whole document (entries included), then deliver. */
    rc = xml_walk(xml, len, each_visit, &c);
    if (rc == WV_OK) {
        c.deliver = true;
        c.in_elem = false;
        c.cur = -1;
        rc = xml_walk(xml, len, each_visit, &c);
    }
    wv__free(mem);
    return rc;
}

void wv__xml_escape(struct wv__buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': wv__buf_adds(b, "&amp;"); break;
        case '<': wv__buf_adds(b, "&lt;"); break;
        case '>': wv__buf_adds(b, "&gt;"); break;
        case '"': wv__buf_adds(b, "&quot;"); break;
        case '\'': wv__buf_adds(b, "&apos;"); break;
        default: wv__buf_addc(b, *s);
        }
    }
}
