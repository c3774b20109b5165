/*
 * cmd_history.c -- wv log, wv show, wv diff, wv tag, wv branch: reading a
 * repository's history and managing its refs.
 *
 * Everything here goes through the public API. log and show read
 * manifests only (wv_repo_stat); show --hash and diff read tensor data
 * through wv_repo_checkout, which verifies every chunk. Text output is for
 * people; --json prints one JSON document for scripts, with the key sets
 * documented in the help texts (they only ever grow).
 */
#include "cli.h"
#include "web/web.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define HASH_BATCH ((uint64_t)256 << 20)

/* Open REPO of "REPO[@REF]"; *ref is NULL without one. */
static int open_target(const char *target, wv_repo **r, char **uri,
                       const char **ref)
{
    if (cli_split_ref(target, uri, ref) != 0)
        return WV_NOMEM;
    return cli_open_repo(*uri, r);
}

static int finish(int rc)
{
    if (fflush(stdout) != 0 && rc == WV_OK) {
        fprintf(stderr, "wv: writing output failed: %s\n", strerror(errno));
        rc = WV_IO;
    }
    return cli_exit_code(rc);
}

static void json_meta(const wv_checkpoint *c)
{
    printf("{");
    for (size_t i = 0; i < wv_checkpoint_meta_count(c); i++) {
        const char *k, *v;
        wv_checkpoint_meta(c, i, &k, &v);
        printf("%s", i ? ", " : "");
        cli_json_string(stdout, k);
        printf(": ");
        cli_json_string(stdout, v);
    }
    printf("}");
}

/* "id", "parent", "time", "branch", "message" members (no braces). */
static void json_head(const wv_checkpoint *c)
{
    printf("\"id\": \"%s\", \"parent\": ", wv_checkpoint_id(c));
    if (wv_checkpoint_parent(c)[0])
        printf("\"%s\"", wv_checkpoint_parent(c));
    else
        printf("null");
    printf(", \"time\": ");
    cli_json_string(stdout, wv_checkpoint_time(c));
    printf(", \"branch\": ");
    cli_json_string(stdout, wv_checkpoint_branch(c));
    printf(", \"message\": ");
    cli_json_string(stdout, wv_checkpoint_message(c));
}

/* ---- refs pointing at a checkpoint, for decorations -------------------- */

static int collect_refs(wv_repo *r, struct cli_refs *l)
{
    int rc = cli_refs_collect(r, l);
    if (rc != WV_OK)
        cli_die(rc == WV_NOMEM ? "out of memory" : wv_repo_errmsg(r));
    return rc;
}

/* ---- wv log ------------------------------------------------------------- */

static const char log_help[] =
    "usage: wv log REPO[@REF] [-n N] [--stat] [--json]\n"
    "       wv log REPO --all [-n N] [--stat] [--json]\n"
    "       wv log REPO --pending [--json]\n"
    "\n"
    "Show the history of REF (a branch, 'latest' = the head of main, a tag\n"
    "or an id prefix; default latest), newest first, following parents.\n"
    "With --all, the history of every branch and tag together, newest\n"
    "first, each checkpoint once.\n"
    "Each checkpoint shows its id, the branches and tags pointing at it, its\n"
    "time (UTC), the branch it was committed on, its numeric metadata (step,\n"
    "epoch, metrics such as val_loss; other metadata such as a config is\n"
    "shown by 'wv show') and its message. The history ends at the first\n"
    "checkpoint, or where a parent was pruned (said on the last line). Only\n"
    "manifests are read, never tensor data.\n"
    "\n"
    "  -n N     show at most N checkpoints\n"
    "  --stat   also what each checkpoint takes in the store (the chunk\n"
    "           index is read): the stored bytes of the chunks its parent\n"
    "           does not have (what committing it added) against their\n"
    "           plain size, the stored bytes of all its chunks, and the\n"
    "           codecs of the new chunks (xor-bg-zstd: deltas against the\n"
    "           parent's chunks) with the longest delta chain; with --json\n"
    "           a member \"storage\": {\"chunks\", \"stored_bytes\",\n"
    "           \"new_chunks\", \"new_stored_bytes\", \"new_raw_bytes\",\n"
    "           \"max_chain\", \"new_by_codec\": {\"none\": {\"chunks\",\n"
    "           \"stored_bytes\"}, \"zstd\", \"bg-zstd\", \"xor-bg-zstd\"}}\n"
    "  --all    every branch and tag, not only REF (the branches and tags\n"
    "           pointing at a checkpoint follow its id, as '(main, run2,\n"
    "           tag: best)'; 'wv branch REPO' lists the branches)\n"
    "  --json   print one JSON array instead, newest first, for scripts:\n"
    "           [{\"id\": \"<64 hex>\", \"parent\": \"<64 hex>\" or null,\n"
    "             \"time\": \"2026-11-28T14:00:00Z\", \"branch\": \"main\",\n"
    "             \"message\": \"...\", \"refs\": [\"main\", \"tag:best\"],\n"
    "             \"metadata\": {\"step\": \"100\", ...}, \"tensors\": 12,\n"
    "             \"nbytes\": 1048576}, ...]\n"
    "           with \"parent_missing\": true on a checkpoint whose parent\n"
    "           was pruned. metadata holds every entry.\n"
    "  --pending  list the unfinished multi-writer checkpoints instead: per\n"
    "           transaction its branch, name, the parts stored of the\n"
    "           writers expected and the time of the oldest part (a writer\n"
    "           that died leaves its transaction here until 'wv finish' or\n"
    "           'wv gc --pending-timeout' removes it); with --json\n"
    "           [{\"branch\", \"txn\", \"parts\", \"writers\", \"oldest\"}]\n";

struct pending_out {
    bool json;
    size_t n;
};

static int print_pending(void *arg, const char *branch, const char *txn,
                         uint32_t n_writers, uint32_t n_parts,
                         const char *oldest)
{
    struct pending_out *o = arg;
    if (o->json) {
        printf("%s{\"branch\": ", o->n ? ",\n " : "");
        cli_json_string(stdout, branch);
        printf(", \"txn\": ");
        cli_json_string(stdout, txn);
        printf(", \"parts\": %u, \"writers\": %u, \"oldest\": ", n_parts,
               n_writers);
        cli_json_string(stdout, oldest);
        printf("}");
    } else {
        printf("%-20s  %-24s  %u of %u parts  oldest %s\n", cli_q(branch),
               cli_q(txn), n_parts, n_writers, cli_text(oldest));
    }
    o->n++;
    return 0;
}

