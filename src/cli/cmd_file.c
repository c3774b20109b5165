/*
 * cmd_file.c -- wv inspect, wv convert, wv verify: the commands that read
 * (and write) weights files. wv verify also checks a whole repository when
 * its argument is one (a directory holding a 'config', or a URI).
 *
 * Errors are one line on stderr, "wv: <file>: <what is wrong>", and the exit
 * status tells the kind: 1 bad input (malformed, unsupported or failing
 * verification), 2 usage, 3 I/O, 4 anything else (out of memory, internal).
 */
#include "cli.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    "                  [--template MODEL.onnx|KERAS_FILE] [--config MODEL.json]\n"
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
    "  --template KERAS_FILE\n"
    "                .h5/.weights.h5 output: the layout of KERAS_FILE (a\n"
    "                Keras .h5, .weights.h5 or .keras of the model: its\n"
    "                groups, layer_names/weight_names, attributes, layers\n"
    "                without weights, root attributes) filled with IN's\n"
    "                tensors: by name when IN names its tensors as\n"
    "                KERAS_FILE does (wv inspect KERAS_FILE shows them),\n"
    "                otherwise by order and shape (IN's i-th tensor fills\n"
    "                the i-th). IN fills every weight of the model, and\n"
    "                the optimizer state too or none of it (then it is\n"
    "                left out). A tensor of another shape or dtype (after\n"
    "                --dtype), or another count, is refused, naming it.\n"
    "                The metadata is KERAS_FILE's (IN's is not carried\n"
    "                over: a warning says so). Without a template, a\n"
    "                source that is not Keras gets its tensors written but\n"
    "                no Keras layout (a warning says so)\n"
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

int cmd_inspect(int argc, char **argv)
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

/* --config FILE: the model config (Keras model.to_json(), a .keras
 * archive's config.json) as metadata keras.config, unless the set holds
 * one already (keras.model_config or keras.config). Text of at most
 * 64 MiB. */
static int convert_config(wv_model *m, const char *path)
{
    char *text = NULL;
    int rc = cli_read_text(path, (size_t)64 << 20, &text);
    if (rc != WV_OK)
        return rc;
    if (wv_model_get_meta(m, "keras.model_config") == NULL &&
        wv_model_get_meta(m, "keras.config") == NULL &&
        (rc = wv_model_set_meta(m, "keras.config", text)) != WV_OK)
        fprintf(stderr, "wv: %s: %s\n", cli_q(path), wv_model_errmsg(m));
    free(text);
    return rc;
}

int cmd_convert(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *config = NULL;
    bool quiet = false;
    double t0 = cli_now();
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
    /* a directory is TF.js (the library writes OUT/model.json and its
     * shards there, making the directory if missing) */
    if (so.format == WV_FMT_AUTO &&
        wv_format_for_save(out, &so.format) != WV_OK)
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
    if (so.format == WV_FMT_KERAS && so.template_path != NULL &&
        so.shard_size != 0)
        return cli_usage("convert",
                         "--template writes one Keras file in the layout of "
                         "%s: --shard-size does not apply",
                         so.template_path);
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
    rc = cli_save(m, out, &so, quiet, t0);
    wv_model_free(m);
    return cli_exit_code(rc);
}

/* ---- verify REPO -------------------------------------------------------- */

static void print_problem(void *arg, const wv_verify_problem *p)
{
    (void)arg;
    printf("%s\n", cli_text(p->message));
}

static int verify_repo(const char *uri)
{
    wv_repo *r = NULL;
    wv_verify_stats st;
    memset(&st, 0, sizeof st);
    char hb[32];
    int rc = cli_open_repo(uri, &r);
    if (rc != WV_OK)
        return cli_repo_exit(rc);
    rc = wv_repo_verify(r, print_problem, NULL, &st);
    if (st.unlocked[0])
        fprintf(stderr, "wv verify: note: %s: checked without a lock: %s\n",
                uri, st.unlocked);
    cli_human_bytes(st.bytes, hb, sizeof hb);
    if (rc == WV_OK) {
        printf("ok: %llu checkpoints, %llu chunks, %llu bytes (%s) "
               "verified; %llu refs, %llu index objects, %llu packs\n",
               (unsigned long long)st.checkpoints,
               (unsigned long long)st.chunks, (unsigned long long)st.bytes,
               hb, (unsigned long long)st.refs,
               (unsigned long long)st.indexes,
               (unsigned long long)st.packs);
    } else if (wv_primary(rc) == WV_CORRUPT && st.problems) {
        printf("FAILED: %llu problem%s in %s; %llu checkpoints, %llu "
               "chunks, %llu bytes verified intact\n",
               (unsigned long long)st.problems,
               st.problems == 1 ? "" : "s", uri,
               (unsigned long long)st.checkpoints,
               (unsigned long long)st.chunks, (unsigned long long)st.bytes);
        rc = WV_CORRUPT;
    } else {
        cli_die(wv_repo_errmsg(r));
    }
    wv_repo_close(r);
    return rc == WV_OK ? 0 : wv_primary(rc) == WV_CORRUPT ? EXIT_BAD_INPUT
                                                           : cli_repo_exit(rc);
}

int cmd_verify(int argc, char **argv)
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
        return verify_repo(file);
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
