/*
 * serve.c -- wv serve (a read-only local web server over a repository)
 * and wv report (the same pages as one self-contained HTML file).
 *
 * HTTP comes from GNU libmicrohttpd (Debian: libmicrohttpd-dev). Why it:
 * it is a small C library made to be embedded in a C program, maintained
 * for two decades by the GNU project, packaged and security-updated by
 * Debian, with a parser that has been fuzzed and audited; it handles the
 * protocol (request parsing, limits, HEAD, keep-alive) so this file only
 * routes. We run it with one internal thread, so requests are served one
 * after the other: the repository handle is not shared between threads,
 * and a read-only viewer on localhost needs no more.
 *
 * Routes (GET and HEAD only; anything else is 405, any other path 404):
 *   /                        history
 *   /metrics[?mode=min|max]  metrics charts
 *   /commit/REF              a checkpoint
 *   /tensor?c=REF&t=NAME     statistics of one tensor
 *   /diff?a=REF&b=REF[&t=NAME]
 * REF must be a ref as the pages accept it (web_valid_ref), NAME a tensor
 * of that checkpoint; a bad parameter is 400. An error of the repository
 * (unreachable store, wrong key, damaged object) becomes an error page
 * and one log line on stderr; the server keeps running. Every response
 * forbids scripts through its Content-Security-Policy, although no page
 * has one.
 */
#include "web.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct server {
    const char *uri;
    wv_repo *r;
    int open_rc;      /* why r is NULL                                 */
    char open_err[WV_ERRBUF_SIZE];
    struct web w;
};

static const char serve_help[] =
    "usage: wv serve REPO [--port N] [--bind ADDR] [--mode min|max]\n"
    "\n"
    "Serve read-only web pages about repository REPO (any URI the other\n"
    "commands take: a directory, s3://, rados://; an encrypted one opens\n"
    "with --key-file, $WV_PASSPHRASE or $WV_KEY_FILE as usual) until\n"
    "interrupted:\n"
    "  /          branches, tags, every checkpoint newest first (message,\n"
    "             time, metadata, size, signer)\n"
    "  /metrics   each numeric metadata key over the commits of each\n"
    "             branch, the best commit marked as 'wv prune --keep-best'\n"
    "             picks it\n"
    "  /commit/REF  a checkpoint: metadata, tensors (dtype, shape,\n"
    "             parameters, bytes, shared with the parent or not) and\n"
    "             statistics per tensor (min, max, mean, std, zeros,\n"
    "             histogram), computed when asked and kept in memory\n"
    "  /diff?a=REF&b=REF  relative L2 change and max|a-b| per tensor as\n"
    "             sorted bar charts, and the histogram of the differences\n"
    "             of one tensor (&t=NAME)\n"
    "Pages are plain HTML with SVG charts: no script, nothing fetched from\n"
    "elsewhere. Only GET and HEAD are answered; no request changes the\n"
    "repository. One log line per request goes to stderr.\n"
    "\n"
    "  --port N     TCP port (default 8080; 0: any free port). The address\n"
    "               is printed as 'wv serve: http://ADDR:PORT/'\n"
    "  --bind ADDR  listen on ADDR (an IPv4 or IPv6 address; default\n"
    "               127.0.0.1, this machine only). Any other address makes\n"
    "               the repository readable by whoever reaches it: a\n"
    "               warning says so\n"
    "  --mode M     which end of every metric is best: min or max (default:\n"
    "               max for keys naming an accuracy or score, else min)\n";

static const char report_help[] =
    "usage: wv report REPO -o FILE [--mode min|max]\n"
    "\n"
    "Write the pages of 'wv serve' as one self-contained HTML file (no\n"
    "script, no external resource; for CI artifacts and sharing): the\n"
    "history, the metrics charts, each branch head with the statistics of\n"
    "its tensors, and the diff of the head of main (or of the first branch)\n"
    "against its parent. --mode as for 'wv serve'.\n";

static bool parse_mode(const char *s, int *mode)
{
    if (strcmp(s, "min") == 0)
        *mode = WV_PRUNE_MIN;
    else if (strcmp(s, "max") == 0)
        *mode = WV_PRUNE_MAX;
    else
        return false;
    return true;
}

/* ---- the server ----------------------------------------------------------- */