/* wv log REPO --pending */
static int log_pending(wv_repo *r, bool json)
{
    struct pending_out o = {json, 0};
    if (json)
        printf("[");
    int rc = wv_repo_list_pending(r, print_pending, &o);
    if (rc != WV_OK) {
        if (json)
            printf("]\n");
        fflush(stdout);
        cli_die(wv_repo_errmsg(r));
        return rc;
    }
    if (json)
        printf("]\n");
    else if (o.n == 0)
        printf("no unfinished multi-writer checkpoints\n");
    return WV_OK;
}

static void print_refs_text(const struct cli_refs *l, const char *id)
{
    bool any = false;
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i].id, id) != 0)
            continue;
        printf("%s%s%s", any ? ", " : " (", l->v[i].tag ? "tag: " : "",
               cli_q(l->v[i].name));
        any = true;
    }
    if (any)
        printf(")");
}

static const char *const codec_names[4] = {"none", "zstd", "bg-zstd",
                                           "xor-bg-zstd"};

/* What checkpoint c takes in the store (wv log --stat, wv show): as JSON
 * members (", \"storage\": {...}") or as text lines with `pad` after
 * the labels. A failure is reported and returned. */
static int print_storage(wv_repo *r, const wv_checkpoint *c, bool json,
                         const char *pad)
{
    wv_checkpoint_storage st = WV_CHECKPOINT_STORAGE_INIT;
    int rc = wv_repo_storage(r, wv_checkpoint_id(c), &st);
    if (rc != WV_OK) {
        fflush(stdout);
        cli_die(wv_repo_errmsg(r));
        return rc;
    }
    if (json) {
        printf(", \"storage\": {\"chunks\": %llu, \"stored_bytes\": %llu, "
               "\"new_chunks\": %llu, \"new_stored_bytes\": %llu, "
               "\"new_raw_bytes\": %llu, \"max_chain\": %d, "
               "\"new_by_codec\": {",
               (unsigned long long)st.chunks,
               (unsigned long long)st.stored_bytes,
               (unsigned long long)st.new_chunks,
               (unsigned long long)st.new_stored_bytes,
               (unsigned long long)st.new_raw_bytes, st.max_chain);
        for (int k = 0; k < 4; k++)
            printf("%s\"%s\": {\"chunks\": %llu, \"stored_bytes\": %llu}",
                   k ? ", " : "", codec_names[k],
                   (unsigned long long)st.new_by_codec[k],
                   (unsigned long long)st.new_stored_by_codec[k]);
        printf("}}");
        return WV_OK;
    }
    char a[32], b[32], t[32];
    cli_human_bytes(st.new_stored_bytes, a, sizeof a);
    cli_human_bytes(st.new_raw_bytes, b, sizeof b);
    cli_human_bytes(st.stored_bytes, t, sizeof t);
    printf("stored:%s%s new (of %s, %.2fx) in %llu chunks; %s in all\n", pad,
           a, b,
           st.new_stored_bytes
               ? (double)st.new_raw_bytes / (double)st.new_stored_bytes
               : 0.0,
           (unsigned long long)st.new_chunks, t);
    printf("codecs:%s", pad);
    bool any = false;
    for (int k = 0; k < 4; k++) {
        if (st.new_by_codec[k] == 0)
            continue;
        cli_human_bytes(st.new_stored_by_codec[k], a, sizeof a);
        printf("%s%s %llu (%s)", any ? ", " : "", codec_names[k],
               (unsigned long long)st.new_by_codec[k], a);
        any = true;
    }
    printf("%s", any ? "" : "(no new chunks)");
    if (st.max_chain)
        printf("; longest delta chain %d", st.max_chain);
    printf("\n");
    return WV_OK;
}

/* One checkpoint of the log; with `stat` (r not NULL) what it takes in
 * the store too. */
static int log_entry(wv_repo *r, const wv_checkpoint *c,
                     const struct cli_refs *l, bool json, bool first,
                     bool parent_missing)
{
    if (json) {
        printf("%s\n {", first ? "" : ",");
        json_head(c);
        printf(", \"refs\": [");
        bool any = false;
        for (size_t i = 0; i < l->n; i++) {
            if (strcmp(l->v[i].id, wv_checkpoint_id(c)) != 0)
                continue;
            char name[160];
            snprintf(name, sizeof name, "%s%s", l->v[i].tag ? "tag:" : "",
                     l->v[i].name);
            printf("%s", any ? ", " : "");
            cli_json_string(stdout, name);
            any = true;
        }
        printf("], \"metadata\": ");
        json_meta(c);
        printf(", \"tensors\": %zu, \"nbytes\": %llu",
               wv_checkpoint_tensor_count(c),
               (unsigned long long)wv_checkpoint_total_bytes(c));
        if (parent_missing)
            printf(", \"parent_missing\": true");
        int rc = r ? print_storage(r, c, true, "") : WV_OK;
        if (rc != WV_OK)
            return rc;
        printf("}");
        return WV_OK;
    }
    if (!first)
        printf("\n");
    printf("checkpoint %s", wv_checkpoint_id(c));
    print_refs_text(l, wv_checkpoint_id(c));
    printf("\ntime:     %s\nbranch:   %s\n", cli_text(wv_checkpoint_time(c)),
           cli_q(wv_checkpoint_branch(c)));
    bool any = false;
    for (size_t i = 0; i < wv_checkpoint_meta_count(c); i++) {
        const char *k, *v;
        wv_checkpoint_meta(c, i, &k, &v);
        if (!cli_is_number(v) || strlen(k) > 40)
            continue;
        printf("%s%s=%s", any ? " " : "metrics:  ", cli_q(k), cli_text(v));
        any = true;
    }
    if (any)
        printf("\n");
    char hb[32];
    cli_human_bytes(wv_checkpoint_total_bytes(c), hb, sizeof hb);
    printf("tensors:  %zu (%s)\n", wv_checkpoint_tensor_count(c), hb);
    int rc = r ? print_storage(r, c, false, "   ") : WV_OK;
    if (rc != WV_OK)
        return rc;
    if (wv_checkpoint_message(c)[0]) {
        printf("\n");
        const char *m = wv_checkpoint_message(c);
        while (*m) {
            size_t n = strcspn(m, "\n");
            printf("    %s\n", cli_textn(m, n));
            m += n + (m[n] == '\n');
        }
    }
    return WV_OK;
}

