/*
 * cmd_repo.c -- wv init, wv commit, wv checkout: the repository commands
 * that create checkpoints and read them back.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char init_help[] =
    "usage: wv init REPO [--compression none|zstd|zstd-bg] [--level N]\n"
    "               [--chunk-size SIZE] [--pack-size SIZE]\n"
    "               [--encrypt [--key-file FILE] [--label NAME]]\n"
    "               [--delta-keyframe K | --no-delta]\n"
    "\n"
    "Create a checkpoint repository at REPO, which is one of:\n"
    "  DIR or file:///DIR     a local directory (made if missing)\n"
    "  s3://BUCKET/PREFIX     an S3 bucket (created if needed) or any\n"
    "                         S3-compatible store; AWS credentials, region\n"
    "                         and endpoint from the environment\n"
    "                         (AWS_ACCESS_KEY_ID, AWS_PROFILE,\n"
    "                         AWS_ENDPOINT_URL, ~/.aws/credentials)\n"
    "  rados://POOL/PREFIX    a Ceph RADOS pool ($CEPH_CONF)\n"
    "Other commands take the same forms, as REPO or REPO@REF (a branch, a\n"
    "tag, 'latest' or an id prefix).\n"
    "\n"
    "  --encrypt      encrypt everything but the format version with a new\n"
    "                 random key (XChaCha20-Poly1305; chunk ids become\n"
    "                 keyed hashes), stored wrapped by your secret: the\n"
    "                 key file of --key-file (from 'wv keygen --secret', or\n"
    "                 a file holding a passphrase), else $WV_PASSPHRASE,\n"
    "                 else $WV_KEY_FILE, else a passphrase typed twice.\n"
    "                 Every command then needs the secret the same way;\n"
    "                 'wv key add' gives others their own\n"
    "  --label NAME   a name for that first key slot (default 'first')\n"
    "  --compression  none, zstd, or zstd-bg (default): zstd after grouping\n"
    "                 the bytes of float elements into planes, which\n"
    "                 compresses weights better than plain zstd\n"
    "  --level N      zstd level 1..19 (default 1: fast)\n"
    "  --chunk-size   tensors are cut into chunks of this size for\n"
    "                 deduplication (default 4MiB)\n"
    "  --pack-size    chunks are grouped into pack objects of about this\n"
    "                 size (default 32MiB)\n"
    "  --delta-keyframe K  (experimental; off by default) store a changed\n"
    "                 chunk of a tensor the parent checkpoint has as its\n"
    "                 XOR against that chunk's keyframe (the same chunk as\n"
    "                 last stored whole) when that is smaller (lossless:\n"
    "                 nearby training checkpoints share most high-order\n"
    "                 bits), and whole at least every K commits (2..65; 4\n"
    "                 is a good start), so a checkout reads one earlier\n"
    "                 chunk per chunk. Smaller stores, slower commits and\n"
    "                 checkouts; the repository needs a build with delta\n"
    "                 chunks\n"
    "  --no-delta     store every chunk whole (the default): the repository\n"
    "                 stays readable by builds without delta chunks (format\n"
    "                 version 1, or 2 encrypted)\n";

/* K from "--delta-keyframe K": 2..65, or 0 if not a number in range. */
static int parse_keyframe(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return *end || end == s || v < 2 || v > 65 ? 0 : (int)v;
}

