/*
 * cmd_sync.c -- wv push, wv pull, wv clone: copy checkpoints between a
 * local repository and a remote one (or any two repositories), through
 * wv_repo_sync(). Only what the destination lacks is transferred; an
 * interrupted transfer is resumed by running the same command again.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char push_help[] =
    "usage: wv push LOCAL REMOTE[@BRANCH] [options]\n"
    "       wv pull REMOTE LOCAL[@BRANCH] [options]\n"
    "       wv clone REMOTE LOCAL [options]\n"
    "\n"
    "Copy checkpoints between repositories: push sends LOCAL's to REMOTE,\n"
    "pull fetches REMOTE's into LOCAL, clone makes a new LOCAL from REMOTE.\n"
    "Either side may be any repository (any two work both ways):\n"
    "  DIR or file:///DIR     a local directory\n"
    "  s3://BUCKET/PREFIX     an S3 bucket (or any S3-compatible store)\n"
    "  rados://POOL/PREFIX    a Ceph RADOS pool\n"
    "and the destination of push and pull may end in @BRANCH.\n"
    "\n"
    "Only the objects the destination lacks are sent. Data goes first, the\n"
    "branch and tag refs last, each by an atomic compare-and-swap, so the\n"
    "destination never names a checkpoint it does not hold in full. If the\n"
    "transfer is interrupted, run the same command again: it resumes.\n"
    "A destination that is not a repository yet is created with the\n"
    "source's settings (and keys, for an encrypted repository).\n"
    "\n"
    "Every pack, index object and checkpoint is checked as it arrives,\n"
    "before it is kept: each chunk of a pack decoded and hashed to its id\n"
    "(authenticated, in an encrypted repository), the others against\n"
    "their names. A damaged one stops the transfer with a message naming\n"
    "it (and the chunk), and nothing of it is kept, so a run after the\n"
    "source is repaired fetches it again.\n"
    "\n"
    "With @BRANCH only that branch is moved; otherwise every branch and\n"
    "tag. A branch moves only forward: if the destination's branch has\n"
    "checkpoints the source lacks, nothing moves and the command exits 5\n"
    "(pull first, or give --force).\n"
    "\n"
    "options:\n"
    "  -j, --jobs N   objects transferred at once (default 4)\n"
    "  --force        overwrite a diverged branch or a moved tag\n"
    "  -q, --quiet    no progress bar (it is shown only on a terminal)\n"
    "                 and no result line\n"
    "  --json         print the result as one JSON object on stdout:\n"
    "                 objects, objects_copied, bytes_copied, refs_updated,\n"
    "                 refs_unchanged, requests (made to both stores: HTTP\n"
    "                 requests with retries for s3://, store operations\n"
    "                 otherwise), bytes_sent, bytes_received,\n"
    "                 chunks_verified (checked on arrival), seconds\n"
    "\n"
    "S3: credentials, region and endpoint come from the usual AWS\n"
    "variables and files (AWS_ACCESS_KEY_ID, AWS_PROFILE, AWS_ENDPOINT_URL,\n"
    "~/.aws/credentials). RADOS: the cluster of $CEPH_CONF or ceph's\n"
    "default configuration (/etc/ceph/ceph.conf), keyring $CEPH_KEYRING.\n"
    "\n"
    "exit status: 0 ok, 1 a damaged pack, 2 usage, 3 I/O error or not\n"
    "found, 4 access denied, server unreachable or other, 5 a ref diverged\n"
    "or changed meanwhile (rerun, or --force), 6 a missing or wrong key\n";

enum mode { PUSH, PULL, CLONE };

static int run(enum mode mode, const char *cmd, int argc, char **argv)
{
    const char *pos[2] = {NULL, NULL};
    int npos = 0, jobs = 4;
    bool force = false, quiet = false, json = false;
    if (cli_want_help(argc, argv)) {
        fputs(push_help, stdout);
        return 0;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-j") == 0 || strcmp(a, "--jobs") == 0) {
            if (i + 1 >= argc)
                return cli_usage(cmd, "%s needs a number", a);
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 32)
                return cli_usage(cmd, "--jobs takes 1 to 32");
            jobs = (int)v;
        } else if (strcmp(a, "--force") == 0) {
            force = true;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            quiet = true;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (a[0] == '-' && a[1]) {
            return cli_unknown_option(cmd, push_help, a);
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            return cli_usage(cmd, "too many arguments");
        }
    }
    if (npos != 2)
        return cli_usage(cmd, "needs a source and a destination");

    /* The destination may carry @BRANCH (clone copies everything). */
    char *src = NULL, *dst = NULL;
    const char *branch = NULL, *sref = NULL;
    int rc;
    if ((rc = cli_split_ref(pos[0], &src, &sref)) != WV_OK ||
        (rc = cli_split_ref(pos[1], &dst, &branch)) != WV_OK) {
        free(src);
        return cli_usage(cmd, "out of memory");
    }
    if (sref) {
        free(src);
        free(dst);
        return cli_usage(cmd, "give the branch on the destination: "
                              "'wv %s SRC DST@BRANCH'",
                         cmd);
    }
    if (mode == CLONE && branch) {
        free(src);
        free(dst);
        return cli_usage(cmd, "clone copies every branch; drop the "
                              "'@%s'",
                         branch);
    }

    struct cli_progress prog;
    cli_progress_init(&prog, quiet, 0);
    char eb[WV_ERRBUF_SIZE] = "";
    wv_sync_opts o = WV_SYNC_OPTS_INIT;
    o.branch = branch;
    o.jobs = jobs;
    o.force = force;
    o.no_create = mode == PULL; /* pull needs an existing LOCAL */
    o.errbuf = eb;
    o.errbuf_size = sizeof eb;
    if (prog.on) {
        o.progress = cli_progress_cb;
        o.progress_arg = &prog;
    }
    wv_sync_result res;
    double t0 = cli_now();
    rc = wv_repo_sync(src, dst, &o, &res);
    double el = cli_now() - t0;
    cli_progress_end(&prog, rc == WV_OK);
    if (rc != WV_OK) {
        cli_die(eb);
    }
    if (json) {
        printf("{\"ok\": %s, \"source\": ", rc == WV_OK ? "true" : "false");
        cli_json_string(stdout, src);
        printf(", \"destination\": ");
        cli_json_string(stdout, dst);
        printf(", \"objects\": %llu, \"objects_copied\": %llu, "
               "\"bytes_copied\": %llu, \"refs_updated\": %d, "
               "\"refs_unchanged\": %d, \"requests\": %llu, "
               "\"bytes_sent\": %llu, \"bytes_received\": %llu, "
               "\"chunks_verified\": %llu, \"seconds\": %.3f",
               (unsigned long long)res.objects_total,
               (unsigned long long)res.objects_copied,
               (unsigned long long)res.bytes_copied, res.refs_updated,
               res.refs_unchanged, (unsigned long long)res.requests,
               (unsigned long long)res.bytes_sent,
               (unsigned long long)res.bytes_received,
               (unsigned long long)res.chunks_verified, el);
        if (rc != WV_OK) {
            printf(", \"error\": ");
            cli_json_string(stdout, eb);
        }
        printf("}\n");
    } else if (rc == WV_OK && !quiet) {
        char b[32];
        cli_human_bytes(res.bytes_copied, b, sizeof b);
        printf("%s -> %s: %llu of %llu objects copied (%s), %d ref%s "
               "updated, %d up to date\n",
               src, dst, (unsigned long long)res.objects_copied,
               (unsigned long long)res.objects_total, b, res.refs_updated,
               res.refs_updated == 1 ? "" : "s", res.refs_unchanged);
    }
    free(src);
    free(dst);
    if (rc == WV_OK)
        return 0;
    if (wv_primary(rc) == WV_CONFLICT)
        return EXIT_CONFLICT;
    return cli_exit_code(rc);
}

int cmd_push(int argc, char **argv)
{
    return run(PUSH, "push", argc, argv);
}

int cmd_pull(int argc, char **argv)
{
    return run(PULL, "pull", argc, argv);
}

int cmd_clone(int argc, char **argv)
{
    return run(CLONE, "clone", argc, argv);
}