/* wv log --all: the histories of every ref merged, newest first (by
 * time; a child before its parent), each checkpoint once. The frontier
 * holds the next checkpoint of each line of history not shown yet. */
static int log_all(wv_repo *r, const struct cli_refs *refs, bool json,
                   long limit, bool stat)
{
    wv_checkpoint **front = NULL;
    char (*seen)[WV_ID_HEX] = NULL;
    size_t n_front = 0, n_seen = 0, cap_seen = 0;
    long shown = 0;
    int rc = WV_OK;

    front = calloc(refs->n + 1, sizeof *front);
    if (front == NULL) {
        rc = WV_NOMEM;
        goto out;
    }
    /* One frontier entry per distinct ref target; "seen" holds every id
     * that ever entered the frontier. */
    for (size_t i = 0; i < refs->n + 1; i++) {
        const char *id = i < refs->n ? refs->v[i].id : NULL;
        if (id == NULL)
            break;
        bool dup = false;
        for (size_t k = 0; k < n_seen && !dup; k++)
            dup = strcmp(seen[k], id) == 0;
        if (dup)
            continue;
        if (n_seen == cap_seen) {
            size_t nc = cap_seen ? cap_seen * 2 : 64;
            void *ns = realloc(seen, nc * sizeof *seen);
            if (ns == NULL) {
                rc = WV_NOMEM;
                goto out;
            }
            seen = ns;
            cap_seen = nc;
        }
        snprintf(seen[n_seen++], WV_ID_HEX, "%s", id);
        if ((rc = wv_repo_stat(r, id, &front[n_front])) != WV_OK) {
            cli_die(wv_repo_errmsg(r));
            goto out;
        }
        n_front++;
    }
    if (json)
        printf("[");
    while (n_front > 0 && (limit < 0 || shown < limit)) {
        size_t b = 0;
        for (size_t i = 1; i < n_front; i++)
            if (strcmp(wv_checkpoint_time(front[i]),
                       wv_checkpoint_time(front[b])) > 0)
                b = i;
        wv_checkpoint *c = front[b];
        const char *parent = wv_checkpoint_parent(c);
        bool missing = false, again = false;
        wv_checkpoint *p = NULL;
        for (size_t k = 0; parent[0] && k < n_seen && !again; k++)
            again = strcmp(seen[k], parent) == 0;
        if (parent[0] && !again) {
            rc = wv_repo_stat(r, parent, &p);
            if (rc == WV_NOTFOUND) {
                missing = true;
                rc = WV_OK;
            } else if (rc != WV_OK) {
                if (json)
                    printf("]\n");
                fflush(stdout);
                cli_die(wv_repo_errmsg(r));
                goto out;
            }
        }
        if ((rc = log_entry(stat ? r : NULL, c, refs, json, shown == 0,
                            missing)) != WV_OK) {
            wv_checkpoint_free(p);
            goto out;
        }
        shown++;
        if (missing && !json)
            printf("\n(history of this line stops here: parent %.12s was "
                   "pruned)\n",
                   parent);
        if (p) {
            if (n_seen == cap_seen) {
                size_t nc = cap_seen * 2;
                void *ns = realloc(seen, nc * sizeof *seen);
                if (ns == NULL) {
                    wv_checkpoint_free(p);
                    rc = WV_NOMEM;
                    goto out;
                }
                seen = ns;
                cap_seen = nc;
            }
            snprintf(seen[n_seen++], WV_ID_HEX, "%s", wv_checkpoint_id(p));
            wv_checkpoint_free(c);
            front[b] = p;
        } else {
            wv_checkpoint_free(c);
            front[b] = front[--n_front];
        }
    }
    if (json)
        printf("%s]\n", shown ? "\n" : "");
out:
    if (rc == WV_NOMEM)
        cli_die("out of memory");
    for (size_t i = 0; i < n_front; i++)
        wv_checkpoint_free(front[i]);
    free(front);
    free(seen);
    return rc;
}

int cmd_log(int argc, char **argv)
{
    const char *target = NULL, *ref = NULL;
    char *uri = NULL;
    bool json = false, all = false, stat = false, pending = false;
    long limit = -1, shown = 0;
    wv_repo *r = NULL;
    wv_checkpoint *c = NULL, *p = NULL;
    struct cli_refs refs = {0};
    int rc = WV_OK;

    if (cli_want_help(argc, argv)) {
        fputs(log_help, stdout);
        return 0;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--all") == 0) {
            all = true;
        } else if (strcmp(a, "--stat") == 0) {
            stat = true;
        } else if (strcmp(a, "--pending") == 0) {
            pending = true;
        } else if (strcmp(a, "-n") == 0) {
            char *end;
            if (i + 1 >= argc)
                return cli_usage("log", "-n needs a value");
            errno = 0;
            limit = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || errno || limit < 0)
                return cli_usage("log", "-n takes a count, not '%s'",
                                 argv[i]);
        } else if (a[0] == '-' && a[1]) {
            return cli_unknown_option("log", log_help, a);
        } else if (target == NULL) {
            target = a;
        } else {
            return cli_usage("log", "unexpected argument '%s'", a);
        }
    }
    if (target == NULL)
        return cli_usage("log", "missing REPO[@REF]");
    if ((rc = open_target(target, &r, &uri, &ref)) != WV_OK)
        goto out;
    if (all && ref) {
        rc = WV_MISUSE;
        cli_usage("log", "--all shows every branch; drop the '@%s'", ref);
        goto out;
    }
    if (pending) {
        if (ref || all || stat || limit >= 0) {
            rc = WV_MISUSE;
            cli_usage("log", "--pending lists every branch's unfinished "
                             "checkpoints and takes only --json");
            goto out;
        }
        rc = log_pending(r, json);
        goto out;
    }
    if ((rc = collect_refs(r, &refs)) != WV_OK)
        goto out;
    if (all) {
        rc = log_all(r, &refs, json, limit, stat);
        goto out;
    }
    if ((rc = wv_repo_stat(r, ref ? ref : "latest", &c)) != WV_OK) {
        cli_die(wv_repo_errmsg(r));
        goto out;
    }
    if (json)
        printf("[");
    while (c && (limit < 0 || shown < limit)) {
        bool missing = false;
        p = NULL;
        if (wv_checkpoint_parent(c)[0] && (limit < 0 || shown + 1 < limit)) {
            rc = wv_repo_stat(r, wv_checkpoint_parent(c), &p);
            if (rc == WV_NOTFOUND) {
                missing = true;
                rc = WV_OK;
            } else if (rc != WV_OK) {
                log_entry(NULL, c, &refs, json, shown == 0, false);
                if (json)
                    printf("]\n");
                fflush(stdout);
                cli_die(wv_repo_errmsg(r));
                goto out;
            }
        }
        if ((rc = log_entry(stat ? r : NULL, c, &refs, json, shown == 0,
                            missing)) != WV_OK) {
            wv_checkpoint_free(p);
            goto out;
        }
        shown++;
        if (missing && !json)
            printf("\n(history stops here: parent %.12s was pruned)\n",
                   wv_checkpoint_parent(c));
        wv_checkpoint_free(c);
        c = p;
    }
    if (json)
        printf("\n]\n");
