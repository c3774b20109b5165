/*
 * cmd_maint.c -- wv prune and wv gc: retention of a checkpoint
 * repository (wv verify REPO, its integrity check, is in cmd_file.c).
 *
 * prune and gc take the repository's exclusive lock: run while a commit is
 * running, they exit 5 (locked) without changing anything, and a commit
 * started while they run exits 5 the same way; both are safe to retry.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool parse_count(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || v < 0)
        return false;
    *out = v;
    return true;
}

/* ---- prune -------------------------------------------------------------- */

static const char prune_help[] =
    "usage: wv prune REPO [--keep-last N] [--keep-best K --metric NAME\n"
    "                [--mode min|max]] [--branch B] [--dry-run]\n"
    "\n"
    "Delete the checkpoints (their manifests) that no rule keeps. Tensor\n"
    "data is not deleted here: run 'wv gc' afterwards to free the space.\n"
    "\n"
    "Always kept: every branch head and every tagged checkpoint (tag the\n"
    "ones you want to keep for good), and any checkpoint whose manifest\n"
    "cannot be read. Rules apply per branch (the branch each checkpoint was\n"
    "committed on); a checkpoint is kept if any rule keeps it:\n"
    "  --keep-last N   the N most recent (by commit time; within the same\n"
    "                  second, a child is newer than its parent)\n"
    "  --keep-best K   the K best by the metadata value NAME, read as a\n"
    "                  number (commit with --meta val_loss=0.31); those\n"
    "                  without it, or with a non-number, are never 'best'\n"
    "  --metric NAME   the metadata key for --keep-best\n"
    "  --mode min|max  min (default): lower is better (a loss); max: higher\n"
    "                  is better (an accuracy)\n"
    "  --branch B      only consider checkpoints of branch B\n"
    "  -n, --dry-run   print the decisions, delete nothing\n"
    "\n"
    "At least one of --keep-last and --keep-best is required (--keep-last 0\n"
    "keeps only heads and tags). Prints one line per checkpoint: keep or\n"
    "remove, its id, branch, step and metric if present, and why it is\n"
    "kept, then a summary. Takes the repository's exclusive lock: while a\n"
    "commit runs it exits 5 (retry later), and commits wait for it the same\n"
    "way. Exit status: 0 done, 2 usage, 3 I/O, 5 locked.\n";

struct prune_print {
    const char *metric;
};

static int print_decision(void *arg, const wv_prune_decision *d)
{
    const struct prune_print *pp = arg;
    printf("%-6s %.12s  %-12s", d->keep ? "keep" : "remove", d->id,
           d->branch[0] ? cli_q(d->branch) : "-");
    if (d->step)
        printf("  step %s", cli_text(d->step));
    if (pp->metric && d->metric)
        printf("  %s=%s", pp->metric, cli_text(d->metric));
    if (d->keep)
        printf("  (%s)", cli_text(d->reason));
    putchar('\n');
    return 0;
}