int cmd_init(int argc, char **argv)
{
    wv_init_opts o = WV_INIT_OPTS_INIT;
    char eb[WV_ERRBUF_SIZE] = "", pass[1024];
    const char *dir = NULL;
    o.errbuf = eb;
    o.errbuf_size = sizeof eb;
    o.key_file = cli_key_file;
    if (cli_want_help(argc, argv)) {
        fputs(init_help, stdout);
        return 0;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool takes = strcmp(a, "--compression") == 0 ||
                     strcmp(a, "--level") == 0 ||
                     strcmp(a, "--chunk-size") == 0 ||
                     strcmp(a, "--pack-size") == 0 ||
                     strcmp(a, "--delta-keyframe") == 0 ||
                     strcmp(a, "--label") == 0;
        if (takes && i + 1 >= argc)
            return cli_usage("init", "%s needs a value", a);
        if (strcmp(a, "--encrypt") == 0) {
            o.encrypt = 1;
        } else if (strcmp(a, "--no-delta") == 0) {
            o.delta_keyframe = 1;
        } else if (strcmp(a, "--delta-keyframe") == 0) {
            if ((o.delta_keyframe = parse_keyframe(argv[++i])) == 0)
                return cli_usage("init", "--delta-keyframe takes 2..65");
        } else if (strcmp(a, "--label") == 0) {
            o.key_label = argv[++i];
        } else if (strcmp(a, "--compression") == 0) {
            o.compression = argv[++i];
        } else if (strcmp(a, "--level") == 0) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 19)
                return cli_usage("init", "--level takes 1..19");
            o.level = (int)v;
        } else if (strcmp(a, "--chunk-size") == 0) {
            if ((o.chunk_size = cli_parse_size(argv[++i])) == 0)
                return cli_usage("init", "bad --chunk-size '%s'", argv[i]);
        } else if (strcmp(a, "--pack-size") == 0) {
            if ((o.pack_size = cli_parse_size(argv[++i])) == 0)
                return cli_usage("init", "bad --pack-size '%s'", argv[i]);
        } else if (a[0] == '-' && a[1]) {
            return cli_unknown_option("init", init_help, a);
        } else if (dir == NULL) {
            dir = a;
        } else {
            return cli_usage("init", "one REPO only");
        }
    }
    if (dir == NULL)
        return cli_usage("init", "missing REPO");
    if (o.key_label && !o.encrypt)
        return cli_usage("init", "--label goes with --encrypt");
    int rc = wv_repo_init(dir, &o);
    if (rc == WV_AUTH_NO_KEY &&
        cli_prompt_secret("New passphrase: ", true, pass, sizeof pass) ==
            0) {
        o.passphrase = pass;
        eb[0] = '\0';
        rc = wv_repo_init(dir, &o);
        cli_wipe(pass, sizeof pass);
    }
    if (rc != WV_OK) {
        cli_die(eb[0] ? eb : wv_strerror(rc));
        return rc == WV_MISUSE ? EXIT_USAGE : cli_exit_code(rc);
    }
    printf("initialised an empty %sweightvault repository in %s "
           "(compression %s)\n",
           o.encrypt ? "encrypted " : "", dir, o.compression);
    return 0;
}

static const char commit_help[] =
    "usage: wv commit REPO[@BRANCH] FILE... [-m MSG] [--meta KEY=VALUE]...\n"
    "                 [--config FILE.json] [--sign NAME.key] [--quiet]\n"
    "                 [--objects] [--delta-keyframe K | --no-delta]\n"
    "\n"
    "Store the tensors of FILE (any readable format; several files are\n"
    "merged into one checkpoint, their tensor names must not clash) as a new\n"
    "checkpoint on BRANCH (default main) and print its id. Chunks the\n"
    "repository already holds are not written again. The checkpoint is\n"
    "durable and the branch moved atomically when wv exits 0; if another\n"
    "writer moved the branch meanwhile, the checkpoint is re-parented onto\n"
    "the new head (exit 5 if it keeps moving).\n"
    "\n"
    "  -m, --message MSG a message for the log\n"
    "  --meta KEY=VALUE  metadata (step, epoch, metrics: val_loss=0.31 ...);\n"
    "                    repeatable, overrides the files' own metadata\n"
    "  --config FILE     attach a JSON file (the model architecture) as\n"
    "                    metadata 'config'\n"
    "  --sign NAME.key   sign the checkpoint with this secret key (from 'wv\n"
    "                    keygen'): an Ed25519 signature over its manifest,\n"
    "                    which lists every chunk's hash, so it covers the\n"
    "                    data too. A repository that trusts keys ('wv\n"
    "                    trust') refuses commits not signed by one of them\n"
    "                    (exit 6), as its checkouts would refuse them\n"
    "  -q, --quiet       no summary line ('wv: committed N tensors, SIZE to\n"
    "                    REPO@BRANCH in T s', on stderr) and no progress bar\n"
    "                    (shown on a terminal for sets of 32 MiB or more);\n"
    "                    the id is printed on stdout either way\n"
    "  --key-file FILE   the key of an encrypted repository (see wv init)\n"
    "  --objects         .pth FILE: read object pickles (torch.save(model);\n"
    "                    see wv inspect --help)\n"
    "  --delta-keyframe K  in a repository with delta chunks (wv init), a\n"
    "                    keyframe interval for this commit instead of the\n"
    "                    repository's (2..65)\n"
    "  --no-delta        store this commit's new chunks whole\n"
    "\n"
    "REPO is a directory, s3://BUCKET/PREFIX or rados://POOL/PREFIX (see\n"
    "'wv init'); 'wv init REPO' creates one.\n";