out:
    wv_checkpoint_free(c);
    cli_refs_release(&refs);
    wv_repo_close(r);
    free(uri);
    return finish(rc);
}

/* ---- wv show ------------------------------------------------------------ */

static const char show_help[] =
    "usage: wv show REPO[@REF] [--json] [--hash]\n"
    "\n"
    "Describe checkpoint REF (default latest): id, parent, time, branch,\n"
    "message, signer, metadata, then one row per tensor (name, dtype, shape,\n"
    "bytes) as 'wv inspect' prints a file, after what it takes in the store\n"
    "(as 'wv log --stat' shows it). Only the manifest, its parent's and the\n"
    "chunk index are read, unless --hash is given.\n"
    "\n"
    "The signer line appears for a checkpoint signed with 'wv commit\n"
    "--sign' whose signature verifies: the public key (64 hex digits; its\n"
    "first 16 are the id 'wv trust list' shows), and the label it is\n"
    "trusted under if the repository trusts it. A signature that does not\n"
    "verify shows no signer; 'wv verify' and checkouts report it.\n"
    "\n"
    "  --json   print one JSON object instead, in the 'wv inspect --json'\n"
    "           schema plus the checkpoint's fields:\n"
    "           {\"id\": \"<64 hex>\", \"parent\": \"<64 hex>\" or null,\n"
    "            \"time\": \"...\", \"branch\": \"main\",\n"
    "            \"message\": \"...\", \"signer\": \"<64 hex>\" or null,\n"
    "            \"format\": \"repository\", \"metadata\": {\"k\": \"v\"},\n"
    "            \"tensors\": [{\"name\": \"w\", \"dtype\": \"F32\",\n"
    "                         \"shape\": [2, 3], \"nbytes\": 24}],\n"
    "            \"storage\": {...} (as 'wv log --stat --json')}\n"
    "           Tensors carry no \"sha256\": the manifest knows the hashes\n"
    "           of chunks, not of whole tensors.\n"
    "  --hash   read every tensor (verified chunk by chunk) and add its\n"
    "           SHA-256 over the elements, as 'wv inspect --json' gives it:\n"
    "           a \"sha256\" member with --json, a column otherwise.\n"
    "\n"
    "A checkpoint written by several writers (wv_repo_commit_part, the\n"
    "Python weightvault.distributed) shows each tensor's global shape, the\n"
    "writers that stored it and its number of stored regions (shards), then\n"
    "each sharded tensor's regions: offset, shape and writer; with --json\n"
    "members \"writers\": [0, 1] and \"shards\": [{\"writer\": 0,\n"
    "\"offset\": [0, 0], \"shape\": [128, 64]}]. Unfinished multi-writer\n"
    "checkpoints of any branch are listed last (as 'wv log --pending').\n";

/* "0-3" or "0,2,5" (at most 8 listed) into buf. */
static void writers_str(const wv_checkpoint *c, size_t i, char *buf,
                        size_t cap)
{
    uint32_t w[64];
    size_t n = wv_checkpoint_tensor_writers(c, i, w, 64), len = 0;
    buf[0] = '\0';
    if (n == 0)
        return;
    bool run = n <= 64 && w[n - 1] - w[0] == n - 1;
    if (run && n > 1) {
        snprintf(buf, cap, "%u-%u", w[0], w[n - 1]);
        return;
    }
    for (size_t k = 0; k < n && k < 8 && len + 12 < cap; k++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%u", k ? "," : "",
                                w[k]);
    if (n > 8 && len + 4 < cap)
        snprintf(buf + len, cap - len, ",...");
}

static void dims_str(int nd, const uint64_t *v, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    len += (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < nd && len + 24 < cap; d++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%llu", d ? ", " : "",
                                (unsigned long long)v[d]);
    if (len + 2 < cap)
        snprintf(buf + len, cap - len, "]");
}

static bool multi_writer(const wv_checkpoint *c)
{
    for (size_t i = 0; i < wv_checkpoint_tensor_count(c); i++)
        if (wv_checkpoint_tensor_writers(c, i, NULL, 0))
            return true;
    return false;
}

/* Every writer (up to 65536) and every region; WV_NOMEM when the list of
 * writers cannot be had. */
static int json_shards(const wv_checkpoint *c, size_t i)
{
    size_t n = wv_checkpoint_tensor_writers(c, i, NULL, 0);
    uint32_t *w = malloc((n ? n : 1) * sizeof *w);
    if (w == NULL)
        return WV_NOMEM;
    wv_checkpoint_tensor_writers(c, i, w, n);
    int nd = wv_checkpoint_tensor_ndim(c, i);
    printf(", \"writers\": [");
    for (size_t k = 0; k < n; k++)
        printf("%s%u", k ? ", " : "", w[k]);
    free(w);
    printf("], \"shards\": [");
    for (size_t k = 0; k < wv_checkpoint_tensor_shards(c, i); k++) {
        const uint64_t *off, *shp;
        uint32_t wr;
        char a[256], b[256];
        if (wv_checkpoint_tensor_shard(c, i, k, &off, &shp, &wr) != WV_OK)
            break;
        dims_str(nd, off, a, sizeof a);
        dims_str(nd, shp, b, sizeof b);
        printf("%s{\"writer\": %u, \"offset\": %s, \"shape\": %s}",
               k ? ", " : "", wr, a, b);
    }
    printf("]");
    return WV_OK;
}