int cmd_prune(int argc, char **argv)
{
    wv_prune_opts o = WV_PRUNE_OPTS_INIT;
    const char *uri = NULL;
    wv_repo *r = NULL;
    wv_prune_stats st;
    if (cli_want_help(argc, argv)) {
        fputs(prune_help, stdout);
        return 0;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool takes = strcmp(a, "--keep-last") == 0 ||
                     strcmp(a, "--keep-best") == 0 ||
                     strcmp(a, "--metric") == 0 ||
                     strcmp(a, "--mode") == 0 || strcmp(a, "--branch") == 0;
        if (takes && i + 1 >= argc)
            return cli_usage("prune", "%s needs a value", a);
        if (strcmp(a, "--keep-last") == 0) {
            if (!parse_count(argv[++i], &o.keep_last))
                return cli_usage("prune", "--keep-last takes a count >= 0, "
                                          "not '%s'",
                                 argv[i]);
        } else if (strcmp(a, "--keep-best") == 0) {
            if (!parse_count(argv[++i], &o.keep_best))
                return cli_usage("prune", "--keep-best takes a count >= 0, "
                                          "not '%s'",
                                 argv[i]);
        } else if (strcmp(a, "--metric") == 0) {
            o.metric = argv[++i];
        } else if (strcmp(a, "--mode") == 0) {
            const char *m = argv[++i];
            if (strcmp(m, "min") == 0)
                o.mode = WV_PRUNE_MIN;
            else if (strcmp(m, "max") == 0)
                o.mode = WV_PRUNE_MAX;
            else
                return cli_usage("prune", "--mode is min or max, not '%s'",
                                 m);
        } else if (strcmp(a, "--branch") == 0) {
            o.branch = argv[++i];
        } else if (strcmp(a, "--dry-run") == 0 || strcmp(a, "-n") == 0) {
            o.dry_run = 1;
        } else if (a[0] == '-' && a[1]) {
            return cli_unknown_option("prune", prune_help, a);
        } else if (uri == NULL) {
            uri = a;
        } else {
            return cli_usage("prune", "one REPO only");
        }
    }
    if (uri == NULL)
        return cli_usage("prune", "missing REPO");
    if (o.keep_last < 0 && o.keep_best < 0)
        return cli_usage("prune", "give --keep-last N and/or --keep-best K "
                                  "(--keep-last 0 keeps only heads and "
                                  "tags)");
    if (o.keep_best >= 0 && (o.metric == NULL || o.metric[0] == '\0'))
        return cli_usage("prune", "--keep-best needs --metric NAME");
    if (o.metric && o.keep_best < 0)
        return cli_usage("prune", "--metric is only used with --keep-best");
    int rc = cli_open_repo(uri, &r);
    if (rc != WV_OK)
        return cli_repo_exit(rc);
    struct prune_print pp = {o.metric};
    rc = wv_repo_prune(r, &o, print_decision, &pp, &st);
    if (rc != WV_OK) {
        cli_die(wv_repo_errmsg(r));
    } else {
        printf("prune: kept %llu, %s %llu checkpoint%s%s\n",
               (unsigned long long)st.kept,
               o.dry_run ? "would remove" : "removed",
               (unsigned long long)st.removed, st.removed == 1 ? "" : "s",
               o.dry_run ? " (dry run: nothing deleted)"
               : st.removed ? "; run 'wv gc' to free their data"
                            : "");
    }
    wv_repo_close(r);
    return cli_repo_exit(rc);
}

/* ---- gc ----------------------------------------------------------------- */

static const char gc_help[] =
    "usage: wv gc REPO [--dry-run] [--repack-percent P]\n"
    "\n"
    "Free the space of data no checkpoint uses any more (after 'wv prune',\n"
    "or left by killed commits). Every chunk of every remaining checkpoint\n"
    "is kept. A pack with no live chunk is deleted; a pack with more than\n"
    "P% (default 30) dead bytes is rewritten with only its live chunks,\n"
    "each checked against its hash as it is copied; then the index objects\n"
    "are replaced by one. A crash or kill at any point leaves a readable\n"
    "repository; run gc again to finish. Stale locks (of processes that\n"
    "are gone) are removed, and so are temporary files left by killed\n"
    "writers once untouched for an hour (never one whose writing process\n"
    "still runs on this host).\n"
    "\n"
    "gc takes the repository's exclusive lock: while a commit, verify or\n"
    "another gc runs it exits 5 without changing anything, and a commit\n"
    "started while gc runs exits 5 ('locked'); both can simply be retried.\n"
    "gc refuses to run (exit 1) if a checkpoint or index object is damaged,\n"
    "since it could not tell which data is still needed: run 'wv verify'.\n"
    "\n"
    "  -n, --dry-run       report what would be freed, change nothing\n"
    "  --repack-percent P  repack threshold, 0..100\n"
    "  --tmp-age SECONDS   age after which temporary files of killed\n"
    "                      writers are removed (default 3600)\n"
    "  --pending-timeout SECONDS\n"
    "                      the parts of an unfinished multi-writer\n"
    "                      checkpoint ('wv log --pending') whose newest part\n"
    "                      is at least this old are removed, and their data\n"
    "                      with them (default 86400; 0 counts as 1: a part\n"
    "                      written in the current second stays); younger\n"
    "                      parts keep their data, so their writers can still\n"
    "                      finish\n"
    "\n"
    "Exit status: 0 done, 1 damaged repository, 2 usage, 3 I/O, 5 locked.\n";