static void log_line(const char *method, const char *url, unsigned status,
                     const char *err)
{
    fprintf(stderr, "wv serve: %s %s %u%s%s\n", cli_q(method), cli_q(url),
            status, err && err[0] ? " " : "", err ? cli_text(err) : "");
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status,
                               struct wbuf *b, const char *method,
                               const char *url, const char *err)
{
    if (b->oom) {
        wb_release(b);
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        err = "out of memory";
        wb_puts(b, "out of memory\n");
    }
    struct MHD_Response *res = MHD_create_response_from_buffer(
        b->n, b->p ? b->p : (void *)"", b->p ? MHD_RESPMEM_MUST_FREE
                                              : MHD_RESPMEM_PERSISTENT);
    if (res == NULL) {
        wb_release(b);
        return MHD_NO;
    }
    b->p = NULL; /* MHD frees it */
    MHD_add_response_header(res, "Content-Type", "text/html; charset=utf-8");
    MHD_add_response_header(res, "Content-Security-Policy",
                            "default-src 'none'; style-src 'unsafe-inline'; "
                            "img-src data:; form-action 'self'");
    MHD_add_response_header(res, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(res, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(res, "Cache-Control", "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(res, "Allow", "GET, HEAD");
    enum MHD_Result r = MHD_queue_response(conn, status, res);
    MHD_destroy_response(res);
    log_line(method, url, status, err);
    return r;
}

static enum MHD_Result simple(struct MHD_Connection *conn, struct server *s,
                              unsigned status, const char *what,
                              const char *msg, const char *method,
                              const char *url)
{
    struct wbuf b = {0};
    web_open(&s->w, &b, what);
    web_error(&b, what, msg);
    web_close(&b);
    return respond(conn, status, &b, method, url, msg);
}

/* The repository, opened again if the first attempt failed for a reason
 * that may pass (an unreachable store); a key problem stays. */
static bool have_repo(struct server *s)
{
    if (s->r)
        return true;
    if (wv_primary(s->open_rc) == WV_AUTH)
        return false;
    wv_open_opts o = WV_OPEN_OPTS_INIT;
    o.key_file = cli_key_file;
    o.errbuf = s->open_err;
    o.errbuf_size = sizeof s->open_err;
    s->open_err[0] = '\0';
    s->open_rc = wv_repo_open_ex(s->uri, &o, &s->r);
    if (s->open_rc == WV_OK)
        s->w.r = s->r;
    else if (s->open_err[0] == '\0')
        snprintf(s->open_err, sizeof s->open_err, "%s",
                 wv_strerror(s->open_rc));
    return s->r != NULL;
}

static unsigned status_of(int rc)
{
    switch (wv_primary(rc)) {
    case WV_NOTFOUND: return MHD_HTTP_NOT_FOUND;
    case WV_IO: case WV_BACKEND: case WV_AUTH: case WV_CONFLICT:
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    case WV_UNSUPPORTED: case WV_MISUSE: return MHD_HTTP_BAD_REQUEST;
    default: return MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn,
                               const char *url, const char *method,
                               const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    struct server *s = cls;
    struct wbuf b = {0};
    int rc = WV_OK;
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;

    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return simple(conn, s, MHD_HTTP_METHOD_NOT_ALLOWED,
                      "Method not allowed",
                      "this server only reads: GET and HEAD", method, url);
    const char *a = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
                                                "a");
    const char *bb = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
                                                 "b");
    const char *c = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
                                                "c");
    const char *t = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
                                                "t");
    const char *mode = MHD_lookup_connection_value(
        conn, MHD_GET_ARGUMENT_KIND, "mode");
    enum { R_HISTORY, R_METRICS, R_COMMIT, R_TENSOR, R_DIFF } route;
    const char *ref = NULL;
    if (strcmp(url, "/") == 0)
        route = R_HISTORY;
    else if (strcmp(url, "/metrics") == 0)
        route = R_METRICS;
    else if (strncmp(url, "/commit/", 8) == 0 && web_valid_ref(url + 8))
        route = R_COMMIT, ref = url + 8;
    else if (strcmp(url, "/tensor") == 0)
        route = R_TENSOR;
    else if (strcmp(url, "/diff") == 0)
        route = R_DIFF;
    else
        return simple(conn, s, MHD_HTTP_NOT_FOUND, "Not found",
                      "no such page", method, url);
    /* parameters */
    int saved_mode = s->w.mode, m = -1;
    if ((route == R_TENSOR && (!c || !web_valid_ref(c) || !t || !t[0] ||
                               strlen(t) > 4096)) ||
        (route == R_DIFF && (!a || !bb || !web_valid_ref(a) ||
                             !web_valid_ref(bb) ||
                             (t && (!t[0] || strlen(t) > 4096)))) ||
        (mode && !parse_mode(mode, &m)))
        return simple(conn, s, MHD_HTTP_BAD_REQUEST, "Bad request",
                      "a parameter is missing or malformed (refs are "
                      "branch or tag names or checkpoint ids)",
                      method, url);
    if (!have_repo(s))
        return simple(conn, s, MHD_HTTP_SERVICE_UNAVAILABLE,
                      "Repository unavailable", s->open_err, method, url);
    if (m >= 0)
        s->w.mode = m;
    s->w.err[0] = '\0';
    web_open(&s->w, &b, route == R_HISTORY   ? "wv: history"
                        : route == R_METRICS ? "wv: metrics"
                        : route == R_DIFF    ? "wv: diff"
                                             : "wv: checkpoint");
    switch (route) {
    case R_HISTORY: rc = web_history(&s->w, &b); break;
    case R_METRICS: rc = web_metrics(&s->w, &b); break;
    case R_COMMIT: rc = web_checkpoint(&s->w, &b, ref, false); break;
    case R_TENSOR: rc = web_tensor(&s->w, &b, c, t); break;
    case R_DIFF: rc = web_diff(&s->w, &b, a, bb, t); break;
    }
    s->w.mode = saved_mode;
    if (rc != WV_OK) {
        wb_release(&b);
        return simple(conn, s, status_of(rc),
                      status_of(rc) == MHD_HTTP_NOT_FOUND ? "Not found"
                                                          : "Error",
                      s->w.err, method, url);
    }
    web_close(&b);
    return respond(conn, MHD_HTTP_OK, &b, method, url, NULL);
}

