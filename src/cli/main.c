/*
 * main.c -- the `wv` command. It uses the public API (weightvault.h) only.
 *
 * Errors are one line on stderr, "wv: <file>: <what is wrong>", and the exit
 * status tells the kind: 1 bad input (malformed, unsupported or failing
 * verification), 2 usage, 3 I/O, 4 anything else (out of memory, internal).
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


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

/* ---- help texts --------------------------------------------------------- */

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

static const char inspect_help[] =
    "usage: wv inspect FILE|URL [--json] [--tensor NAME]... [--names N]\n"
    "                  [--keep-quantized] [--objects]\n"
    "\n"
    "Show a weights file: its format, its metadata, then one row per tensor\n"
    "(name, dtype, shape, bytes). Any format wv reads (see wv --help),\n"
    "ONNX models (.onnx) included. The table needs no tensor data, so\n"
    "only the index parts are read (and validated): a safetensors or npy\n"
    "header, a pth (zip) file's central directory and data.pkl, a GGUF\n"
    "file's header and tensor infos; other formats are read whole. --json\n"
    "reads and validates all the data (it hashes it, checking every\n"
    "checksum the format carries), as wv verify does.\n"
    "\n"
    "FILE may be a URL: s3://BUCKET/KEY (AWS credentials, region and\n"
    "endpoint from the environment, as for repositories) or\n"
    "http(s)://HOST/PATH, read with a few ranged requests. Keras HDF5,\n"
    "MXNet and npz files cannot be listed that way and are downloaded\n"
    "whole into memory (never to disk; a note says so).\n"
    "\n"
    "  -t, --tensor NAME  only this tensor (repeat for more); with --json,\n"
    "           from a remote safetensors file only its bytes are fetched\n"
    "  --names keras  TensorFlow checkpoints: name tensors as a Keras .h5\n"
    "           of the model does (dense/dense/kernel:0, optimizer/...),\n"
    "           not by checkpoint key (--names keys, the default)\n"
    "  --keep-quantized  TF.js input: keep uint8/uint16/float16-quantized\n"
    "           weights as U8/U16/F16 (scale and min in the metadata\n"
    "           tfjs.quantization.NAME) instead of dequantising them as\n"
    "           tfjs-core's decodeWeights does (the default)\n"
    "  --objects  .pth/.pt input: read whole-model and other object\n"
    "           pickles (torch.save(model)): unknown classes become inert\n"
    "           placeholders (never imported, called or run) and a\n"
    "           module's tensors get its state_dict() names\n"
    "  --json   print one JSON object instead, for scripts (reads every\n"
    "           tensor's data, a remote file's too, to hash it):\n"
    "           {\"format\": \"safetensors\", \"metadata\": {\"k\": \"v\"},\n"
    "            \"tensors\": [{\"name\": \"w\", \"dtype\": \"F32\", \"shape\": [2, 3],\n"
    "                         \"nbytes\": 24, \"sha256\": \"<hex>\"}]}\n"
    "           sha256 is over the elements in C order, little-endian,\n"
    "           whatever order and byte order the file stores them in.\n";

