/*
 * main.c -- the `wv` command: the overview help, the global options taken
 * out of argv (common.c), and dispatch to the command files. It uses the
 * public API (weightvault.h) only.
 *
 * Errors are one line on stderr, "wv: <file>: <what is wrong>", and the exit
 * status tells the kind: 1 bad input (malformed, unsupported or failing
 * verification), 2 usage, 3 I/O, 4 anything else (out of memory, internal).
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char main_help[] =
    "usage: wv <command> [options] [args]\n"
    "\n"
    "weightvault saves, loads, converts and checks neural-network weights.\n"
    "\n"
    "commands:\n"
    "  inspect FILE|URL [--json]      show format, metadata and tensors\n"
    "  convert IN OUT [--dtype T]     convert between formats (and dtypes)\n"
    "  verify FILE|REPO               validate a file and read every byte,\n"
    "                                 or check a whole repository\n"
    "\n"
    "repository commands:\n"
    "  init DIR                       create a checkpoint repository\n"
    "  commit REPO[@BRANCH] FILE...   store files as a new checkpoint\n"
    "  checkout REPO[@REF] -o OUT     write a checkpoint to a file\n"
    "  log REPO[@REF] [-n N] [--all]  history of a branch (or of all),\n"
    "                                 newest first\n"
    "  show REPO[@REF]                a checkpoint's metadata and tensors\n"
    "  finish REPO TXN --writers N    merge the parts of a multi-writer\n"
    "                                 checkpoint (wv log --pending lists them)\n"
    "  diff REPO A B                  tensors added, removed, changed\n"
    "  tag REPO NAME [REF]            name a checkpoint for good (--list, -d)\n"
    "  branch REPO NAME [REF]         create a branch (--list, -d)\n"
    "  prune REPO --keep-last N ...   delete checkpoints no rule keeps\n"
    "  gc REPO [--dry-run]            free the data of deleted checkpoints\n"
    "  push LOCAL REMOTE[@BRANCH]     send checkpoints the remote lacks\n"
    "  pull REMOTE LOCAL[@BRANCH]     fetch checkpoints the local one lacks\n"
    "  clone REMOTE LOCAL             copy a whole repository\n"
    "  serve REPO [--port N]          read-only web pages: history, metrics,\n"
    "                                 tensors, diffs (127.0.0.1 by default)\n"
    "  report REPO -o FILE.html       the same pages as one HTML file\n"
    "\n"
    "keys and signatures:\n"
    "  init DIR --encrypt             an encrypted repository\n"
    "  key add|list|remove REPO       who can open an encrypted repository\n"
    "  keygen -o NAME                 a signing key pair (NAME.key, NAME.pub)\n"
    "  trust add|list|remove REPO     keys whose signatures checkouts need\n"
    "  --key-file FILE                (any command) an encrypted repository's\n"
    "                                 key; else $WV_PASSPHRASE, $WV_KEY_FILE\n"
    "                                 or a passphrase typed at the terminal\n"
    "  --allow-rollback               (any command) accept a sealed ref or\n"
    "                                 trust list older than this client saw\n"
    "                                 (as WV_ALLOW_ROLLBACK=1)\n"
    "\n"
    "REPO is a directory (or file:///DIR), s3://BUCKET/PREFIX or\n"
    "rados://POOL/PREFIX; REPO@REF names a branch, a tag, 'latest' or an\n"
    "id prefix. A FILE to read may also be s3://BUCKET/KEY or\n"
    "http(s)://HOST/PATH.\n"
    "\n"
    "formats (detected from the content when reading, from the extension\n"
    "when writing):\n"
    "  safetensors  .safetensors (also Hugging Face shard indexes)\n"
    "  npy, npz     NumPy .npy and .npz\n"
    "  pth          PyTorch torch.save files, zip and legacy (.pth .pt .bin)\n"
    "  keras        Keras HDF5: .h5, .weights.h5, and .keras archives\n"
    "  mxnet        MXNet NDArray lists (.params)\n"
    "  gguf         GGUF v2/v3 (.gguf), quantised types kept as they are\n"
    "  tensorflow   TensorFlow checkpoints (.index + .data-*): read from\n"
    "               PREFIX, PREFIX.index, a data file, a 'checkpoint' file or\n"
    "               a SavedModel dir; written as PREFIX.index\n"
    "  tfjs         TensorFlow.js model.json (layers or graph model) or a\n"
    "               bare weights manifest, with its .bin shards; written as\n"
    "               DIR/model.json + 4 MiB shards (a TF.js source's\n"
    "               topology kept; float32, int32, bool, float16)\n"
    "  onnx         ONNX models (.onnx): the graph's initializers (external\n"
    "               data files beside the model too); written over a\n"
    "               template model (wv convert --template)\n"
    "\n"
    "options:\n"
    "  -h, --help                     this text; 'wv CMD --help' (or 'wv\n"
    "                                 help CMD') for a command\n"
    "  --version                      print the version\n"
    "  --max-expand N                 (any command reading files) let a\n"
    "                                 file's tensors and the memory reading\n"
    "                                 it takes reach N times its size plus\n"
    "                                 1 MiB (default 64; also $WV_MAX_EXPAND)\n"
    "\n"
    "exit status: 0 ok, 1 bad input, 2 usage error, 3 I/O error or not\n"
    "found, 4 other, 5 concurrent update (retry), 6 wrong or missing key,\n"
    "or a checkpoint's signature refused\n";

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
};

static const struct command commands[] = {
    {"inspect", cmd_inspect},
    {"convert", cmd_convert},
    {"verify", cmd_verify},
    {"init", cmd_init},
    {"commit", cmd_commit},
    {"checkout", cmd_checkout},
    {"finish", cmd_finish},
    {"log", cmd_log},
    {"show", cmd_show},
    {"diff", cmd_diff},
    {"tag", cmd_tag},
    {"branch", cmd_branch},
    {"prune", cmd_prune},
    {"gc", cmd_gc},
    {"push", cmd_push},
    {"pull", cmd_pull},
    {"clone", cmd_clone},
    {"serve", cmd_serve},
    {"report", cmd_report},
    {"key", cmd_key},
    {"keygen", cmd_keygen},
    {"trust", cmd_trust},
};

int main(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage(NULL, "missing command");
    const char *cmd = argv[1];
    char **sub_argv = argv + 2;
    int sub_argc = argc - 2;
    static char help_flag[] = "--help";
    char *help_argv[] = {help_flag, NULL};

    if (strcmp(cmd, "--version") == 0) {
        /* the optional parts built in (CMake's WV_WITH_*) */
        const char *parts[] = {
#ifdef WV_HAVE_S3
            "s3",
#endif
#ifdef WV_HAVE_RADOS
            "rados",
#endif
#ifdef WV_HAVE_HDF5
            "hdf5",
#endif
#ifdef WV_HAVE_CRYPTO
            "crypto",
#endif
            NULL};
        printf("wv %s\nfeatures:", wv_version_string());
        for (size_t i = 0; parts[i]; i++)
            printf(" %s", parts[i]);
        printf("%s\n", parts[0] ? "" : " none");
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        strcmp(cmd, "help") == 0) {
        if (argc < 3) {
            fputs(main_help, stdout);
            return 0;
        }
        cmd = argv[2]; /* "wv help CMD" is "wv CMD --help" */
        sub_argv = help_argv;
        sub_argc = 1;
    }
    if (cli_take_global_options(&sub_argc, sub_argv) != 0)
        return EXIT_USAGE;
    /* --allow-rollback: the library reads WV_ALLOW_ROLLBACK */
    if (cli_allow_rollback)
        setenv("WV_ALLOW_ROLLBACK", "1", 1);
    const char *names[sizeof commands / sizeof commands[0] + 1];
    size_t n = 0;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].fn(sub_argc, sub_argv);
        names[n++] = commands[i].name;
    }
    names[n++] = "help";
    return cli_unknown_word(NULL, "command", cmd, names, n);
}