static int show_pending(void *arg, const char *branch, const char *txn,
                        uint32_t n_writers, uint32_t n_parts,
                        const char *oldest)
{
    size_t *n = arg;
    if ((*n)++ == 0)
        printf("\nunfinished multi-writer checkpoints ('wv finish', 'wv gc "
               "--pending-timeout'):\n");
    printf("  %s on %s: %u of %u parts, oldest %s\n", cli_q(txn),
           cli_q(branch), n_parts, n_writers, cli_text(oldest));
    return 0;
}

struct trusted_as {
    const char *key; /* 64 hex digits */
    char label[128];
    bool found;
};

static int find_trusted(void *arg, const wv_trusted_key *k)
{
    struct trusted_as *t = arg;
    if (strcmp(k->key, t->key) == 0) {
        snprintf(t->label, sizeof t->label, "%s", k->label);
        t->found = true;
    }
    return 0;
}

/* SHA-256 of every tensor of c, reading batches of about HASH_BATCH
 * bytes. */
static int hash_tensors(wv_repo *r, const wv_checkpoint *c,
                        unsigned char (*out)[32])
{
    size_t n = wv_checkpoint_tensor_count(c);
    const char **names = calloc(n + 1, sizeof *names);
    wv_model *m = NULL;
    int rc = WV_OK;
    if (names == NULL)
        return WV_NOMEM;
    for (size_t i = 0; i < n && rc == WV_OK;) {
        uint64_t bytes = 0;
        size_t j = i;
        while (j < n && (j == i || bytes + wv_checkpoint_tensor_nbytes(c, j)
                                           <= HASH_BATCH)) {
            bytes += wv_checkpoint_tensor_nbytes(c, j);
            names[j - i] = wv_checkpoint_tensor_name(c, j);
            j++;
        }
        wv_checkout_opts co = WV_CHECKOUT_OPTS_INIT;
        co.names = names;
        co.n_names = j - i;
        rc = wv_repo_checkout(r, wv_checkpoint_id(c), &co, &m);
        for (size_t k = i; k < j && rc == WV_OK; k++) {
            const wv_tensor *t =
                wv_model_find(m, wv_checkpoint_tensor_name(c, k));
            rc = t ? wv_tensor_sha256(t, out[k]) : WV_CORRUPT;
        }
        wv_model_free(m);
        m = NULL;
        i = j;
    }
    free(names);
    return rc;
}

int cmd_show(int argc, char **argv)
{
    const char *target = NULL, *ref = NULL;
    char *uri = NULL;
    bool json = false, hash = false;
    wv_repo *r = NULL;
    wv_checkpoint *c = NULL;
    unsigned char (*sums)[32] = NULL;
    int rc = WV_OK;

    if (cli_want_help(argc, argv)) {
        fputs(show_help, stdout);
        return 0;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0)
            json = true;
        else if (strcmp(a, "--hash") == 0)
            hash = true;
        else if (a[0] == '-' && a[1])
            return cli_unknown_option("show", show_help, a);
        else if (target == NULL)
            target = a;
        else
            return cli_usage("show", "unexpected argument '%s'", a);
    }
    if (target == NULL)
        return cli_usage("show", "missing REPO[@REF]");
    if ((rc = open_target(target, &r, &uri, &ref)) != WV_OK)
        goto out;
    if ((rc = wv_repo_stat(r, ref ? ref : "latest", &c)) != WV_OK) {
        cli_die(wv_repo_errmsg(r));
        goto out;
    }
    size_t n = wv_checkpoint_tensor_count(c);
    if (hash) {
        sums = calloc(n + 1, sizeof *sums);
        rc = sums ? hash_tensors(r, c, sums) : WV_NOMEM;
        if (rc != WV_OK) {
            cli_die(rc == WV_NOMEM ? "out of memory" : wv_repo_errmsg(r));
            goto out;
        }
    }
    const char *signer = wv_checkpoint_signer(c);
    struct trusted_as trusted = {signer, "", false};
    if (signer[0] && !json &&
        (rc = wv_repo_trust_list(r, find_trusted, &trusted)) != WV_OK) {
        cli_die(wv_repo_errmsg(r));
        goto out;
    }
    bool multi = multi_writer(c);
    if (json) {
        printf("{");
        json_head(c);
        printf(", \"signer\": ");
        if (signer[0])
            printf("\"%s\"", signer);
        else
            printf("null");
        printf(", \"format\": \"repository\", \"metadata\": ");
        json_meta(c);
        printf(", \"tensors\": [");
        for (size_t i = 0; i < n; i++) {
            char shape[256];
            cli_ckpt_shape(c, i, shape, sizeof shape);
            printf("%s{\"name\": ", i ? ", " : "");
            cli_json_string(stdout, wv_checkpoint_tensor_name(c, i));
            printf(", \"dtype\": \"%s\", \"shape\": %s, \"nbytes\": %llu",
                   wv_dtype_name(wv_checkpoint_tensor_dtype(c, i)), shape,
                   (unsigned long long)wv_checkpoint_tensor_nbytes(c, i));
            if (multi && (rc = json_shards(c, i)) != WV_OK) {
                printf("]}\n");
                cli_die("out of memory");
                goto out;
            }
            if (sums) {
                printf(", \"sha256\": \"");
                for (int k = 0; k < 32; k++)
                    printf("%02x", sums[i][k]);
                printf("\"");
            }
            printf("}");
        }
        printf("]");
        if ((rc = print_storage(r, c, true, "")) != WV_OK)
            goto out;
        printf("}\n");
        goto out;
    }
    char hb[32];
    cli_human_bytes(wv_checkpoint_total_bytes(c), hb, sizeof hb);
    printf("checkpoint: %s\n", wv_checkpoint_id(c));
    printf("parent:     %s\n", wv_checkpoint_parent(c)[0]
                                   ? wv_checkpoint_parent(c)
                                   : "(none)");
    printf("time:       %s\n", cli_text(wv_checkpoint_time(c)));
    printf("branch:     %s\n", cli_q(wv_checkpoint_branch(c)));
    printf("message:    %s\n", cli_text(wv_checkpoint_message(c)));
    if (signer[0] && trusted.found && trusted.label[0])
        printf("signer:     %s (trusted: %s)\n", signer, cli_q(trusted.label));
    else if (signer[0] && trusted.found)
        printf("signer:     %s (trusted)\n", signer);
    else if (signer[0])
        printf("signer:     %s\n", signer);
    printf("tensors:    %zu (%s)\n", n, hb);
    if ((rc = print_storage(r, c, false, "     ")) != WV_OK)
        goto out;
    size_t nm = wv_checkpoint_meta_count(c);
    printf("metadata:   %s\n", nm ? "" : "(none)");
    for (size_t i = 0; i < nm; i++) {
        const char *k, *v;
        wv_checkpoint_meta(c, i, &k, &v);
        size_t vl = strlen(v);
        printf("  %s = %s%s\n", cli_q(k), cli_textn(v, 200),
               vl > 200 ? "..." : "");
    }
    size_t w = 4;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(cli_q(wv_checkpoint_tensor_name(c, i)));
        if (l > w)
            w = l < 60 ? l : 60;
    }
    printf("\n%-*s  %-8s  %-20s  %-*s%s%s\n", (int)w, "name", "dtype",
           "shape", multi ? 12 : 0, "bytes", multi ? "  writers  shards" : "",
           sums ? "  sha256" : "");
    for (size_t i = 0; i < n; i++) {
        char shape[256], ws[128];
        cli_ckpt_shape(c, i, shape, sizeof shape);
        printf("%-*s  %-8s  %-20s  %-*llu", (int)w,
               cli_q(wv_checkpoint_tensor_name(c, i)),
               wv_dtype_name(wv_checkpoint_tensor_dtype(c, i)), shape,
               multi ? 12 : 0,
               (unsigned long long)wv_checkpoint_tensor_nbytes(c, i));
        if (multi) {
            writers_str(c, i, ws, sizeof ws);
            printf("  %-7s  %zu", ws, wv_checkpoint_tensor_shards(c, i));
        }
        if (sums) {
            printf("  ");
            for (int k = 0; k < 32; k++)
                printf("%02x", sums[i][k]);
        }
        printf("\n");
    }
    for (size_t i = 0; multi && i < n; i++) {
        size_t ns = wv_checkpoint_tensor_shards(c, i);
        if (ns < 2)
            continue;
        printf("\n%s: %zu regions\n", cli_q(wv_checkpoint_tensor_name(c, i)),
               ns);
        for (size_t k = 0; k < ns; k++) {
            const uint64_t *off, *shp;
            uint32_t wr;
            char a[256], b[256];
            if (wv_checkpoint_tensor_shard(c, i, k, &off, &shp, &wr) != WV_OK)
                break;
            dims_str(wv_checkpoint_tensor_ndim(c, i), off, a, sizeof a);
            dims_str(wv_checkpoint_tensor_ndim(c, i), shp, b, sizeof b);
            printf("  offset %-16s shape %-16s writer %u\n", a, b, wr);
        }
    }
    {
        size_t np = 0;
        if ((rc = wv_repo_list_pending(r, show_pending, &np)) != WV_OK) {
            cli_die(wv_repo_errmsg(r));
            goto out;
        }
    }
