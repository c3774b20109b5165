/*
 * common.c -- what the `wv` commands share: exit codes and usage errors,
 * the global options (--key-file, --max-expand, --allow-rollback) taken
 * out of argv before dispatch, loading a weights file, opening a
 * repository (with the passphrase prompt, which reads the terminal
 * without echo), and small formatting helpers. It calls only out.c (safe
 * text) and the public API; the cmd_*.c files, assist.c and web/ call it,
 * and no command file calls another.
 *
 * Secrets typed or read here are wiped as soon as the library has them and
 * never printed.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

/* ---- exit codes and usage errors ---------------------------------------- */

int cli_exit_code(int rc)
{
    /* A missing or wrong repository key, a refused signature, a rolled
     * back ref or trust list (access denied by a store stays 4). */
    if (rc == WV_AUTH_NO_KEY || rc == WV_AUTH_WRONG_KEY ||
        rc == WV_AUTH_SIGNATURE || rc == WV_AUTH_ROLLBACK)
        return EXIT_KEY;
    switch (wv_primary(rc)) {
    case WV_OK:
        return 0;
    case WV_CORRUPT:
    case WV_FORMAT:
    case WV_RANGE:
    case WV_UNSUPPORTED:
    case WV_EXISTS:
        return EXIT_BAD_INPUT;
    case WV_IO:
    case WV_NOTFOUND:
        return EXIT_IO;
    case WV_MISUSE:
        return EXIT_USAGE;
    case WV_CONFLICT:
        return EXIT_CONFLICT;
    default:
        return EXIT_OTHER;
    }
}

void cli_die(const char *msg)
{
    /* Library messages already start with the file name, and have their
     * control characters escaped; messages built here may not. */
    fprintf(stderr, "wv: %s\n", cli_text(msg));
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "wv%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'wv %s%s--help')\n", cmd ? cmd : "",
            cmd ? " " : "");
    return EXIT_USAGE;
}

int cli_repo_exit(int rc)
{
    if (wv_primary(rc) == WV_CONFLICT)
        return EXIT_CONFLICT;
    if (rc == WV_MISUSE)
        return EXIT_USAGE;
    return cli_exit_code(rc);
}

bool cli_want_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

/* ---- global options ----------------------------------------------------- */

const char *cli_key_file;
bool cli_allow_rollback;
/* --max-expand N (0: the library's default or $WV_MAX_EXPAND). */
static uint64_t cli_max_expand;

int cli_take_global_options(int *argc, char **argv)
{
    int out = 0, i = 0;
    for (; i < *argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            break; /* the rest, "--" included, is the command's */
        if (strcmp(a, "--allow-rollback") == 0) {
            cli_allow_rollback = true;
            continue;
        }
        if (strcmp(a, "--key-file") == 0) {
            if (i + 1 >= *argc)
                return cli_usage(NULL, "--key-file needs a FILE");
            cli_key_file = argv[++i]; /* whatever it looks like */
            continue;
        }
        if (strcmp(a, "--max-expand") == 0) {
            char *end = NULL;
            if (i + 1 >= *argc)
                return cli_usage(NULL, "--max-expand needs a number");
            errno = 0;
            unsigned long long v = strtoull(argv[++i], &end, 10);
            if (errno || end == argv[i] || *end || v == 0 || argv[i][0] == '-')
                return cli_usage(NULL, "--max-expand needs a positive "
                                       "integer, not '%s'", argv[i]);
            cli_max_expand = v;
            continue;
        }
        argv[out++] = argv[i];
    }
    while (i < *argc)
        argv[out++] = argv[i++];
    argv[out] = NULL;
    *argc = out;
    return 0;
}

/* ---- output helpers ----------------------------------------------------- */

void cli_json_string(FILE *o, const char *s)
{
    fputc('"', o);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", o); break;
        case '\\': fputs("\\\\", o); break;
        case '\n': fputs("\\n", o); break;
        case '\r': fputs("\\r", o); break;
        case '\t': fputs("\\t", o); break;
        case '\b': fputs("\\b", o); break;
        case '\f': fputs("\\f", o); break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                fprintf(o, "\\u%04x", *p);
            } else if (*p >= 0x80) {
                /* A whole character that wv_escape leaves as it is is
                 * valid, printable UTF-8; a C1 control is \u0080..; any
                 * other byte is not UTF-8 and JSON cannot carry it. */
                size_t k = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : 2;
                if (strnlen((const char *)p, k) == k &&
                    wv_escape(NULL, 0, (const char *)p, k, 0) == k) {
                    fwrite(p, 1, k, o);
                    p += k - 1;
                } else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] < 0xa0) {
                    fprintf(o, "\\u%04x", p[1]);
                    p++;
                } else {
                    fputs("\\ufffd", o);
                }
            } else {
                fputc(*p, o);
            }
        }
    }
    fputc('"', o);
}

