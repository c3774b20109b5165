/*
 * cli.h -- what the files of the `wv` command share. The command uses the
 * public API (weightvault.h) only.
 *
 * Layers, each calling only those below it: main.c (dispatch) -> the
 * command files cmd_*.c and web/ (which never call one another) ->
 * assist.c (help for people) -> common.c (shared helpers) -> out.c (safe
 * text). Each declaration below names the file that defines it.
 */
#ifndef WV_CLI_H
#define WV_CLI_H

#include "weightvault.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit status: 0 ok, 1 bad input, 2 usage, 3 I/O, 4 anything else. The
 * repository commands add 5: a concurrent update (ref changed, or the
 * repository is locked by gc), worth retrying; and 6: an encrypted
 * repository's key is missing or wrong, or a checkpoint's signature was
 * refused. */
enum {
    EXIT_BAD_INPUT = 1,
    EXIT_USAGE = 2,
    EXIT_IO = 3,
    EXIT_OTHER = 4,
    EXIT_CONFLICT = 5,
    EXIT_KEY = 6
};

/* Shared helpers (common.c), except where another file is named. */
int cli_exit_code(int rc);
/* "wv: <msg>" on stderr, control characters escaped. */
void cli_die(const char *msg);
/* "wv CMD: <msg> (see 'wv CMD --help')" on stderr; returns EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool cli_want_help(int argc, char **argv);
/* cli_exit_code for the repository commands: a conflict (also a
 * repository locked by gc) is 5 and misuse a usage error. */
int cli_repo_exit(int rc);
/* The global options, anywhere after the command: --key-file FILE,
 * --max-expand N, --allow-rollback. cli_take_global_options takes them out
 * of argv in one pass from the left: an option's value is taken as it is,
 * never read as an option, and nothing from "--" on is touched (the
 * command gets "--" and what follows). Returns 0 or EXIT_USAGE. */
extern const char *cli_key_file;
extern bool cli_allow_rollback;
int cli_take_global_options(int *argc, char **argv);
/* A JSON string: control characters (C0, DEL, C1) as \uXXXX, bytes that
 * are not UTF-8 as \ufffd, so the output always parses. */
void cli_json_string(FILE *o, const char *s);
/* Text from a file or repository, made safe to print (out.c): cli_q for
 * names, keys, refs and labels (quoted as git quotes paths when anything
 * is escaped), cli_text for free text (messages, values; escapes only).
 * The _n forms take at most max bytes. Valid for the next 8 calls. */
const char *cli_q(const char *s);
const char *cli_qn(const char *s, size_t max);
const char *cli_text(const char *s);
const char *cli_textn(const char *s, size_t max);
void cli_shape_str(const wv_tensor *t, char *buf, size_t cap);
/* A repository's branches, then its tags (out.c): cli_refs_collect
 * returns the library's status (WV_NOMEM when memory ran out). */
struct cli_refs {
    struct cli_ref {
        char *name;
        char id[WV_ID_HEX];
        bool tag;
    } *v;
    size_t n, cap;
    bool collecting_tags;
};
int cli_refs_collect(wv_repo *r, struct cli_refs *l);
void cli_refs_release(struct cli_refs *l);
/* "[2, 3]": the shape of tensor i of a checkpoint (out.c). */
void cli_ckpt_shape(const wv_checkpoint *c, size_t i, char *buf, size_t cap);
/* A metadata value worth a place in the log and the metrics charts: a
 * number (step, epoch, a loss or an accuracy) of at most 40 bytes (out.c). */
bool cli_is_number(const char *s);
void cli_human_bytes(uint64_t n, char *buf, size_t cap);
/* Load a file (or shard index), printing the error. */
/* The whole of a text file (no NUL byte) of at most `max` bytes, into a
 * malloc'ed string; one line on stderr naming the file when it cannot. */
int cli_read_text(const char *path, size_t max, char **out);
int cli_load(const char *path, unsigned flags, wv_model **m);
/* The same, keeping only the tensors named (all if names is NULL). */
int cli_load_some(const char *path, unsigned flags, const char *const *names,
                  size_t n_names, wv_model **m);
/* "5GB", "2GiB", "4096" -> bytes; 0 if invalid. */
uint64_t cli_parse_size(const char *s);

/* Split "REPO@REF" at the last '@' that is followed by a ref (a URI such
 * as s3://b/p@main may contain '@' earlier). *ref is NULL if there is none.
 * Returns a malloc()ed copy of REPO in *repo. */