int cmd_commit(int argc, char **argv)
{
    const char *target = NULL, *msg = NULL, *config = NULL, *sign = NULL;
    const char **files = NULL, **metas = NULL;
    int n_files = 0, n_metas = 0, rc = WV_OK, ret = 0;
    char *uri = NULL;
    const char *branch = NULL;
    wv_repo *r = NULL;
    wv_model *set = NULL, *part = NULL;
    char *cfg_text = NULL;
    bool quiet = false;
    unsigned lflags = 0;
    int keyframe = 0;
    double t0 = cli_now();
    struct cli_progress prog;

    if (cli_want_help(argc, argv)) {
        fputs(commit_help, stdout);
        return 0;
    }
    files = calloc((size_t)argc + 1, sizeof *files);
    metas = calloc((size_t)argc + 1, sizeof *metas);
    if (!files || !metas) {
        ret = EXIT_OTHER;
        goto out;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-m") == 0 || strcmp(a, "--meta") == 0 ||
            strcmp(a, "--config") == 0 || strcmp(a, "--message") == 0 ||
            strcmp(a, "--sign") == 0 || strcmp(a, "--delta-keyframe") == 0) {
            if (i + 1 >= argc) {
                ret = cli_usage("commit", "%s needs a value", a);
                goto out;
            }
            const char *v = argv[++i];
            if (strcmp(a, "--delta-keyframe") == 0) {
                if ((keyframe = parse_keyframe(v)) == 0) {
                    ret = cli_usage("commit", "--delta-keyframe takes 2..65");
                    goto out;
                }
            } else if (a[1] == 'm' || strcmp(a, "--message") == 0) {
                msg = v;
            } else if (strcmp(a, "--sign") == 0) {
                sign = v;
            } else if (strcmp(a, "--meta") == 0) {
                if (strchr(v, '=') == NULL || v[0] == '=') {
                    ret = cli_usage("commit", "--meta takes KEY=VALUE, not "
                                              "'%s'", v);
                    goto out;
                }
                metas[n_metas++] = v;
            } else {
                config = v;
            }
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            quiet = true;
        } else if (strcmp(a, "--no-delta") == 0) {
            keyframe = 1;
        } else if (strcmp(a, "--objects") == 0) {
            lflags |= WV_LOAD_OBJECTS;
        } else if (a[0] == '-' && a[1]) {
            ret = cli_unknown_option("commit", commit_help, a);
            goto out;
        } else if (target == NULL) {
            target = a;
        } else {
            files[n_files++] = a;
        }
    }
    if (target == NULL || n_files == 0) {
        ret = cli_usage("commit", "needs REPO[@BRANCH] and at least one FILE");
        goto out;
    }
    if (cli_split_ref(target, &uri, &branch) != 0) {
        ret = EXIT_OTHER;
        goto out;
    }
    /* Read everything first: a bad file must not leave a half commit. */
    for (int i = 0; i < n_files; i++) {
        if ((rc = cli_load(files[i], lflags, i == 0 ? &set : &part)) !=
            WV_OK)
            goto fail;
        if (part) {
            for (size_t k = 0; k < wv_model_count(part); k++) {
                const wv_tensor *t = wv_model_tensor(part, k);
                if (wv_model_find(set, wv_tensor_name(t))) {
                    fprintf(stderr, "wv: %s: tensor '%s' is also in %s\n",
                            files[i], cli_text(wv_tensor_name(t)), files[0]);
                    rc = WV_EXISTS;
                    goto fail;
                }
                rc = wv_model_add(set, wv_tensor_name(t), wv_tensor_dtype(t),
                                  wv_tensor_ndim(t), wv_tensor_shape(t),
                                  wv_tensor_data(t), wv_tensor_nbytes(t),
                                  WV_DATA_COPY);
                if (rc != WV_OK) {
                    cli_die(wv_model_errmsg(set));
                    goto fail;
                }
            }
            for (size_t k = 0; k < wv_model_meta_count(part); k++) {
                const char *key, *val;
                wv_model_meta(part, k, &key, &val);
                if (wv_model_get_meta(set, key) == NULL)
                    wv_model_set_meta(set, key, val);
            }
            wv_model_free(part);
            part = NULL;
        }
    }
    if (config) {
        if ((rc = cli_read_text(config, (size_t)64 << 20, &cfg_text)) !=
            WV_OK)
            goto fail;
        wv_model_set_meta(set, "config", cfg_text);
    }
    for (int i = 0; i < n_metas; i++) {
        const char *eq = strchr(metas[i], '=');
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(eq - metas[i]), metas[i]);
        if ((rc = wv_model_set_meta(set, key, eq + 1)) != WV_OK) {
            cli_die(wv_model_errmsg(set));
            goto fail;
        }
    }
    if ((rc = cli_open_repo(uri, &r)) != WV_OK)
        goto fail;
    char id[WV_ID_HEX];
    wv_commit_opts co = WV_COMMIT_OPTS_INIT;
    co.message = msg;
    co.sign_key = sign;
    co.delta_keyframe = keyframe;
    cli_progress_init(&prog, quiet, CLI_PROGRESS_MIN);
    if (prog.on) {
        co.progress = cli_progress_cb;
        co.progress_arg = &prog;
    }
    rc = wv_repo_commit(r, set, branch, &co, id);
    cli_progress_end(&prog, rc == WV_OK);
    if (rc != WV_OK) {
        cli_die(wv_repo_errmsg(r));
        goto fail;
    }
    printf("%s\n", id);
    if (!quiet) {
        char what[700];
        fflush(stdout);
        snprintf(what, sizeof what, "committed %.12s to %.500s@%s", id, uri,
                 branch ? branch : "main");
        cli_summary(what, wv_model_count(set),
                    cli_model_bytes(set, WV_DTYPE_INVALID), t0);
    }