out:
    free(sums);
    wv_checkpoint_free(c);
    wv_repo_close(r);
    free(uri);
    return finish(rc);
}

/* ---- wv diff ------------------------------------------------------------ */

static const char diff_help[] =
    "usage: wv diff REPO A B [--json] [--all] [--no-values] [--html FILE]\n"
    "       wv diff REPO@A REPO@B [...]\n"
    "       wv diff REPO[@]B           (B against its parent)\n"
    "\n"
    "Compare checkpoint A (the old one) with B, matching tensors by name:\n"
    "added (only in B), removed (only in A), changed, unchanged. A changed\n"
    "tensor with another dtype or shape says so; one with the same dtype and\n"
    "shape is read from both checkpoints (verified) and shows the maximum\n"
    "absolute difference max|a-b|, the relative L2 change ||a-b|| / ||a||\n"
    "and how many elements differ, computed in double precision for float,\n"
    "integer and BOOL tensors (and block types that dequantise). Tensors\n"
    "whose chunks are all equal are unchanged without being read. A\n"
    "summary line ends the output. The exit status is 0 whether or not the\n"
    "checkpoints differ.\n"
    "\n"
    "  --all        list unchanged tensors too\n"
    "  --no-values  read no tensor data (changed tensors get no figures)\n"
    "  --html FILE  also write the comparison as one HTML page (sorted bar\n"
    "               charts of the figures, the histogram of the differences\n"
    "               of the most changed tensor; no script), as 'wv serve'\n"
    "               shows it\n"
    "  --json       print one JSON object instead:\n"
    "               {\"a\": {\"id\", \"parent\", \"time\", \"branch\",\n"
    "                       \"message\"}, \"b\": {...},\n"
    "                \"tensors\": [{\"name\": \"w\", \"status\": \"changed\",\n"
    "                  \"a\": {\"dtype\": \"F32\", \"shape\": [2, 3],\n"
    "                        \"nbytes\": 24} or null, \"b\": {...} or null,\n"
    "                  \"max_abs\": 0.5, \"rel_l2\": 0.01,\n"
    "                  \"n_differ\": 4}, ...],\n"
    "                \"summary\": {\"added\": 0, \"removed\": 0,\n"
    "                  \"changed\": 1, \"unchanged\": 9,\n"
    "                  \"bytes_read\": 48}}\n"
    "               status is added, removed, changed or unchanged; every\n"
    "               tensor is listed; the three figures are present only\n"
    "               when values were compared, and a figure that is not\n"
    "               finite (a NaN on one side, ||a|| = 0) is null.\n";

static void json_side(const wv_checkpoint *c, long i)
{
    char shape[256];
    if (i < 0) {
        printf("null");
        return;
    }
    cli_ckpt_shape(c, (size_t)i, shape, sizeof shape);
    printf("{\"dtype\": \"%s\", \"shape\": %s, \"nbytes\": %llu}",
           wv_dtype_name(wv_checkpoint_tensor_dtype(c, (size_t)i)), shape,
           (unsigned long long)wv_checkpoint_tensor_nbytes(c, (size_t)i));
}

static void json_number(double v)
{
    if (v != v || v > 1.7976931348623157e308 || v < -1.7976931348623157e308)
        printf("null");
    else
        printf("%.17g", v);
}

static const char *kind_name(wv_diff_kind k)
{
    return k == WV_DIFF_ADDED     ? "added"
           : k == WV_DIFF_REMOVED ? "removed"
           : k == WV_DIFF_CHANGED ? "changed"
                                  : "unchanged";
}