static const char convert_help[] =
    "usage: wv convert IN OUT [--dtype F32|F16|BF16] [--format FMT]\n"
    "                  [--compress] [--nest] [--shard-size SIZE] [--quiet]\n"
    "                  [--names keys|keras] [--keep-quantized] [--objects]\n"
    "                  [--template MODEL.onnx] [--config MODEL.json]\n"
    "       (OUT may also be given as -o OUT, as in wv checkout)\n"
    "\n"
    "Convert IN to OUT. The input format is detected from the content; the\n"
    "output format comes from OUT's extension or --format: .safetensors,\n"
    ".npy, .npz, .pth/.pt/.bin (PyTorch zip), .h5 (Keras 2 save_weights\n"
    "layout), .weights.h5 (Keras 3), .params (MXNet), .gguf, .index\n"
    "(TensorFlow checkpoint: PREFIX.index + PREFIX.data-00000-of-00001),\n"
    "model.json or a directory (TF.js: DIR/model.json + group1-shard*.bin).\n"
    "IN may also be an ONNX model (.onnx: its initializers). OUT.onnx is\n"
    "written over a template (--template).\n"
    "Metadata (the architecture: Keras model_config, MXNet symbol, GGUF\n"
    "key-values) goes into every format that can hold it. OUT is written\n"
    "atomically: a temporary file in the same directory is fsynced and\n"
    "renamed over OUT, so OUT is either the old file or the complete new\n"
    "one, never a partial file.\n"
    "\n"
    "  --dtype T     convert every floating-point tensor to T (F32, F16 or\n"
    "                BF16, in any case, or f32/fp32/float/float32,\n"
    "                f16/fp16/half/float16, bf16/bfloat16). Widening is\n"
    "                exact; narrowing rounds to nearest\n"
    "                even, and NaN, infinities and subnormals follow IEEE 754.\n"
    "                Integer and boolean tensors are kept as they are. GGUF\n"
    "                Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, the K-quants (Q2_K, Q3_K,\n"
    "                Q4_K, Q5_K, Q6_K, Q8_K), IQ4_NL, IQ4_XS and MXFP4 are\n"
    "                dequantised as ggml does, bit for bit; other quantised\n"
    "                types (IQ1-3, TQ*) can only be written to GGUF.\n"
    "  --format FMT  write FMT whatever OUT's extension (safetensors, npy,\n"
    "                npz, pth, keras, mxnet, gguf, tensorflow, tfjs, onnx)\n"
    "  --names keras TensorFlow checkpoint input: name tensors as a Keras\n"
    "                .h5 of the model does (see wv inspect --help)\n"
    "  --keep-quantized TF.js input: keep quantized weights as stored\n"
    "                (see wv inspect --help)\n"
    "  --objects     .pth input: read object pickles (see wv inspect --help)\n"
    "  --template MODEL.onnx\n"
    "                ONNX output (required): MODEL's initializers are\n"
    "                replaced by the tensors of the same names (scoped\n"
    "                names in subgraphs, as wv inspect shows them), all\n"
    "                else of MODEL kept byte for byte. Every initializer\n"
    "                needs a tensor, every tensor an initializer, of the\n"
    "                same shape and dtype (--dtype converts floats). When\n"
    "                MODEL keeps weights in external data, or OUT would\n"
    "                pass protobuf's 2 GiB, they go to OUT.data beside OUT\n"
    "                (written first; OUT last)\n"
    "  --config MODEL.json\n"
    "                the Keras model config (model.to_json(), a .keras\n"
    "                archive's config.json) of an input that holds none,\n"
    "                kept as metadata keras.config. Keras writes name a\n"
    "                model's weights differently in .h5 (Keras 2 layout)\n"
    "                and .weights.h5 (Keras 3): converting one to the other\n"
    "                translates the layout by the config, and is refused\n"
    "                without one.\n"
    "  --compress    npz only: deflate the members (as savez_compressed)\n"
    "  --nest        pth only: rebuild the dict tree from dotted names\n"
    "  --shard-size SIZE\n"
    "                split OUT into shards of at most SIZE bytes of tensor\n"
    "                data (5GB = 5*10^9, 2GiB = 2^30*2), named as Hugging\n"
    "                Face does: OUT=model.safetensors writes\n"
    "                model-00001-of-0000N.safetensors ... and the index\n"
    "                model.safetensors.index.json (written last). A set that\n"
    "                fits in one shard is written as the single file OUT.\n"
    "                TF.js: the size of each .bin shard (default 4MiB)\n"
    "  -q, --quiet   no summary line ('wv: wrote OUT: N tensors, SIZE in\n"
    "                T s', on stderr) and no progress bar (shown on a\n"
    "                terminal for sets of 32 MiB or more)\n"
    "\n"
    "IN may be a shard index (model.safetensors.index.json,\n"
    "pytorch_model.bin.index.json): its shards are read as one set.\n"
    "\n"
    "A .npy holds one array: the input must have exactly one tensor. npy,\n"
    "npz and MXNet cannot hold metadata; npy and npz have no BF16/F8; Keras\n"
    "HDF5 stores BF16/F8 as an opaque type that only weightvault reads back\n"
    "as such (a warning says so). Such losses are refused or reported,\n"
    "never silent.\n";

