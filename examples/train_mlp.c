/*
 * train_mlp.c -- training that survives being killed: a small MLP learns a
 * synthetic task, checkpoints into a weightvault repository every K steps
 * and, when restarted, resumes from the head of its branch.
 *
 *   train_mlp REPO --steps N --every K [--branch B] [--async] [--seed S]
 *             [--hidden H] [--batch B] [--quiet]
 *
 * The task: inputs x uniform in [-1, 1]^16 drawn from a seeded PRNG, targets
 * y = teacher(x) + noise, where the teacher is a fixed random network
 * 16-16-1 (tanh) derived from the seed. The student is 16-H-1 (tanh),
 * trained with Adam on the mean squared error.
 *
 * A checkpoint holds everything the next step depends on: the weights, the
 * Adam moments, the step, and the data PRNG's state (its 64 bits stored as
 * an I64 tensor, which PyTorch can load, as it has no uint64). The run is
 * deterministic (no time-based seed, one thread, every sum in a fixed
 * order), so a run that is SIGKILLed anywhere and restarted until it is
 * done ends with weights bit-identical to an uninterrupted run's. With
 * --async the checkpoints are committed in the background
 * (wv_repo_commit_async): training waits only for the copy of the tensors.
 *
 * The REPO is created if missing. The checkpoint at step N is always
 * written, also when K does not divide N.
 */
#include "weightvault.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define D_IN 16
#define D_TEACH 16
#define MAX_PENDING 64

struct param {
    const char *name;
    int ndim;
    uint64_t shape[2];
    size_t n;
    float *w, *g, *m, *v; /* weights, gradient, Adam moments */
};

struct net {
    int hidden;
    struct param p[4]; /* fc1.weight [H, 16], fc1.bias [H], fc2.weight
                          [1, H], fc2.bias [1] */
};