static void print_diff(const wv_diff *d, bool json, bool all)
{
    const wv_checkpoint *a = wv_diff_a(d), *b = wv_diff_b(d);
    size_t count[4] = {0};
    for (size_t i = 0; i < wv_diff_count(d); i++)
        count[wv_diff_entry_at(d, i)->kind]++;
    if (json) {
        printf("{\"a\": {");
        json_head(a);
        printf("},\n \"b\": {");
        json_head(b);
        printf("},\n \"tensors\": [");
        for (size_t i = 0; i < wv_diff_count(d); i++) {
            const wv_diff_entry *e = wv_diff_entry_at(d, i);
            printf("%s\n  {\"name\": ", i ? "," : "");
            cli_json_string(stdout, e->name);
            printf(", \"status\": \"%s\", \"a\": ", kind_name(e->kind));
            json_side(a, e->a);
            printf(", \"b\": ");
            json_side(b, e->b);
            if (e->compared) {
                printf(", \"max_abs\": ");
                json_number(e->max_abs);
                printf(", \"rel_l2\": ");
                json_number(e->rel_l2);
                printf(", \"n_differ\": %llu",
                       (unsigned long long)e->n_differ);
            }
            printf("}");
        }
        printf("],\n \"summary\": {\"added\": %zu, \"removed\": %zu, "
               "\"changed\": %zu, \"unchanged\": %zu, \"bytes_read\": "
               "%llu}}\n",
               count[WV_DIFF_ADDED], count[WV_DIFF_REMOVED],
               count[WV_DIFF_CHANGED], count[WV_DIFF_UNCHANGED],
               (unsigned long long)wv_diff_bytes_read(d));
        return;
    }
    printf("a: %.12s  %s  %s  %s\n", wv_checkpoint_id(a),
           cli_text(wv_checkpoint_time(a)), cli_q(wv_checkpoint_branch(a)),
           cli_text(wv_checkpoint_message(a)));
    printf("b: %.12s  %s  %s  %s\n\n", wv_checkpoint_id(b),
           cli_text(wv_checkpoint_time(b)), cli_q(wv_checkpoint_branch(b)),
           cli_text(wv_checkpoint_message(b)));
    size_t w = 4;
    for (size_t i = 0; i < wv_diff_count(d); i++) {
        size_t l = strlen(cli_q(wv_diff_entry_at(d, i)->name));
        if (l > w)
            w = l < 50 ? l : 50;
    }
    for (size_t i = 0; i < wv_diff_count(d); i++) {
        const wv_diff_entry *e = wv_diff_entry_at(d, i);
        char sa[128] = "", sb[128] = "";
        if (e->kind == WV_DIFF_UNCHANGED && !all)
            continue;
        if (e->a >= 0)
            cli_ckpt_shape(a, (size_t)e->a, sa, sizeof sa);
        if (e->b >= 0)
            cli_ckpt_shape(b, (size_t)e->b, sb, sizeof sb);
        const wv_checkpoint *c = e->b >= 0 ? b : a;
        long ci = e->b >= 0 ? e->b : e->a;
        printf("%-9s  %-*s  %-5s %s", kind_name(e->kind), (int)w, cli_q(e->name),
               wv_dtype_name(wv_checkpoint_tensor_dtype(c, (size_t)ci)),
               e->b >= 0 ? sb : sa);
        if (e->kind == WV_DIFF_CHANGED) {
            wv_dtype da = wv_checkpoint_tensor_dtype(a, (size_t)e->a);
            wv_dtype db = wv_checkpoint_tensor_dtype(b, (size_t)e->b);
            if (da != db || strcmp(sa, sb) != 0)
                printf("  (was %s %s)", wv_dtype_name(da), sa);
            else if (e->compared)
                printf("  max|a-b| %.6g  rel L2 %.6g  %llu element%s "
                       "differ%s",
                       e->max_abs, e->rel_l2,
                       (unsigned long long)e->n_differ,
                       e->n_differ == 1 ? "" : "s",
                       e->n_differ == 1 ? "s" : "");
            else
                printf("  (values not compared)");
        }
        printf("\n");
    }
    char hb[32];
    cli_human_bytes(wv_diff_bytes_read(d), hb, sizeof hb);
    printf("%s%zu added, %zu removed, %zu changed, %zu unchanged "
           "(%s of tensor data read)\n",
           count[WV_DIFF_ADDED] + count[WV_DIFF_REMOVED] +
                       count[WV_DIFF_CHANGED] ||
                   all
               ? "\n"
               : "",
           count[WV_DIFF_ADDED], count[WV_DIFF_REMOVED],
           count[WV_DIFF_CHANGED], count[WV_DIFF_UNCHANGED], hb);
}

int cmd_diff(int argc, char **argv)
{
    const char *pos[3] = {NULL, NULL, NULL}, *ref0 = NULL, *ref1 = NULL;
    const char *a = NULL, *b = NULL, *html = NULL;
    char *uri = NULL, *uri1 = NULL, *parent = NULL;
    int n_pos = 0, rc = WV_OK;
    bool json = false, all = false;
    unsigned flags = 0;
    wv_repo *r = NULL;
    wv_diff *d = NULL;

    if (cli_want_help(argc, argv)) {
        fputs(diff_help, stdout);
        return 0;
    }
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--json") == 0)
            json = true;
        else if (strcmp(s, "--all") == 0)
            all = true;
        else if (strcmp(s, "--no-values") == 0)
            flags |= WV_DIFF_NO_VALUES;
        else if (strcmp(s, "--html") == 0 && i + 1 < argc)
            html = argv[++i];
        else if (strcmp(s, "--html") == 0)
            return cli_usage("diff", "--html needs a FILE");
        else if (s[0] == '-' && s[1])
            return cli_unknown_option("diff", diff_help, s);
        else if (n_pos < 3)
            pos[n_pos++] = s;
        else
            return cli_usage("diff", "too many arguments");
    }
    if (n_pos == 0)
        return cli_usage("diff", "needs REPO A B, or REPO@A REPO@B");
    if (cli_split_ref(pos[0], &uri, &ref0) != 0)
        return EXIT_OTHER;
    if (ref0 && n_pos == 2) {
        if (cli_split_ref(pos[1], &uri1, &ref1) != 0) {
            free(uri);
            return EXIT_OTHER;
        }
        if (ref1 == NULL || strcmp(uri, uri1) != 0) {
            free(uri);
            free(uri1);
            return cli_usage("diff", "REPO@A REPO@B must name the same "
                                     "repository");
        }
        a = ref0;
        b = ref1;
    } else if (ref0 && n_pos == 1) {
        b = ref0;
    } else if (!ref0 && n_pos == 3) {
        a = pos[1];
        b = pos[2];
    } else if (!ref0 && n_pos == 2) {
        b = pos[1];
    } else {
        free(uri);
        return cli_usage("diff", "needs REPO A B, or REPO@A REPO@B");
    }
    if ((rc = cli_open_repo(uri, &r)) != WV_OK)
        goto out;
    if (a == NULL) {
        wv_checkpoint *c = NULL;
        if ((rc = wv_repo_stat(r, b, &c)) != WV_OK) {
            cli_die(wv_repo_errmsg(r));
            goto out;
        }
        if (wv_checkpoint_parent(c)[0] == '\0') {
            fprintf(stderr, "wv: %s: checkpoint %.12s has no parent to "
                            "compare with\n",
                    uri, wv_checkpoint_id(c));
            wv_checkpoint_free(c);
            rc = WV_NOTFOUND;
            goto out;
        }
        parent = strdup(wv_checkpoint_parent(c));
        wv_checkpoint_free(c);
        if (parent == NULL) {
            rc = WV_NOMEM;
            goto out;
        }
        a = parent;
    }
    if ((rc = wv_repo_diff(r, a, b, flags, &d)) != WV_OK) {
        cli_die(wv_repo_errmsg(r));
        goto out;
    }
    print_diff(d, json, all);
    if (html)
        rc = web_diff_html(r, uri, d, html);