static const char verify_help[] =
    "usage: wv verify FILE [--objects]\n"
    "       wv verify REPO\n"
    "\n"
    "Validate FILE completely (structure, offsets, sizes, dtypes) and read\n"
    "every byte of every tensor. Prints 'ok' with a summary and exits 0, or\n"
    "prints one line saying what is wrong and exits 1 (3 for I/O errors).\n"
    "--objects reads .pth object pickles (see wv inspect --help).\n"
    "\n"
    "If the argument is a repository (a directory holding a 'config', or a\n"
    "file:// URI), check all of it: every ref names a checkpoint; every\n"
    "manifest, index object and pack is intact (hashes to its name,\n"
    "parses, index entries agree with the packs); and every chunk of every\n"
    "stored checkpoint, not only those on branches and tags, is read and\n"
    "re-hashed. Prints one line per problem, naming the damaged object,\n"
    "the checkpoint and its branch, and the tensor, then a summary line,\n"
    "and exits 1; or 'ok: N checkpoints, M chunks, X bytes verified' and\n"
    "exits 0. Commits may run meanwhile; while gc runs it exits 5.\n";

bool cli_want_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
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

int cli_load(const char *path, unsigned flags, wv_model **m)
{
    return cli_load_some(path, flags, NULL, 0, m);
}

/* --max-expand N (0: the library's default or $WV_MAX_EXPAND). */
static uint64_t cli_max_expand;

/* Take "--max-expand N" out of argv, wherever it is. */
static int cli_take_max_expand(int *argc, char **argv)
{
    int out = 0;
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--max-expand") == 0) {
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
    argv[out] = NULL;
    *argc = out;
    return 0;
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
                "lists): %.2000s\n", path, sk);
    return rc;
}

/* --names keys|keras: TensorFlow checkpoints' tensor names. */
static int cli_names_flag(const char *v, unsigned *flags)
{
    if (strcmp(v, "keras") == 0)
        *flags |= WV_LOAD_KERAS_NAMES;
    else if (strcmp(v, "keys") == 0)
        *flags &= ~WV_LOAD_KERAS_NAMES;
    else
        return -1;
    return 0;
}

/* ---- commands ----------------------------------------------------------- */

/* An s3:// or http(s):// file, read over the network. */
static bool cli_is_url(const char *p)
{
    return strncmp(p, "s3://", 5) == 0 || strncmp(p, "http://", 7) == 0 ||
           strncmp(p, "https://", 8) == 0;
}

