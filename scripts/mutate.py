#!/usr/bin/python3
"""mutate.py -- a mutation run over every format wv reads (issue 14).

Takes seed files of every format (tests/fixtures, plus a deflated .npz,
a Fletcher-32 HDF5 file and a shared-storage .pth built here when numpy,
h5py and torch import, and a TF.js manifest with two shards); a format of
several files (TensorFlow bundle, TF.js) has one of its files mutated,
makes mutants of them (bit flips, truncations, byte insertions, small
overwrites), and runs each mutant through

    wv inspect M          wv verify M
    wv convert M OUT      (OUT cycles through .safetensors .npz .pth .gguf)
    wv commit REPO M

It asserts, for every mutant:
  * no crash and no hang: every command exits 0..6 within the timeout
    (a signal, an exit status above 6 or a timeout is a failure);
  * no silent wrong output: a mutant that converts (or commits) with exit 0
    also passes `wv verify` -- a damaged file is never accepted by one
    command and refused by another.
Failing mutants are kept in --keep DIR with a line in DIR/failures.txt.
Prints the counts per format and per outcome, exits 1 on any failure.

usage: /usr/bin/python3 scripts/mutate.py [--wv build/wv] [--count N]
         [--seed S] [--fixtures DIR] [--keep DIR] [--timeout SECS]
"""
import argparse
import collections
import io
import os
import random
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)

# (format, path relative to the fixtures directory)
FIXTURES = [
    ("safetensors", "safetensors/samples/overall.safetensors"),
    ("safetensors", "safetensors/candle-connect4-dqn-small.safetensors"),
    ("npy", "npy/test.npy"),
    ("npz", "npy/test.npz"),
    ("pth", "pth/test.pt"),
    ("pth", "pth/fortran_tensor_3d.pth"),
    ("pth", "pth/boolean.pt"),
    ("pth", "pth/test_with_key.pt"),
    ("keras", "tf/b/Gauraviitkgp-Tensorflow/1_BASIC/my_model.h5"),
    ("mxnet", "mxnet/lenet-0001.params"),
    ("mxnet", "mxnet/legacy_ndarray.v0"),
    ("gguf", "gguf/stories260K.gguf"),
    ("pth", "pth/stianhanssen-mnist_cnn.pt"),
    ("keras", "h5/keras3-mnist-shreyansh/model.weights.h5"),
    ("keras", "h5/keras3-mnist-shreyansh/model.keras"),
]
# Formats of several files: (format, {name in the work directory: fixture
# path}, the file mutated, the file named on the command line).
TF = "tf/b/dpong-Keras_Stock_Price_Prediction/model_weights"
MULTI = [
    ("tfbundle", {"m.index": TF + ".index",
                  "m.data-00000-of-00001": TF + ".data-00000-of-00001"},
     "m.index", "m.index"),
    ("tfbundle", {"m.index": TF + ".index",
                  "m.data-00000-of-00001": TF + ".data-00000-of-00001"},
     "m.data-00000-of-00001", "m.index"),
]
OUTS = [".safetensors", ".npz", ".pth", ".gguf"]


def generated_seeds(d):
    """Seeds the fixtures lack: deflated npz members, a Fletcher-32 HDF5
    dataset, a .keras archive, a pth whose tensors share one storage."""
    seeds = []
    try:
        import numpy as np
        rng = np.random.default_rng(1)
        p = os.path.join(d, "deflated.npz")
        np.savez_compressed(p, a=rng.standard_normal(64).astype("<f4"),
                            b=np.arange(10, dtype="<i8"))
        seeds.append(("npz", p))
    except ImportError:
        pass
    try:
        import numpy as np
        import h5py
        p = os.path.join(d, "fletcher.h5")
        with h5py.File(p, "w") as f:
            f.create_dataset("dense/kernel:0",
                             data=np.arange(64, dtype="<f4").reshape(8, 8),
                             chunks=(4, 8), fletcher32=True)
            f.create_dataset("dense/bias:0", data=np.ones(8, "<f4"))
        seeds.append(("keras", p))
    except ImportError:
        pass
    try:
        import torch
        p = os.path.join(d, "shared.pth")
        base = torch.arange(48, dtype=torch.float32)
        torch.save({"w": base, "v": base[8:24].view(4, 4), "t": base,
                    "h": base.half()}, p)
        seeds.append(("pth", p))
    except ImportError:
        pass
    return seeds