out:
    wv_diff_free(d);
    wv_repo_close(r);
    free(parent);
    free(uri);
    free(uri1);
    return finish(rc);
}

/* ---- wv tag, wv branch -------------------------------------------------- */

static const char tag_help[] =
    "usage: wv tag REPO NAME [REF]     tag checkpoint REF (default latest)\n"
    "       wv tag REPO@REF NAME\n"
    "       wv tag REPO [--list|-l]    list the tags: NAME ID per line\n"
    "       wv tag REPO -d|--delete NAME\n"
    "                                  delete a tag\n"
    "\n"
    "A tag names one checkpoint for good: it never moves, so tagging with a\n"
    "name that exists fails (exit 1) even if it names the same checkpoint;\n"
    "delete it first to reuse the name. Tags keep their checkpoints through\n"
    "prunes. Names: letters, digits, '.', '_', '-' (at most 100), not\n"
    "'latest', not a hex id prefix, and not the name of a branch. Deleting\n"
    "a tag removes the name only. REF is a branch, 'latest', a tag or an id\n"
    "prefix.\n";

static const char branch_help[] =
    "usage: wv branch REPO NAME [REF]  create branch NAME at REF (default\n"
    "                                  latest)\n"
    "       wv branch REPO@REF NAME\n"
    "       wv branch REPO [--list|-l] list the branches: NAME ID per line\n"
    "       wv branch REPO -d|--delete NAME\n"
    "                                  delete a branch\n"
    "\n"
    "A branch is a moving name: 'wv commit REPO@NAME' adds checkpoints to it\n"
    "(and creates it if missing, starting a history without a parent).\n"
    "Creating a branch that exists fails (exit 1). Deleting a branch removes\n"
    "the name only; its checkpoints stay until pruned (tag them to keep\n"
    "them). The branch 'main' cannot be deleted, since 'latest' is its head.\n"
    "Names follow the rules of tags, and a branch may not share its name\n"
    "with a tag.\n";

static int print_ref(void *arg, const char *name, const char *id)
{
    (void)arg;
    printf("%-24s %s\n", cli_q(name), id);
    return 0;
}

static int cmd_ref(const char *cmd, const char *help, bool tag, int argc,
                   char **argv)
{
    const char *target = NULL, *name = NULL, *ref = NULL, *tref = NULL;
    const char *del = NULL;
    char *uri = NULL;
    bool list = false;
    wv_repo *r = NULL;
    int rc = WV_OK;

    if (cli_want_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--list") == 0 || strcmp(a, "-l") == 0) {
            list = true;
        } else if (strcmp(a, "-d") == 0 || strcmp(a, "--delete") == 0) {
            if (i + 1 >= argc)
                return cli_usage(cmd, "%s needs a NAME", a);
            del = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return cli_unknown_option(cmd, help, a);
        } else if (target == NULL) {
            target = a;
        } else if (name == NULL) {
            name = a;
        } else if (ref == NULL) {
            ref = a;
        } else {
            return cli_usage(cmd, "unexpected argument '%s'", a);
        }
    }
    if (target == NULL)
        return cli_usage(cmd, "missing REPO");
    if ((list || del) && name)
        return cli_usage(cmd, "--list and -d take no other NAME");
    if (list && del)
        return cli_usage(cmd, "--list or -d, not both");
    if (cli_split_ref(target, &uri, &tref) != 0)
        return EXIT_OTHER;
    if (tref && (ref || list || del || !name)) {
        free(uri);
        return cli_usage(cmd, "REPO@REF goes with NAME alone");
    }
    if (tref)
        ref = tref;
    if ((rc = cli_open_repo(uri, &r)) != WV_OK)
        goto out;
    if (del) {
        rc = tag ? wv_repo_tag_delete(r, del) : wv_repo_branch_delete(r, del);
        if (rc == WV_OK)
            printf("deleted %s '%s'\n", cmd, del);
    } else if (name) {
        rc = tag ? wv_repo_tag(r, name, ref) : wv_repo_branch(r, name, ref);
        if (rc == WV_OK) {
            char id[WV_ID_HEX];
            rc = wv_repo_resolve(r, name, id);
            if (rc == WV_OK)
                printf("%s '%s' -> %s\n", cmd, name, id);
        }
    } else {
        rc = tag ? wv_repo_list_tags(r, print_ref, NULL)
                 : wv_repo_list_branches(r, print_ref, NULL);
    }
    if (rc != WV_OK)
        cli_die(wv_repo_errmsg(r));
out:
    wv_repo_close(r);
    free(uri);
    return finish(rc);
}

int cmd_tag(int argc, char **argv)
{
    return cmd_ref("tag", tag_help, true, argc, argv);
}

int cmd_branch(int argc, char **argv)
{
    return cmd_ref("branch", branch_help, false, argc, argv);
}