static int cmd_inspect(int argc, char **argv)
{
    const char *file = NULL;
    bool json = false;
    wv_model *m = NULL;
    int rc;
    const char *names[64];
    size_t n_names = 0;
    unsigned lflags = WV_LOAD_MMAP;

    if (cli_want_help(argc, argv)) {
        fputs(inspect_help, stdout);
        return 0;
    }
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--names") == 0) {
            if (i + 1 >= argc || cli_names_flag(argv[++i], &lflags) != 0)
                return cli_usage("inspect", "--names takes keys or keras");
        }
        else if (strcmp(argv[i], "--keep-quantized") == 0)
            lflags |= WV_LOAD_TFJS_QUANTIZED;
        else if (strcmp(argv[i], "--objects") == 0)
            lflags |= WV_LOAD_OBJECTS;
        else if (strcmp(argv[i], "--tensor") == 0 || strcmp(argv[i], "-t") == 0) {
            if (i + 1 >= argc)
                return cli_usage("inspect", "%s needs a tensor name", argv[i]);
            if (n_names == sizeof names / sizeof names[0])
                return cli_usage("inspect", "at most 64 --tensor options");
            names[n_names++] = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1] != '\0')
            return cli_unknown_option("inspect", inspect_help, argv[i]);
        else if (file == NULL)
            file = argv[i];
        else
            return cli_usage("inspect", "one FILE only");
    }
    if (file == NULL)
        return cli_usage("inspect", "missing FILE");
    /* The table needs no tensor data: the file is read by its header (or
     * index parts) only, locally as remotely (a .pth's members are not
     * read, so neither are their CRCs). --json hashes the data. */
    bool index = !json;
    if ((rc = cli_load_some(file, lflags | (index ? WV_LOAD_INDEX : 0u),
                            n_names ? names : NULL, n_names, &m)) != WV_OK)
        return cli_exit_code(rc);
    const char *fmt = wv_model_source_format(m);
    if (index && cli_is_url(file) && strcmp(fmt, "safetensors") != 0 &&
        strcmp(fmt, "npy") != 0 && strcmp(fmt, "gguf") != 0 &&
        strcmp(fmt, "pth") != 0)
        fprintf(stderr,
                "wv: note: %s: %s files cannot be listed by ranged reads: "
                "the whole file was downloaded (into memory)\n",
                cli_q(file), fmt);

    size_t n = wv_model_count(m);
    if (json) {
        printf("{\"format\": ");
        cli_json_string(stdout, wv_model_source_format(m));
        printf(", \"metadata\": {");
        for (size_t i = 0; i < wv_model_meta_count(m); i++) {
            const char *k, *v;
            wv_model_meta(m, i, &k, &v);
            printf("%s", i ? ", " : "");
            cli_json_string(stdout, k);
            printf(": ");
            cli_json_string(stdout, v);
        }
        printf("}, \"tensors\": [");
        for (size_t i = 0; i < n; i++) {
            const wv_tensor *t = wv_model_tensor(m, i);
            unsigned char d[32];
            char shape[256];
            if ((rc = wv_tensor_sha256(t, d)) != WV_OK)
                break;
            cli_shape_str(t, shape, sizeof shape);
            printf("%s{\"name\": ", i ? ", " : "");
            cli_json_string(stdout, wv_tensor_name(t));
            printf(", \"dtype\": \"%s\", \"shape\": %s, \"nbytes\": %zu, "
                   "\"sha256\": \"",
                   wv_dtype_name(wv_tensor_dtype(t)), shape,
                   wv_tensor_nbytes(t));
            for (int k = 0; k < 32; k++)
                printf("%02x", d[k]);
            printf("\"}");
        }
        printf("]}\n");
    } else {
        uint64_t total = 0;
        size_t w = 4;
        for (size_t i = 0; i < n; i++) {
            const wv_tensor *t = wv_model_tensor(m, i);
            size_t l = strlen(cli_q(wv_tensor_name(t)));
            if (l > w)
                w = l < 60 ? l : 60;
            total += wv_tensor_nbytes(t);
        }
        char hb[32];
        cli_human_bytes(total, hb, sizeof hb);
        printf("file:     %s\n", cli_q(file));
        printf("format:   %s\n", wv_model_source_format(m));
        printf("tensors:  %zu (%s)\n", n, hb);
        size_t nm = wv_model_meta_count(m);
        printf("metadata: %s\n", nm ? "" : "(none)");
        for (size_t i = 0; i < nm; i++) {
            const char *k, *v;
            wv_model_meta(m, i, &k, &v);
            size_t vl = strlen(v);
            printf("  %s = %s%s\n", cli_q(k), cli_textn(v, 200),
                   vl > 200 ? "..." : "");
        }
        printf("\n%-*s  %-8s  %-20s  %s\n", (int)w, "name", "dtype", "shape",
               "bytes");
        for (size_t i = 0; i < n; i++) {
            const wv_tensor *t = wv_model_tensor(m, i);
            char shape[256];
            cli_shape_str(t, shape, sizeof shape);
            printf("%-*s  %-8s  %-20s  %zu\n", (int)w, cli_q(wv_tensor_name(t)),
                   wv_dtype_name(wv_tensor_dtype(t)), shape,
                   wv_tensor_nbytes(t));
        }
    }
    if (fflush(stdout) != 0 && rc == WV_OK) {
        fprintf(stderr, "wv: writing output failed: %s\n", strerror(errno));
        rc = WV_IO;
    }
    wv_model_free(m);
    return cli_exit_code(rc);
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

/* --config FILE: the model config (Keras model.to_json(), a .keras
 * archive's config.json) as metadata keras.config, unless the set holds
 * one already (keras.model_config or keras.config). Text of at most
 * 64 MiB. */