int cli_split_ref(const char *arg, char **repo, const char **ref);
/* Open a repository, printing the error; returns a wv status. An
 * encrypted one is opened with the --key-file given, else $WV_PASSPHRASE
 * or $WV_KEY_FILE, else a passphrase typed at the terminal. */
int cli_open_repo(const char *uri, wv_repo **r);
/* Read a secret from the terminal without echo (confirm: twice, equal).
 * 0 on success; -1 if there is no terminal or the input ends. */
int cli_prompt_secret(const char *prompt, bool confirm, char *buf,
                      size_t cap);
void cli_wipe(void *p, size_t n);
/* A repository (a URI, or a directory with a config object), not a
 * weights file. */
bool cli_is_repo(const char *arg);

/* Help for people (assist.c). The closest of cands to word (a likely
 * misspelling), or NULL. */
const char *cli_closest(const char *word, const char *const *cands,
                        size_t n);
/* Usage error for an unknown option of cmd, with "did you mean" from the
 * options its help text names; returns EXIT_USAGE. */
int cli_unknown_option(const char *cmd, const char *help, const char *opt);
/* The same for an unknown subcommand or other word ("subcommand"). */
int cli_unknown_word(const char *cmd, const char *what, const char *word,
                     const char *const *cands, size_t n);
/* --dtype V for a cast (F32, F16, BF16 and their aliases, any case): 0, or
 * the usage error's EXIT_USAGE. */
int cli_cast_dtype(const char *cmd, const char *v, wv_dtype *out);
double cli_now(void);
/* Bytes of tensor data the set has after casting to cast (or as it is). */
uint64_t cli_model_bytes(const wv_model *m, wv_dtype cast);
/* "wv: WHAT: N tensors, SIZE in S s" on stderr (t0 from cli_now). */
void cli_summary(const char *what, size_t tensors, uint64_t bytes,
                 double t0);
/* A progress bar on stderr, drawn only on a terminal, unless quiet, and
 * only for totals of at least min_total bytes. */
struct cli_progress {
    bool on, drawn;
    double t0, last;
    uint64_t done, total, min_total;
};
void cli_progress_init(struct cli_progress *p, bool quiet,
                       uint64_t min_total);
void cli_progress_cb(void *arg, uint64_t done, uint64_t total);
void cli_progress_end(struct cli_progress *p, bool ok);
/* A warning on stderr when saving m to out with so stores a dtype as an
 * opaque type (BF16 and F8 in Keras HDF5). */
void cli_warn_opaque(const wv_model *m, const wv_save_opts *so,
                     const char *out);
/* A warning on stderr when saving m to out with so writes Keras HDF5 from
 * a set without a Keras layout (not read from Keras, no Keras metadata,
 * names not Keras' own; keras_names: read with --names keras) and no
 * template; with a template (so->template_path), when m's metadata is
 * not carried over (the template's is written). */
void cli_warn_layout(const wv_model *m, const wv_save_opts *so,
                     const char *out, bool keras_names);
/* Sets at least this large get a progress bar in convert, commit and
 * checkout. */
#define CLI_PROGRESS_MIN ((uint64_t)32 << 20)
/* wv convert's save of m to out with so: a progress bar
 * (unless quiet), then "wv: wrote OUT (FORMAT): N tensors, SIZE in S s"
 * unless quiet (t0: the command's start, from cli_now), or the library's
 * message on failure. Returns the wv status. */
int cli_save(wv_model *m, const char *out, wv_save_opts *so, bool quiet,
             double t0);
/* That summary line alone (wv checkout, whose library call saved). */
void cli_save_summary(const wv_model *m, const char *out,
                      const wv_save_opts *so, double t0);

/* Keys and signatures (cmd_key.c). */
int cmd_key(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_trust(int argc, char **argv);

/* Commands (argc/argv after the command name), called by main.c only.
 * Weights files, and wv verify REPO (cmd_file.c). */
int cmd_inspect(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_verify(int argc, char **argv);
/* Repositories: create, commit, check out (cmd_repo.c). */
int cmd_init(int argc, char **argv);
int cmd_commit(int argc, char **argv);
int cmd_checkout(int argc, char **argv);
int cmd_finish(int argc, char **argv);
/* History and refs (cmd_history.c). */
int cmd_log(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_tag(int argc, char **argv);
int cmd_branch(int argc, char **argv);
/* Retention (cmd_maint.c). */
int cmd_prune(int argc, char **argv);
int cmd_gc(int argc, char **argv);
/* Copying between repositories (cmd_sync.c). */
int cmd_push(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_clone(int argc, char **argv);
/* The web view (web/serve.c). */
int cmd_serve(int argc, char **argv);
int cmd_report(int argc, char **argv);

#endif