fail:
    ret = rc == WV_OK ? 0
          : wv_primary(rc) == WV_CONFLICT ? EXIT_CONFLICT
          : rc == WV_MISUSE ? EXIT_USAGE
                            : cli_exit_code(rc);
out:
    free(cfg_text);
    wv_model_free(part);
    wv_model_free(set);
    wv_repo_close(r);
    free(uri);
    free(files);
    free(metas);
    return ret;
}

static const char checkout_help[] =
    "usage: wv checkout REPO[@REF] -o OUT [--dtype T] [--format FMT]\n"
    "                   [--tensor NAME]... [--verify-signer NAME.pub]\n"
    "                   [--quiet]\n"
    "\n"
    "Write checkpoint REF (a branch, 'latest' = the head of main, a tag, or\n"
    "an id prefix; default latest) to OUT in any writable format, chosen by\n"
    "OUT's extension or --format. Every chunk is checked against its hash\n"
    "while reading. OUT is written atomically. Safetensors, npy, npz and\n"
    "GGUF are written as the chunks are read and checked (on every core,\n"
    "in bounded memory); other formats once the whole set is read.\n"
    "\n"
    "  -o OUT         the output file (.safetensors, .npz, .pth, ...), or\n"
    "                 a directory for TF.js (OUT/ or an existing directory:\n"
    "                 OUT/model.json + group1-shard*.bin, made if missing)\n"
    "  --tensor NAME  only this tensor (repeatable); others are not read\n"
    "  --dtype T      convert floating-point tensors to F32, F16 or BF16\n"
    "                 (any case; also fp32, float, f16, fp16, half, bf16,\n"
    "                 bfloat16, as for 'wv convert')\n"
    "  --format FMT   the output format whatever OUT's extension\n"
    "  --verify-signer NAME.pub\n"
    "                 refuse the checkpoint unless it carries a valid\n"
    "                 signature by this public key (from 'wv keygen'). A\n"
    "                 repository that trusts keys ('wv trust') requires a\n"
    "                 signature by one of them anyway; a signature that does\n"
    "                 not verify is always refused (exit 6)\n"
    "  -q, --quiet    no summary line ('wv: wrote OUT: N tensors, SIZE in T\n"
    "                 s', on stderr) and no progress bar (shown on a\n"
    "                 terminal for sets of 32 MiB or more)\n"
    "  --key-file F   the key of an encrypted repository (see wv init)\n"
    "\n"
    "REPO is a directory, s3://BUCKET/PREFIX or rados://POOL/PREFIX (see\n"
    "'wv init').\n";