static int convert_config(wv_model *m, const char *path)
{
    FILE *f;
    char *text = NULL;
    size_t cap = 1 << 16, len = 0, got;
    int rc = WV_OK;
    if (wv_model_get_meta(m, "keras.model_config") != NULL ||
        wv_model_get_meta(m, "keras.config") != NULL)
        return WV_OK;
    if ((f = fopen(path, "rb")) == NULL) {
        fprintf(stderr, "wv: %s: %s\n", path, strerror(errno));
        return WV_IO;
    }
    text = malloc(cap);
    while (text && (got = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (len + 1 < cap)
            continue;
        char *nt = cap < ((size_t)64 << 20) ? realloc(text, cap * 2) : NULL;
        if (nt == NULL) {
            fprintf(stderr, "wv: %s: larger than 64 MiB\n", path);
            rc = WV_FORMAT;
            break;
        }
        text = nt;
        cap *= 2;
    }
    fclose(f);
    if (text == NULL) {
        fprintf(stderr, "wv: out of memory\n");
        return WV_NOMEM;
    }
    text[len] = '\0';
    if (rc == WV_OK && strlen(text) != len) {
        fprintf(stderr, "wv: %s: not a text file\n", path);
        rc = WV_FORMAT;
    }
    if (rc == WV_OK && (rc = wv_model_set_meta(m, "keras.config", text)) !=
                           WV_OK)
        fprintf(stderr, "wv: %s: %s\n", path, wv_model_errmsg(m));
    free(text);
    return rc;
}

static int cmd_convert(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *config = NULL;
    bool quiet = false;
    double t0 = cli_now();
    struct cli_progress prog;
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    wv_model *m = NULL;
    int rc;
    unsigned lflags = WV_LOAD_MMAP;

    if (cli_want_help(argc, argv)) {
        fputs(convert_help, stdout);
        return 0;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--names") == 0) {
            if (i + 1 >= argc || cli_names_flag(argv[++i], &lflags) != 0)
                return cli_usage("convert", "--names takes keys or keras");
        } else if (strcmp(a, "--keep-quantized") == 0) {
            lflags |= WV_LOAD_TFJS_QUANTIZED;
        } else if (strcmp(a, "--objects") == 0) {
            lflags |= WV_LOAD_OBJECTS;
        } else if (strcmp(a, "--dtype") == 0 || strcmp(a, "--format") == 0) {
            if (i + 1 >= argc)
                return cli_usage("convert", "%s needs a value", a);
            const char *v = argv[++i];
            if (a[2] == 'd') {
                if (cli_cast_dtype("convert", v, &so.cast) != 0)
                    return EXIT_USAGE;
            } else if (wv_format_from_name(v, &so.format) != WV_OK) {
                return cli_usage("convert", "unknown format '%s'", v);
            }
        } else if (strcmp(a, "--shard-size") == 0) {
            if (i + 1 >= argc)
                return cli_usage("convert", "%s needs a value", a);
            so.shard_size = cli_parse_size(argv[++i]);
            if (so.shard_size == 0)
                return cli_usage("convert",
                                   "--shard-size takes a size such as 5GB, "
                                   "500MB or 2GiB, not '%s'",
                                   argv[i]);
        } else if (strcmp(a, "--template") == 0) {
            if (i + 1 >= argc)
                return cli_usage("convert", "%s needs a file", a);
            so.template_path = argv[++i];
        } else if (strcmp(a, "--compress") == 0) {
            so.flags |= WV_SAVE_COMPRESS;
        } else if (strcmp(a, "--nest") == 0) {
            so.flags |= WV_SAVE_NEST;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            quiet = true;
        } else if (strcmp(a, "--config") == 0) {
            if (i + 1 >= argc)
                return cli_usage("convert", "%s needs a file", a);
            config = argv[++i];
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            /* as in wv checkout: OUT may also be given this way */
            if (i + 1 >= argc)
                return cli_usage("convert", "%s needs a file", a);
            if (out != NULL)
                return cli_usage("convert", "OUT given twice");
            out = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0') {
            return cli_unknown_option("convert", convert_help, a);
        } else if (in == NULL) {
            in = a;
        } else if (out == NULL) {
            out = a;
        } else {
            return cli_usage("convert", "too many arguments");
        }
    }
    if (in == NULL || out == NULL)
        return cli_usage("convert", "needs IN and OUT");
    /* a directory: a TF.js model.json (and its shards) in it */
    struct stat ost;
    size_t ol = strlen(out);
    char out_json[4096];
    if ((so.format == WV_FMT_AUTO || so.format == WV_FMT_TFJS) &&
        ((ol > 0 && out[ol - 1] == '/') ||
         (stat(out, &ost) == 0 && S_ISDIR(ost.st_mode)))) {
        if (snprintf(out_json, sizeof out_json, "%s%smodel.json", out,
                     out[ol - 1] == '/' ? "" : "/") >= (int)sizeof out_json)
            return cli_usage("convert", "OUT is too long");
        out = out_json;
        so.format = WV_FMT_TFJS;
    }
    if (so.format == WV_FMT_AUTO &&
        wv_format_from_path(out, &so.format) != WV_OK)
        return cli_usage("convert",
                           "cannot tell the output format from '%s'; use a "
                           "known extension (.safetensors, .npz, .pth, .h5, "
                           ".params, .gguf, ...) or --format",
                           out);
    if (so.format == WV_FMT_ONNX && so.template_path == NULL)
        return cli_usage("convert",
                         "ONNX needs a template model: --template "
                         "MODEL.onnx, whose initializers the tensors of %s "
                         "replace",
                         in);
    if (so.format == WV_FMT_TFJS) {
        /* TF.js is a directory of files: made if missing (one level) */
        char dir[4096];
        const char *sl = strrchr(out, '/');
        if (sl && sl != out && (size_t)(sl - out) < sizeof dir) {
            memcpy(dir, out, (size_t)(sl - out));
            dir[sl - out] = '\0';
            if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
                fprintf(stderr, "wv: %s: cannot make the directory: %s\n",
                        dir, strerror(errno));
                return EXIT_IO;
            }
        }
    }
    if ((rc = cli_load(in, lflags, &m)) != WV_OK)
        return cli_exit_code(rc);
    if (config != NULL && (rc = convert_config(m, config)) != WV_OK) {
        wv_model_free(m);
        return cli_exit_code(rc);
    }
    /* npy, npz and MXNet lists have nowhere to put metadata. */
    if ((so.format == WV_FMT_NPY || so.format == WV_FMT_NPZ ||
         so.format == WV_FMT_MXNET) &&
        wv_model_meta_count(m) > 0)
        fprintf(stderr,
                "wv: warning: %s cannot hold metadata; %zu entr%s of %s not "
                "carried over\n",
                wv_format_name(so.format), wv_model_meta_count(m),
                wv_model_meta_count(m) == 1 ? "y" : "ies", in);
    cli_warn_opaque(m, &so, out);
    cli_warn_layout(m, &so, out, (lflags & WV_LOAD_KERAS_NAMES) != 0);
    cli_progress_init(&prog, quiet, CLI_PROGRESS_MIN);
    if (prog.on) {
        so.progress = cli_progress_cb;
        so.progress_arg = &prog;
    }
    rc = wv_model_save(m, out, &so);
    cli_progress_end(&prog, rc == WV_OK);
    if (rc != WV_OK) {
        cli_die(wv_model_errmsg(m));
    } else if (!quiet) {
        char what[600];
        snprintf(what, sizeof what, "wrote %.500s (%s)", out,
                 wv_format_name(so.format));
        cli_summary(what, wv_model_count(m), cli_model_bytes(m, so.cast),
                    t0);
    }
    wv_model_free(m);
    return cli_exit_code(rc);
}