void cli_shape_str(const wv_tensor *t, char *buf, size_t cap)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    const uint64_t *s = wv_tensor_shape(t);
    for (int i = 0; i < wv_tensor_ndim(t) && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%llu", i ? ", " : "",
                              (unsigned long long)s[i]);
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
}

void cli_human_bytes(uint64_t n, char *buf, size_t cap)
{
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%llu B", (unsigned long long)n);
    else
        snprintf(buf, cap, "%.1f %s", v, units[u]);
}

/* "5GB" (10^9), "500MB", "2GiB" (2^30), "4096": bytes, or 0 if invalid. */
uint64_t cli_parse_size(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || v == 0 || s[0] == '-')
        return 0;
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {{"", 1},           {"B", 1},
                 {"KB", 1000ull},   {"MB", 1000000ull},
                 {"GB", 1000000000ull}, {"TB", 1000000000000ull},
                 {"KiB", 1ull << 10}, {"MiB", 1ull << 20},
                 {"GiB", 1ull << 30}, {"TiB", 1ull << 40}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            uint64_t r;
            if (__builtin_mul_overflow((uint64_t)v, units[i].mult, &r))
                return 0;
            return r;
        }
    }
    return 0;
}

/* ---- loading files ------------------------------------------------------ */

bool cli_is_repo(const char *arg)
{
    struct stat st;
    char path[4096];
    if (strncmp(arg, "file://", 7) == 0)
        arg += 7;
    else if (strstr(arg, "://") != NULL)
        return true; /* a URI names a repository, never a weights file */
    if (stat(arg, &st) != 0 || !S_ISDIR(st.st_mode))
        return false;
    snprintf(path, sizeof path, "%s/config", arg);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* PATH (or REPO of PATH = REPO@REF) is a local repository, not a weights
 * file: say so, pointing at the commands that read repositories. */
static bool repo_not_file(const char *path)
{
    char *repo = NULL;
    const char *ref = NULL;
    bool is = false;
    if (strstr(path, "://") != NULL || cli_split_ref(path, &repo, &ref) != 0)
        return false;
    is = cli_is_repo(path) || (ref && cli_is_repo(repo));
    if (is)
        fprintf(stderr, "wv: %s: a weightvault repository, not a weights "
                        "file: see 'wv show %s' (its tensors), 'wv log %s' "
                        "or 'wv checkout %s -o FILE'\n",
                path, path, repo, path);
    free(repo);
    return is;
}

int cli_read_text(const char *path, size_t max, char **out)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t cap = 1 << 16, len = 0;
    int rc = WV_OK;
    *out = NULL;
    if (f == NULL) {
        fprintf(stderr, "wv: %s: %s\n", cli_q(path), strerror(errno));
        return WV_IO;
    }
    for (;;) {
        if (len + 1 >= cap || text == NULL) {
            if (text != NULL && cap >= max) {
                fprintf(stderr, "wv: %s: larger than %zu MiB\n", cli_q(path),
                        max >> 20);
                rc = WV_FORMAT;
                break;
            }
            char *nt = realloc(text, text ? cap * 2 : cap);
            if (nt == NULL) {
                fprintf(stderr, "wv: %s: out of memory\n", cli_q(path));
                rc = WV_NOMEM;
                break;
            }
            cap = text ? cap * 2 : cap;
            text = nt;
        }
        size_t got = fread(text + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                fprintf(stderr, "wv: %s: %s\n", cli_q(path),
                        strerror(errno ? errno : EIO));
                rc = WV_IO;
            }
            break;
        }
    }
    fclose(f);
    if (rc == WV_OK) {
        text[len] = '\0';
        if (strlen(text) != len) {
            fprintf(stderr, "wv: %s: not a text file\n", cli_q(path));
            rc = WV_FORMAT;
        }
    }
    if (rc != WV_OK) {
        free(text);
        return rc;
    }
    *out = text;
    return WV_OK;
}

int cli_load(const char *path, unsigned flags, wv_model **m)
{
    return cli_load_some(path, flags, NULL, 0, m);
}