int cmd_serve(int argc, char **argv)
{
    const char *uri = NULL, *bind_addr = "127.0.0.1";
    long port = 8080;
    struct server s;
    struct sockaddr_storage sa;
    struct MHD_Daemon *d = NULL;
    sigset_t set;
    int rc = 0, sig;

    memset(&s, 0, sizeof s);
    s.w.mode = -1;
    if (cli_want_help(argc, argv)) {
        fputs(serve_help, stdout);
        return 0;
    }
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i];
        bool takes = strcmp(o, "--port") == 0 || strcmp(o, "--bind") == 0 ||
                     strcmp(o, "--mode") == 0;
        if (takes && i + 1 >= argc)
            return cli_usage("serve", "%s needs a value", o);
        if (strcmp(o, "--port") == 0) {
            char *end;
            errno = 0;
            port = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || errno || port < 0 || port > 65535)
                return cli_usage("serve", "--port takes 0..65535, not '%s'",
                                 argv[i]);
        } else if (strcmp(o, "--bind") == 0) {
            bind_addr = argv[++i];
        } else if (strcmp(o, "--mode") == 0) {
            if (!parse_mode(argv[++i], &s.w.mode))
                return cli_usage("serve", "--mode is min or max, not '%s'",
                                 argv[i]);
        } else if (o[0] == '-' && o[1]) {
            return cli_usage("serve", "unknown option '%s'", o);
        } else if (uri == NULL) {
            uri = o;
        } else {
            return cli_usage("serve", "one REPO only");
        }
    }
    if (uri == NULL)
        return cli_usage("serve", "missing REPO");
    memset(&sa, 0, sizeof sa);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;
    bool v6 = false;
    if (inet_pton(AF_INET, bind_addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, bind_addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        v6 = true;
    } else {
        return cli_usage("serve", "--bind takes an IPv4 or IPv6 address, "
                                  "not '%s'",
                         bind_addr);
    }
    bool loopback = v6 ? IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr)
                       : (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    if (!loopback)
        fprintf(stderr, "wv serve: warning: --bind %s lets anyone who can "
                        "reach that address read the repository's history, "
                        "metadata and tensor statistics (no authentication, "
                        "no TLS)\n",
                cli_q(bind_addr));
    s.uri = uri;
    s.w.uri = uri;
    /* No repository at that address (a missing directory, an empty
     * bucket prefix): the usual one-line error with its 'wv init' hint,
     * and no server. A wrong key or an unreachable store at start: the
     * server still runs and says so on every page (and in the log). */
    s.open_rc = cli_open_repo(uri, &s.r);
    if (wv_primary(s.open_rc) == WV_NOTFOUND) {
        rc = cli_exit_code(s.open_rc);
        goto out;
    }
    if (s.open_rc != WV_OK)
        snprintf(s.open_err, sizeof s.open_err, "%s: cannot open the "
                 "repository (%s); see the log",
                 uri, wv_strerror(s.open_rc));
    s.w.r = s.r;

    /* SIGINT/SIGTERM are taken by sigwait below; the daemon's thread
     * inherits the mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    signal(SIGPIPE, SIG_IGN);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
                             (v6 ? MHD_USE_IPv6 : 0),
                         (uint16_t)port, NULL, NULL, handler, &s,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                         MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "wv serve: cannot listen on %s port %ld: %s\n",
                cli_q(bind_addr), port, strerror(errno));
        rc = EXIT_IO;
        goto out;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("wv serve: http://%s%s%s:%u/\n", v6 ? "[" : "", bind_addr,
           v6 ? "]" : "", info ? (unsigned)info->port : (unsigned)port);
    fflush(stdout);
    while (sigwait(&set, &sig) != 0)
        ;
    fprintf(stderr, "wv serve: stopped (signal %d)\n", sig);
out:
    if (d)
        MHD_stop_daemon(d);
    web_cache_free(s.w.cache);
    wv_repo_close(s.r);
    return rc;
}

/* ---- wv report ------------------------------------------------------------ */

int cmd_report(int argc, char **argv)
{
    const char *uri = NULL, *out = NULL;
    struct web w;
    struct wbuf b = {0};
    struct cli_refs h = {0}; /* branches, then tags */
    int rc = WV_OK;

    memset(&w, 0, sizeof w);
    w.mode = -1;
    w.report = true;
    if (cli_want_help(argc, argv)) {
        fputs(report_help, stdout);
        return 0;
    }
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i];
        if ((strcmp(o, "-o") == 0 || strcmp(o, "--output") == 0 ||
             strcmp(o, "--mode") == 0) &&
            i + 1 >= argc)
            return cli_usage("report", "%s needs a value", o);
        if (strcmp(o, "-o") == 0 || strcmp(o, "--output") == 0) {
            out = argv[++i];
        } else if (strcmp(o, "--mode") == 0) {
            if (!parse_mode(argv[++i], &w.mode))
                return cli_usage("report", "--mode is min or max, not '%s'",
                                 argv[i]);
        } else if (o[0] == '-' && o[1]) {
            return cli_usage("report", "unknown option '%s'", o);
        } else if (uri == NULL) {
            uri = o;
        } else {
            return cli_usage("report", "one REPO only");
        }
    }
    if (uri == NULL || out == NULL)
        return cli_usage("report", "needs REPO and -o FILE");
    w.uri = uri;
    if ((rc = cli_open_repo(uri, &w.r)) != WV_OK)
        goto done;
    if ((rc = cli_refs_collect(w.r, &h)) != WV_OK) {
        cli_die(rc == WV_NOMEM ? "out of memory" : wv_repo_errmsg(w.r));
        goto done;
    }
    w.anchors = &h;
    web_open(&w, &b, "wv report");
    if ((rc = web_history(&w, &b)) == WV_OK &&
        (rc = web_metrics(&w, &b)) == WV_OK) {
        for (size_t i = 0; i < h.n && !h.v[i].tag && rc == WV_OK; i++)
            rc = web_checkpoint(&w, &b, h.v[i].id, true);
    }
    /* the diff of main's head (else the first branch's) with its parent */
    size_t pick = 0;
    for (size_t i = 0; i < h.n && !h.v[i].tag; i++)
        if (strcmp(h.v[i].name, "main") == 0)
            pick = i;
    if (rc == WV_OK && h.n && !h.v[0].tag) {
        wv_checkpoint *c = NULL;
        rc = wv_repo_stat(w.r, h.v[pick].id, &c);
        if (rc == WV_OK && wv_checkpoint_parent(c)[0]) {
            rc = web_diff(&w, &b, wv_checkpoint_parent(c), h.v[pick].id,
                          NULL);
            if (rc == WV_NOTFOUND) /* a pruned parent: no diff section */
                rc = WV_OK;
        } else if (rc != WV_OK) {
            snprintf(w.err, sizeof w.err, "%s", wv_repo_errmsg(w.r));
        }
        wv_checkpoint_free(c);
    }
    if (rc != WV_OK) {
        fprintf(stderr, "wv: %s\n", cli_text(w.err));
        goto done;
    }
    web_close(&b);
    if ((rc = web_write_file(out, &b)) == WV_OK)
        printf("wrote %s (%zu bytes)\n", cli_q(out), b.n);
done:
    cli_refs_release(&h);
    wb_release(&b);
    web_cache_free(w.cache);
    wv_repo_close(w.r);
    return cli_exit_code(rc);
}