static int cmd_verify(int argc, char **argv)
{
    const char *file = NULL;
    wv_model *m = NULL;
    int rc;
    unsigned lflags = WV_LOAD_PREAD;

    if (cli_want_help(argc, argv)) {
        fputs(verify_help, stdout);
        return 0;
    }
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--objects") == 0) {
            lflags |= WV_LOAD_OBJECTS;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return cli_unknown_option("verify", verify_help, argv[i]);
        if (file != NULL)
            return cli_usage("verify", "one FILE only");
        file = argv[i];
    }
    if (file == NULL)
        return cli_usage("verify", "missing FILE");
    if (cli_is_repo(file))
        return cmd_verify_repo(file);
    /* Read with pread so every byte really comes off the storage and an
     * I/O error is reported as one, not as a SIGBUS from a mapping. */
    if ((rc = cli_load(file, lflags, &m)) != WV_OK)
        return cli_exit_code(rc);
    uint64_t total = 0;
    for (size_t i = 0; i < wv_model_count(m); i++)
        total += wv_tensor_nbytes(wv_model_tensor(m, i));
    printf("ok: %s: %s, %zu tensors, %llu bytes of tensor data\n", cli_text(file),
           wv_model_source_format(m), wv_model_count(m),
           (unsigned long long)total);
    wv_model_free(m);
    return 0;
}

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
    if (cli_take_key_file(&sub_argc, sub_argv) != 0)
        return EXIT_USAGE;
    if (cli_take_max_expand(&sub_argc, sub_argv) != 0)
        return EXIT_USAGE;
    /* --allow-rollback, anywhere: the library reads WV_ALLOW_ROLLBACK */
    int kept = 0;
    for (int i = 0; i < sub_argc; i++) {
        if (strcmp(sub_argv[i], "--allow-rollback") == 0)
            setenv("WV_ALLOW_ROLLBACK", "1", 1);
        else
            sub_argv[kept++] = sub_argv[i];
    }
    sub_argv[kept] = NULL;
    sub_argc = kept;
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