/* splitmix64: a tiny PRNG whose whole state is one 64-bit word. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1), exactly representable. */
static float rng_sym(uint64_t *s)
{
    return (float)(rng_next(s) >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

static int die(const char *what, const char *msg, int rc)
{
    fprintf(stderr, "train_mlp: %s: %s (%s)\n", what, msg && msg[0] ? msg
                                                                    : "",
            wv_strerror(rc));
    return 1;
}

static int net_init(struct net *nt, int hidden, uint64_t seed)
{
    static const char *names[4] = {"fc1.weight", "fc1.bias", "fc2.weight",
                                   "fc2.bias"};
    uint64_t s = seed ^ 0x5eedull;
    nt->hidden = hidden;
    for (int i = 0; i < 4; i++) {
        struct param *p = &nt->p[i];
        p->name = names[i];
        p->ndim = i % 2 == 0 ? 2 : 1;
        p->shape[0] = i < 2 ? (uint64_t)hidden : 1;
        p->shape[1] = i == 0 ? D_IN : i == 2 ? (uint64_t)hidden : 0;
        p->n = (size_t)p->shape[0] * (p->ndim == 2 ? (size_t)p->shape[1] : 1);
        p->w = calloc(p->n, sizeof *p->w);
        p->g = calloc(p->n, sizeof *p->g);
        p->m = calloc(p->n, sizeof *p->m);
        p->v = calloc(p->n, sizeof *p->v);
        if (!p->w || !p->g || !p->m || !p->v)
            return WV_NOMEM;
        /* Weights ~ U(-1, 1) / sqrt(fan_in); biases start at zero. */
        if (p->ndim == 2) {
            float scale = 1.0f / sqrtf((float)p->shape[1]);
            for (size_t k = 0; k < p->n; k++)
                p->w[k] = rng_sym(&s) * scale;
        }
    }
    return WV_OK;
}

static void net_free(struct net *nt)
{
    for (int i = 0; i < 4; i++) {
        free(nt->p[i].w);
        free(nt->p[i].g);
        free(nt->p[i].m);
        free(nt->p[i].v);
    }
}

/* The teacher: fixed weights from the seed, never trained. */
struct teacher {
    float w1[D_TEACH][D_IN], b1[D_TEACH], w2[D_TEACH], b2;
};

static void teacher_init(struct teacher *t, uint64_t seed)
{
    uint64_t s = seed ^ 0x7eac4e5ull;
    for (int j = 0; j < D_TEACH; j++) {
        for (int i = 0; i < D_IN; i++)
            t->w1[j][i] = rng_sym(&s) * 0.8f;
        t->b1[j] = rng_sym(&s) * 0.3f;
        t->w2[j] = rng_sym(&s);
    }
    t->b2 = rng_sym(&s) * 0.1f;
}

static float teacher_eval(const struct teacher *t, const float *x)
{
    float y = t->b2;
    for (int j = 0; j < D_TEACH; j++) {
        float a = t->b1[j];
        for (int i = 0; i < D_IN; i++)
            a += t->w1[j][i] * x[i];
        y += t->w2[j] * tanhf(a);
    }
    return y;
}

/* One step of Adam on one batch; returns the batch loss. Scratch: h
 * (hidden activations of one example). Every sum runs in a fixed order. */
static float train_step(struct net *nt, const struct teacher *te,
                        uint64_t *rng, int batch, int64_t step, float *h)
{
    const int H = nt->hidden;
    float *w1 = nt->p[0].w, *b1 = nt->p[1].w, *w2 = nt->p[2].w;
    float *b2 = nt->p[3].w;
    float *g1 = nt->p[0].g, *gb1 = nt->p[1].g, *g2 = nt->p[2].g;
    float *gb2 = nt->p[3].g;
    float x[D_IN], loss = 0.0f;
    for (int i = 0; i < 4; i++)
        memset(nt->p[i].g, 0, nt->p[i].n * sizeof(float));
    for (int b = 0; b < batch; b++) {
        for (int i = 0; i < D_IN; i++)
            x[i] = rng_sym(rng);
        float y = teacher_eval(te, x) + 0.01f * rng_sym(rng);
        float out = b2[0];
        for (int j = 0; j < H; j++) {
            float a = b1[j];
            for (int i = 0; i < D_IN; i++)
                a += w1[j * D_IN + i] * x[i];
            h[j] = tanhf(a);
            out += w2[j] * h[j];
        }
        float err = out - y;
        loss += err * err;
        float dout = 2.0f * err / (float)batch;
        gb2[0] += dout;
        for (int j = 0; j < H; j++) {
            g2[j] += dout * h[j];
            float da = dout * w2[j] * (1.0f - h[j] * h[j]);
            gb1[j] += da;
            for (int i = 0; i < D_IN; i++)
                g1[j * D_IN + i] += da * x[i];
        }
    }
    const float lr = 3e-3f, b1c = 0.9f, b2c = 0.999f, eps = 1e-8f;
    float c1 = 1.0f - powf(b1c, (float)step);
    float c2 = 1.0f - powf(b2c, (float)step);
    for (int i = 0; i < 4; i++) {
        struct param *p = &nt->p[i];
        for (size_t k = 0; k < p->n; k++) {
            p->m[k] = b1c * p->m[k] + (1.0f - b1c) * p->g[k];
            p->v[k] = b2c * p->v[k] + (1.0f - b2c) * p->g[k] * p->g[k];
            float mh = p->m[k] / c1, vh = p->v[k] / c2;
            p->w[k] -= lr * mh / (sqrtf(vh) + eps);
        }
    }
    return loss / (float)batch;
}

/* The checkpoint as a tensor set that borrows the training arrays: it is
 * committed (or staged by the asynchronous commit) before they change. */
static int build_set(struct net *nt, int64_t *step, uint64_t *rng,
                     float loss, uint64_t seed, wv_model **out)
{
    wv_model *m = NULL;
    char name[96], val[64];
    int rc = wv_model_new(&m);
    for (int i = 0; rc == WV_OK && i < 4; i++) {
        struct param *p = &nt->p[i];
        size_t nb = p->n * sizeof(float);
        snprintf(name, sizeof name, "model.%s", p->name);
        rc = wv_model_add(m, name, WV_F32, p->ndim, p->shape, p->w, nb,
                          WV_DATA_BORROW);
        snprintf(name, sizeof name, "optim.%s.exp_avg", p->name);
        if (rc == WV_OK)
            rc = wv_model_add(m, name, WV_F32, p->ndim, p->shape, p->m, nb,
                              WV_DATA_BORROW);
        snprintf(name, sizeof name, "optim.%s.exp_avg_sq", p->name);
        if (rc == WV_OK)
            rc = wv_model_add(m, name, WV_F32, p->ndim, p->shape, p->v, nb,
                              WV_DATA_BORROW);
    }
    uint64_t one = 1;
    if (rc == WV_OK)
        rc = wv_model_add(m, "optim.step", WV_I64, 0, NULL, step,
                          sizeof *step, WV_DATA_BORROW);
    if (rc == WV_OK)
        rc = wv_model_add(m, "rng.state", WV_I64, 1, &one, rng, sizeof *rng,
                          WV_DATA_BORROW);
    snprintf(val, sizeof val, "%lld", (long long)*step);
    if (rc == WV_OK)
        rc = wv_model_set_meta(m, "step", val);
    snprintf(val, sizeof val, "%.9g", (double)loss);
    if (rc == WV_OK)
        rc = wv_model_set_meta(m, "loss", val);
    snprintf(val, sizeof val, "%llu", (unsigned long long)seed);
    if (rc == WV_OK)
        rc = wv_model_set_meta(m, "seed", val);
    snprintf(val, sizeof val, "{\"arch\": \"mlp\", \"sizes\": [%d, %d, 1]}",
             D_IN, nt->hidden);
    if (rc == WV_OK)
        rc = wv_model_set_meta(m, "config", val);
    if (rc != WV_OK) {
        fprintf(stderr, "train_mlp: building the checkpoint: %s\n",
                wv_model_errmsg(m));
        wv_model_free(m);
        m = NULL;
    }
    *out = m;
    return rc;
}

/* Copy tensor `name` of the checkpoint into dst, checking its layout. */
static int restore(const wv_model *m, const char *name, wv_dtype dt,
                   void *dst, size_t len)
{
    const wv_tensor *t = wv_model_find(m, name);
    if (t == NULL || wv_tensor_dtype(t) != dt || wv_tensor_nbytes(t) != len) {
        fprintf(stderr, "train_mlp: the checkpoint's '%s' is missing or "
                        "does not fit this network\n",
                name);
        return WV_FORMAT;
    }
    return wv_tensor_read(t, 0, dst, len);
}

static int resume(wv_repo *r, const char *branch, struct net *nt,
                  int64_t *step, uint64_t *rng, uint64_t seed)
{
    char id[WV_ID_HEX], name[96];
    wv_model *m = NULL;
    int rc = wv_repo_resolve(r, branch, id);
    if (rc == WV_NOTFOUND)
        return WV_OK; /* nothing yet: a fresh start */
    if (rc != WV_OK)
        return die("resolve", wv_repo_errmsg(r), rc), rc;
    if ((rc = wv_repo_checkout(r, id, NULL, &m)) != WV_OK)
        return die("checkout", wv_repo_errmsg(r), rc), rc;
    const char *s = wv_model_get_meta(m, "seed");
    char want[32];
    snprintf(want, sizeof want, "%llu", (unsigned long long)seed);
    if (s == NULL || strcmp(s, want) != 0) {
        fprintf(stderr, "train_mlp: branch '%s' holds a run with seed %s, "
                        "not %s\n",
                branch, s ? s : "(none)", want);
        rc = WV_MISUSE;
    }
    for (int i = 0; rc == WV_OK && i < 4; i++) {
        struct param *p = &nt->p[i];
        size_t nb = p->n * sizeof(float);
        snprintf(name, sizeof name, "model.%s", p->name);
        rc = restore(m, name, WV_F32, p->w, nb);
        snprintf(name, sizeof name, "optim.%s.exp_avg", p->name);
        if (rc == WV_OK)
            rc = restore(m, name, WV_F32, p->m, nb);
        snprintf(name, sizeof name, "optim.%s.exp_avg_sq", p->name);
        if (rc == WV_OK)
            rc = restore(m, name, WV_F32, p->v, nb);
    }
    if (rc == WV_OK)
        rc = restore(m, "optim.step", WV_I64, step, sizeof *step);
    if (rc == WV_OK)
        rc = restore(m, "rng.state", WV_I64, rng, sizeof *rng);
    if (rc == WV_OK)
        printf("resumed from step %lld (checkpoint %.12s)\n",
               (long long)*step, id);
    wv_model_free(m);
    return rc;
}

static long parse_num(const char *s, long lo, long hi)
{
    char *end;
    long v = strtol(s, &end, 10);
    return *s && *end == '\0' && v >= lo && v <= hi ? v : lo - 1;
}

static const char usage[] =
    "usage: train_mlp REPO --steps N --every K [--branch B] [--async]\n"
    "                 [--seed S] [--hidden H] [--batch B] [--quiet]\n"
    "\n"
    "Train a 16-H-1 MLP with Adam on a synthetic task, committing weights,\n"
    "Adam moments, step and PRNG state to REPO (created if missing) every K\n"
    "steps and at step N. Restarted, it resumes from the head of its branch\n"
    "(default main, i.e. @latest); the result is bit-identical to an\n"
    "uninterrupted run.\n"
    "\n"
    "  --async     commit in the background (training waits for the copy)\n"
    "  --seed S    task and initialisation seed (default 1)\n"
    "  --hidden H  hidden units (default 64)\n"
    "  --batch B   examples per step (default 64)\n"
    "  --quiet     print only the final line\n";

int main(int argc, char **argv)
{
    const char *uri = NULL, *branch = "main";
    long steps = -1, every = -1, hidden = 64, batch = 64, seed_l = 1;
    int async = 0, quiet = 0, ret = 1, rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long *num = strcmp(a, "--steps") == 0    ? &steps
                    : strcmp(a, "--every") == 0  ? &every
                    : strcmp(a, "--hidden") == 0 ? &hidden
                    : strcmp(a, "--batch") == 0  ? &batch
                    : strcmp(a, "--seed") == 0   ? &seed_l
                                                 : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (num || strcmp(a, "--branch") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "train_mlp: %s needs a value\n%s", a, usage);
                return 2;
            }
            if (num == NULL) {
                branch = argv[++i];
            } else if ((*num = parse_num(argv[++i], num == &every ? 1 : 0,
                                         num == &steps ? 100000000 : 1 << 20))
                       < 0 || (num != &steps && num != &seed_l && *num == 0)) {
                fprintf(stderr, "train_mlp: bad %s '%s'\n", a, argv[i]);
                return 2;
            }
        } else if (strcmp(a, "--async") == 0) {
            async = 1;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else if (a[0] == '-' || uri != NULL) {
            fprintf(stderr, "train_mlp: unexpected '%s'\n%s", a, usage);
            return 2;
        } else {
            uri = a;
        }
    }
    if (uri == NULL || steps < 0 || every < 1) {
        fputs(usage, stderr);
        return 2;
    }
    uint64_t seed = (uint64_t)seed_l;

    struct net nt;
    struct teacher te;
    memset(&nt, 0, sizeof nt);
    wv_repo *r = NULL;
    wv_commit_handle *pending[MAX_PENDING];
    int n_pending = 0;
    float *h = calloc((size_t)hidden, sizeof *h);
    char eb[WV_ERRBUF_SIZE] = "", id[WV_ID_HEX] = "";
    if (h == NULL || net_init(&nt, (int)hidden, seed) != WV_OK) {
        fprintf(stderr, "train_mlp: out of memory\n");
        goto out;
    }
    teacher_init(&te, seed);

    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.errbuf = eb;
    io.errbuf_size = sizeof eb;
    rc = wv_repo_init(uri, &io);
    if (rc != WV_OK && rc != WV_EXISTS) {
        die("init", eb, rc);
        goto out;
    }
    if ((rc = wv_repo_open(uri, eb, sizeof eb, &r)) != WV_OK) {
        die("open", eb, rc);
        goto out;
    }
    int64_t step = 0;
    uint64_t rng = seed * 0x2545f4914f6cdd1dull + 1;
    if (resume(r, branch, &nt, &step, &rng, seed) != WV_OK)
        goto out;
    if (step >= steps) {
        wv_repo_resolve(r, branch, id);
        printf("done: already at step %lld of %ld (checkpoint %.12s)\n",
               (long long)step, steps, id);
        ret = 0;
        goto out;
    }
    if (step == 0 && !quiet)
        printf("starting at step 0 (seed %llu)\n", (unsigned long long)seed);

    float loss = 0.0f;
    while (step < steps) {
        step++;
        loss = train_step(&nt, &te, &rng, (int)batch, step, h);
        if (step % every != 0 && step != steps)
            continue;
        wv_model *set;
        if (build_set(&nt, &step, &rng, loss, seed, &set) != WV_OK)
            goto out;
        char msg[64];
        snprintf(msg, sizeof msg, "step %lld", (long long)step);
        wv_commit_opts co = WV_COMMIT_OPTS_INIT;
        co.message = msg;
        if (!async) {
            rc = wv_repo_commit(r, set, branch, &co, id);
            wv_model_free(set);
            if (rc != WV_OK) {
                die("commit", wv_repo_errmsg(r), rc);
                goto out;
            }
            if (!quiet)
                printf("step %lld loss %.6f checkpoint %.12s\n",
                       (long long)step, (double)loss, id);
            fflush(stdout);
            continue;
        }
        /* Reap finished commits; wait for the oldest if too many. */
        int keep = 0;
        for (int i = 0; i < n_pending; i++) {
            rc = wv_commit_poll(pending[i]);
            if (rc == WV_BUSY && !(i == 0 && n_pending == MAX_PENDING)) {
                pending[keep++] = pending[i];
                continue;
            }
            rc = wv_commit_wait(pending[i], NULL);
            if (rc != WV_OK) {
                die("commit", wv_commit_errmsg(pending[i]), rc);
                /* Keep every live handle for the cleanup below. */
                for (int j = i; j < n_pending; j++)
                    pending[keep++] = pending[j];
                n_pending = keep;
                wv_model_free(set);
                goto out;
            }
            wv_commit_free(pending[i]);
        }
        n_pending = keep;
        /* The copy is taken before this returns: training may go on. */
        rc = wv_repo_commit_async(r, set, branch, &co, WV_ASYNC_COPY,
                                  &pending[n_pending]);
        wv_model_free(set);
        if (rc != WV_OK) {
            die("commit", "cannot start an asynchronous commit", rc);
            goto out;
        }
        n_pending++;
        if (!quiet)
            printf("step %lld loss %.6f (committing in the background)\n",
                   (long long)step, (double)loss);
        fflush(stdout);
    }
    for (int i = 0; i < n_pending; i++) {
        rc = wv_commit_wait(pending[i], id);
        if (rc != WV_OK) {
            die("commit", wv_commit_errmsg(pending[i]), rc);
            goto out;
        }
    }
    printf("done: step %lld loss %.6f checkpoint %.12s\n", (long long)step,
           (double)loss, id);
    ret = 0;
out:
    for (int i = 0; i < n_pending; i++)
        wv_commit_free(pending[i]);
    wv_repo_close(r);
    net_free(&nt);
    free(h);
    return ret;
}