def tfjs_seed(d):
    """A TF.js layers-model manifest with float32, int32 and uint8-quantized
    weights over two shards (a tensor spans them), written here."""
    import json
    import struct
    sd = os.path.join(d, "tfjs-seed")
    os.makedirs(sd, exist_ok=True)
    w = struct.pack("<12f", *[i * 0.25 - 1 for i in range(12)])
    k = struct.pack("<4i", 1, -2, 3, -4)
    q = bytes(range(0, 240, 15))
    blob = w + k + q
    cut = 30  # inside the first tensor's bytes: it spans both shards
    with open(os.path.join(sd, "group1-shard1of2.bin"), "wb") as f:
        f.write(blob[:cut])
    with open(os.path.join(sd, "group1-shard2of2.bin"), "wb") as f:
        f.write(blob[cut:])
    man = {"format": "layers-model", "generatedBy": "mutate.py",
           "modelTopology": {"class_name": "Sequential", "config": {}},
           "weightsManifest": [{
               "paths": ["group1-shard1of2.bin", "group1-shard2of2.bin"],
               "weights": [
                   {"name": "dense/kernel", "shape": [3, 4],
                    "dtype": "float32"},
                   {"name": "step", "shape": [4], "dtype": "int32"},
                   {"name": "q/kernel", "shape": [16], "dtype": "float32",
                    "quantization": {"dtype": "uint8", "scale": 0.01,
                                     "min": -1.0}}]}]}
    with open(os.path.join(sd, "model.json"), "w") as f:
        json.dump(man, f)
    files = {n: os.path.join(sd, n) for n in os.listdir(sd)}
    return [("tfjs", files, "model.json", "model.json"),
            ("tfjs", files, "group1-shard2of2.bin", "model.json")]


def mutate(rng, data):
    b = bytearray(data)
    kind = rng.choice(["flip", "flip", "trunc", "insert", "overwrite"])
    if kind == "flip" or not b:
        for _ in range(rng.randint(1, 4)):
            if not b:
                break
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        kind = "flip"
    elif kind == "trunc":
        b = b[:rng.randrange(len(b))]
    elif kind == "insert":
        i = rng.randrange(len(b) + 1)
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    else:
        # small overwrites near the start, where headers live
        i = rng.randrange(min(len(b), 4096))
        v = rng.choice([0, 0xff, 0x7f, 0x80, 1])
        for k in range(rng.choice([1, 2, 4, 8])):
            if i + k < len(b):
                b[i + k] = v
    return kind, bytes(b)