int cli_load_some(const char *path, unsigned flags, const char *const *names,
                  size_t n_names, wv_model **m)
{
    char errbuf[WV_ERRBUF_SIZE] = "";
    wv_load_opts o = WV_LOAD_OPTS_INIT;
    /* Every command checks every checksum, even of mapped bytes. */
    o.flags = flags | WV_LOAD_CHECKSUMS;
    o.max_expand = cli_max_expand;
    o.names = names;
    o.n_names = n_names;
    o.errbuf = errbuf;
    o.errbuf_size = sizeof errbuf;
    int rc = wv_model_load(path, &o, m);
    if (rc != WV_OK && repo_not_file(path))
        return rc;
    if (rc != WV_OK)
        cli_die(errbuf[0] ? errbuf : wv_strerror(rc));
    /* What a reader left out of the set (Keras: objects of a full-model
     * file outside model_weights and optimizer_weights' weight_names). */
    const char *sk =
        rc == WV_OK ? wv_model_get_meta(*m, "keras.skipped_objects") : NULL;
    if (sk)
        fprintf(stderr, "wv: warning: %s: not read (not weights Keras "
                "lists): %s%s\n", cli_q(path), cli_textn(sk, 2000),
                strlen(sk) > 2000 ? "..." : "");
    return rc;
}

/* ---- repositories and secrets ------------------------------------------- */

int cli_split_ref(const char *arg, char **repo, const char **ref)
{
    const char *at = strrchr(arg, '@');
    /* "@" inside the authority of a URL (user@host) is not a ref: a ref
     * never contains '/' or ':'. */
    if (at && at[1] != '\0' && strpbrk(at + 1, "/:") == NULL) {
        *repo = strndup(arg, (size_t)(at - arg));
        *ref = at + 1;
    } else {
        *repo = strdup(arg);
        *ref = NULL;
    }
    return *repo ? 0 : -1;
}

int cli_open_repo(const char *uri, wv_repo **r)
{
    char eb[WV_ERRBUF_SIZE] = "", pass[1024], prompt[300];
    wv_open_opts o = WV_OPEN_OPTS_INIT;
    o.key_file = cli_key_file;
    o.errbuf = eb;
    o.errbuf_size = sizeof eb;
    int rc = wv_repo_open_ex(uri, &o, r);
    if (rc == WV_AUTH_NO_KEY) {
        /* No secret anywhere: ask the terminal, if there is one. */
        snprintf(prompt, sizeof prompt, "Passphrase for %.200s: ", uri);
        if (cli_prompt_secret(prompt, false, pass, sizeof pass) == 0) {
            o.passphrase = pass;
            eb[0] = '\0';
            rc = wv_repo_open_ex(uri, &o, r);
            cli_wipe(pass, sizeof pass);
        }
    }
    if (rc != WV_OK)
        cli_die(eb[0] ? eb : wv_strerror(rc));
    return rc;
}

void cli_wipe(void *p, size_t n)
{
    explicit_bzero(p, n);
}

/* One line from the terminal, echo off. */
static int read_tty(int fd, const char *prompt, char *buf, size_t cap)
{
    struct termios old, quiet;
    size_t n = 0;
    bool restore = tcgetattr(fd, &old) == 0;
    if (restore) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    if (write(fd, prompt, strlen(prompt)) < 0) {
        /* nothing to do: the read below still works */
    }
    int rc = -1;
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (c == '\n' || c == '\r') {
            rc = 0;
            break;
        }
        if (n + 1 < cap)
            buf[n++] = c;
    }
    buf[n] = '\0';
    if (restore)
        tcsetattr(fd, TCSAFLUSH, &old);
    return rc;
}

int cli_prompt_secret(const char *prompt, bool confirm, char *buf,
                      size_t cap)
{
    char again[1024];
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = read_tty(fd, prompt, buf, cap);
    if (rc == 0 && buf[0] == '\0') {
        const char m[] = "wv: an empty passphrase is not accepted\n";
        if (write(fd, m, sizeof m - 1) < 0) {
            /* the caller reports the failure */
        }
        rc = -1;
    }
    if (rc == 0 && confirm) {
        rc = read_tty(fd, "Again: ", again, sizeof again);
        if (rc == 0 && strcmp(again, buf) != 0) {
            const char m[] = "wv: the two passphrases differ\n";
            if (write(fd, m, sizeof m - 1) < 0) {
                /* the caller reports the failure */
            }
            rc = -1;
        }
        cli_wipe(again, sizeof again);
    }
    close(fd);
    if (rc != 0)
        cli_wipe(buf, cap);
    return rc;
}