int cmd_gc(int argc, char **argv)
{
    wv_gc_opts o = WV_GC_OPTS_INIT;
    const char *uri = NULL;
    wv_repo *r = NULL;
    wv_gc_stats st;
    char a1[32], a2[32], a3[32];
    if (cli_want_help(argc, argv)) {
        fputs(gc_help, stdout);
        return 0;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--dry-run") == 0 || strcmp(a, "-n") == 0) {
            o.dry_run = 1;
        } else if (strcmp(a, "--repack-percent") == 0) {
            long v;
            if (i + 1 >= argc)
                return cli_usage("gc", "%s needs a value", a);
            if (!parse_count(argv[++i], &v) || v > 100)
                return cli_usage("gc", "--repack-percent takes 0..100");
            o.repack_percent = (int)v;
        } else if (strcmp(a, "--tmp-age") == 0) {
            long v;
            if (i + 1 >= argc)
                return cli_usage("gc", "%s needs a value", a);
            if (!parse_count(argv[++i], &v))
                return cli_usage("gc", "--tmp-age takes a number of seconds");
            o.tmp_age = v;
        } else if (strcmp(a, "--pending-timeout") == 0) {
            long v;
            if (i + 1 >= argc)
                return cli_usage("gc", "%s needs a value", a);
            if (!parse_count(argv[++i], &v) || v > (long)UINT32_MAX)
                return cli_usage("gc", "--pending-timeout takes a number of "
                                       "seconds");
            /* the library's 0 is its default (a day) */
            o.pending_timeout = v == 0 ? 1 : (uint32_t)v;
        } else if (a[0] == '-' && a[1]) {
            return cli_unknown_option("gc", gc_help, a);
        } else if (uri == NULL) {
            uri = a;
        } else {
            return cli_usage("gc", "one REPO only");
        }
    }
    if (uri == NULL)
        return cli_usage("gc", "missing REPO");
    int rc = cli_open_repo(uri, &r);
    if (rc != WV_OK)
        return cli_repo_exit(rc);
    rc = wv_repo_gc(r, &o, &st);
    if (rc != WV_OK) {
        cli_die(wv_repo_errmsg(r));
        wv_repo_close(r);
        return cli_repo_exit(rc);
    }
    const char *w = o.dry_run ? "would be " : "";
    printf("gc: %llu checkpoints use %llu chunks\n",
           (unsigned long long)st.checkpoints,
           (unsigned long long)st.live_chunks);
    if (st.missing_chunks)
        printf("gc: warning: %llu of them are missing already (run 'wv "
               "verify')\n",
               (unsigned long long)st.missing_chunks);
    printf("gc: %llu of %llu packs %sdeleted, %llu %srepacked",
           (unsigned long long)st.packs_deleted,
           (unsigned long long)st.packs, w,
           (unsigned long long)st.packs_repacked, w);
    if (!o.dry_run && st.packs_repacked)
        printf(" into %llu", (unsigned long long)st.packs_written);
    printf("; %llu index object%s %sreplaced by %llu; %llu stale lock%s "
           "removed\n",
           (unsigned long long)st.indexes_deleted,
           st.indexes_deleted == 1 ? "" : "s", w,
           (unsigned long long)st.indexes_written,
           (unsigned long long)st.locks_removed,
           st.locks_removed == 1 ? "" : "s");
    if (st.pending_removed)
        printf("gc: %llu unfinished multi-writer checkpoint%s %sremoved "
               "(parts older than the pending timeout)\n",
               (unsigned long long)st.pending_removed,
               st.pending_removed == 1 ? "" : "s", w);
    if (st.tmp_removed)
        printf("gc: %llu temporary file%s of killed writers removed\n",
               (unsigned long long)st.tmp_removed,
               st.tmp_removed == 1 ? "" : "s");
    cli_human_bytes(st.bytes_freed, a1, sizeof a1);
    cli_human_bytes(st.bytes_before, a2, sizeof a2);
    cli_human_bytes(st.bytes_after, a3, sizeof a3);
    printf("gc: %s %s (%llu bytes; %s -> %s)%s\n",
           o.dry_run ? "would free" : "freed", a1,
           (unsigned long long)st.bytes_freed, a2, a3,
           o.dry_run ? " (dry run: nothing changed)" : "");
    wv_repo_close(r);
    return 0;
}