def run(cmd, timeout):
    try:
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=timeout)
        return r.returncode, r.stderr.decode("utf-8", "replace")[-300:]
    except subprocess.TimeoutExpired:
        return "timeout", ""
    except OSError as e:  # the binary vanished or cannot run
        return "oserror", str(e)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wv", default=os.path.join(SRC, "build", "wv"))
    ap.add_argument("--count", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--fixtures", default=os.environ.get(
        "WV_FIXTURES", os.path.join(SRC, "tests", "fixtures")))
    ap.add_argument("--keep", default=None)
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="wv-mutate-")
    try:
        single = [(f, os.path.join(a.fixtures, p)) for f, p in FIXTURES
                  if os.path.exists(os.path.join(a.fixtures, p))]
        single += generated_seeds(work)
        seeds = []
        for f, p in single:
            name = "m" + (os.path.splitext(p)[1] or ".bin")
            if p.endswith(".weights.h5"):
                name = "m.weights.h5"
            seeds.append((f, {name: p}, name, name))
        for f, files, target, arg in MULTI:
            full = {n: os.path.join(a.fixtures, q) for n, q in files.items()}
            if all(os.path.exists(q) for q in full.values()):
                seeds.append((f, full, target, arg))
        seeds += tfjs_seed(work)
        if not seeds:
            print("mutate: no seed files found", file=sys.stderr)
            return 1
        env = dict(os.environ)
        env.pop("WV_MAX_EXPAND", None)
        repo = os.path.join(work, "repo")
        subprocess.run([a.wv, "init", repo], check=True,
                       stdout=subprocess.DEVNULL)
        rng = random.Random(a.seed)
        blobs = [(f, {n: open(q, "rb").read() for n, q in files.items()},
                  target, arg, files[target])
                 for f, files, target, arg in seeds]
        counts = collections.Counter()
        per_fmt = collections.Counter()
        failures = []
        mdir = os.path.join(work, "mutant")
        for n in range(a.count):
            fmt, datas, target, arg, path = blobs[n % len(blobs)]
            kind, mdata = mutate(rng, datas[target])
            shutil.rmtree(mdir, ignore_errors=True)
            os.makedirs(mdir)
            for name, data in datas.items():
                with open(os.path.join(mdir, name), "wb") as f:
                    f.write(mdata if name == target else data)
            m = os.path.join(mdir, arg)
            ext = os.path.splitext(target)[1] or ".bin"
            out = os.path.join(work, "out" + OUTS[n % len(OUTS)])
            if os.path.exists(out):
                os.unlink(out)
            rcs = {}
            errs = {}
            for name, cmd in (("inspect", [a.wv, "inspect", m]),
                              ("verify", [a.wv, "verify", m]),
                              ("convert", [a.wv, "convert", m, out]),
                              ("commit", [a.wv, "commit", repo, m])):
                rcs[name], errs[name] = run(cmd, a.timeout)
            per_fmt[fmt] += 1
            bad = []
            for name, rc in rcs.items():
                if rc == "timeout":
                    bad.append("%s hangs" % name)
                elif rc == "oserror":
                    bad.append("%s cannot run: %s" % (name, errs[name]))
                elif rc < 0 or rc > 6:
                    bad.append("%s crashes (status %s): %s" %
                               (name, rc, errs[name].strip()))
            if rcs["convert"] == 0 and rcs["verify"] != 0:
                bad.append("converts with exit 0 but verify says: %s" %
                           errs["verify"].strip())
            if rcs["commit"] == 0 and rcs["verify"] != 0:
                bad.append("commits with exit 0 but verify says: %s" %
                           errs["verify"].strip())
            if rcs["convert"] == 0 and rcs["inspect"] != 0:
                bad.append("converts with exit 0 but inspect says: %s" %
                           errs["inspect"].strip())
            counts["mutants"] += 1
            counts["accepted (verify 0)" if rcs["verify"] == 0
                   else "refused (verify 1..6)"] += 1
            if rcs["convert"] == 0:
                counts["converted"] += 1
            if rcs["commit"] == 0:
                counts["committed"] += 1
            counts["kind " + kind] += 1
            if bad:
                counts["FAILED"] += 1
                failures.append((n, fmt, kind, path, bad))
                if a.keep:
                    os.makedirs(a.keep, exist_ok=True)
                    keep = os.path.join(a.keep, "mutant-%d" % n)
                    shutil.copytree(mdir, keep)
                    keep = os.path.join(keep, arg)
                    with open(os.path.join(a.keep, "failures.txt"), "a") as f:
                        f.write("%s: %s\n" % (keep, "; ".join(bad)))
        print("mutation run: seed %d, %d seed files, %d commands" %
              (a.seed, len(seeds), 4 * counts["mutants"]))
        for k in sorted(per_fmt):
            print("  format %-12s %6d mutants" % (k, per_fmt[k]))
        for k in sorted(counts):
            print("  %-24s %6d" % (k, counts[k]))
        for n, fmt, kind, path, bad in failures[:20]:
            print("FAIL mutant %d (%s, %s of %s): %s" %
                  (n, fmt, kind, os.path.basename(path), "; ".join(bad)))
        return 1 if failures else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