int cmd_checkout(int argc, char **argv)
{
    const char *target = NULL, *outp = NULL, *signer = NULL;
    const char **names = NULL;
    size_t n_names = 0;
    char *uri = NULL;
    const char *ref = NULL;
    wv_repo *r = NULL;
    wv_model *m = NULL;
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    int rc = WV_OK, ret = 0;
    bool quiet = false;
    double t0 = cli_now();
    struct cli_progress prog;

    if (cli_want_help(argc, argv)) {
        fputs(checkout_help, stdout);
        return 0;
    }
    names = calloc((size_t)argc + 1, sizeof *names);
    if (names == NULL)
        return EXIT_OTHER;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool takes = strcmp(a, "-o") == 0 || strcmp(a, "--tensor") == 0 ||
                     strcmp(a, "--dtype") == 0 || strcmp(a, "--format") == 0 ||
                     strcmp(a, "--verify-signer") == 0;
        if (takes && i + 1 >= argc) {
            ret = cli_usage("checkout", "%s needs a value", a);
            goto out;
        }
        if (strcmp(a, "-o") == 0) {
            outp = argv[++i];
        } else if (strcmp(a, "--verify-signer") == 0) {
            signer = argv[++i];
        } else if (strcmp(a, "--tensor") == 0) {
            names[n_names++] = argv[++i];
        } else if (strcmp(a, "--dtype") == 0) {
            if ((ret = cli_cast_dtype("checkout", argv[++i], &so.cast)) != 0)
                goto out;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            quiet = true;
        } else if (strcmp(a, "--format") == 0) {
            if (wv_format_from_name(argv[++i], &so.format) != WV_OK) {
                ret = cli_usage("checkout", "unknown format '%s'", argv[i]);
                goto out;
            }
        } else if (a[0] == '-' && a[1]) {
            ret = cli_unknown_option("checkout", checkout_help, a);
            goto out;
        } else if (target == NULL) {
            target = a;
        } else {
            ret = cli_usage("checkout", "unexpected argument '%s'", a);
            goto out;
        }
    }
    if (target == NULL || outp == NULL) {
        ret = cli_usage("checkout", "needs REPO[@REF] and -o OUT");
        goto out;
    }
    /* a directory is TF.js: OUT/model.json, as in wv convert */
    if (so.format == WV_FMT_AUTO &&
        wv_format_for_save(outp, &so.format) != WV_OK) {
        ret = cli_usage("checkout", "cannot tell the output format from "
                                    "'%s'; use --format",
                        outp);
        goto out;
    }
    if (cli_split_ref(target, &uri, &ref) != 0) {
        ret = EXIT_OTHER;
        goto out;
    }
    if ((rc = cli_open_repo(uri, &r)) != WV_OK)
        goto done;
    wv_checkout_opts co = WV_CHECKOUT_OPTS_INIT;
    co.verify_signer = signer;
    if (n_names) {
        co.names = names;
        co.n_names = n_names;
    }
    /* One bar on a terminal: the chunks checked and written. Formats
     * that take tensors as a stream are written as the chunks are read,
     * in bounded memory; the others from the set checked out first
     * (wv_repo_checkout_file). */
    cli_progress_init(&prog, quiet, CLI_PROGRESS_MIN);
    if (prog.on) {
        co.progress = cli_progress_cb;
        co.progress_arg = &prog;
    }
    rc = wv_repo_checkout_file(r, ref ? ref : "latest", &co, outp, &so, &m);
    cli_progress_end(&prog, rc == WV_OK);
    if (rc != WV_OK) {
        cli_die(wv_repo_errmsg(r));
        goto done;
    }
    cli_warn_opaque(m, &so, outp);
    cli_warn_layout(m, &so, outp, false);
    if (!quiet)
        cli_save_summary(m, outp, &so, t0);
done:
    ret = cli_exit_code(rc);
out:
    wv_model_free(m);
    wv_repo_close(r);
    free(uri);
    free(names);
    return ret;
}

/* ---- finish ------------------------------------------------------------- */

static const char finish_help[] =
    "usage: wv finish REPO TXN --writers N [--branch B] [--sign KEY]\n"
    "\n"
    "Finish multi-writer checkpoint TXN (the transaction name its N\n"
    "writers agreed on, e.g. step-1200) on branch B (default main): merge\n"
    "the writers' part records into one checkpoint and move the branch to\n"
    "it. A writer normally does this itself when its part is the last one;\n"
    "this is for writers started with no_finish, or after one died. The\n"
    "result is the same checkpoint whoever finishes; finishing a finished\n"
    "transaction prints its id again. It refuses, naming the tensor and the\n"
    "writers, parts whose regions of a tensor overlap with different bytes\n"
    "or leave a gap, parts written on different parents, and parts of\n"
    "another transaction. 'wv log --pending' lists unfinished ones.\n"
    "\n"
    "  --writers N    the number of writers (required)\n"
    "  --branch B     the branch the parts were written for (default main)\n"
    "  --sign KEY     sign the checkpoint with this secret key file\n"
    "\n"
    "Exit status: 0 done (the id is printed), 1 refused, 2 usage, 3 I/O,\n"
    "4 parts still missing (the message names the writers), 5 the branch\n"
    "moved since the parts were written.\n";

int cmd_finish(int argc, char **argv)
{
    const char *uri = NULL, *txn = NULL, *branch = "main", *sign = NULL;
    long writers = -1;
    wv_repo *r = NULL;
    char id[WV_ID_HEX];
    if (cli_want_help(argc, argv)) {
        fputs(finish_help, stdout);
        return 0;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--writers") == 0 || strcmp(a, "--branch") == 0 ||
            strcmp(a, "--sign") == 0) {
            if (i + 1 >= argc)
                return cli_usage("finish", "%s needs a value", a);
            const char *v = argv[++i];
            if (a[2] == 'w') {
                char *end;
                errno = 0;
                writers = strtol(v, &end, 10);
                if (*v == '\0' || *end || errno || writers < 1 ||
                    writers > 65536)
                    return cli_usage("finish", "--writers takes 1..65536, "
                                               "not '%s'",
                                     v);
            } else if (a[2] == 'b') {
                branch = v;
            } else {
                sign = v;
            }
        } else if (a[0] == '-' && a[1]) {
            return cli_unknown_option("finish", finish_help, a);
        } else if (uri == NULL) {
            uri = a;
        } else if (txn == NULL) {
            txn = a;
        } else {
            return cli_usage("finish", "unexpected argument '%s'", a);
        }
    }
    if (uri == NULL || txn == NULL)
        return cli_usage("finish", "missing REPO or TXN");
    if (writers < 0)
        return cli_usage("finish", "missing --writers N");
    int rc = cli_open_repo(uri, &r);
    if (rc != WV_OK)
        return cli_repo_exit(rc);
    wv_commit_opts co = WV_COMMIT_OPTS_INIT;
    co.sign_key = sign;
    rc = wv_repo_finish(r, branch, txn, (uint32_t)writers, &co, id);
    if (rc != WV_OK) {
        cli_die(wv_repo_errmsg(r));
        wv_repo_close(r);
        return cli_repo_exit(rc);
    }
    printf("%s\n", id);
    wv_repo_close(r);
    return 0;
}
