#!/usr/bin/env bash
# metadata_travels.sh -- the architecture travels: Keras model_config /
# config.json, the MXNet symbol JSON, GGUF KVs and safetensors __metadata__
# land in metadata and come back EXACTLY (same keys, same values) through
# every format that can hold metadata: safetensors (__metadata__), GGUF
# (typed KVs; foreign keys as string KVs listed in weightvault.foreign_keys),
# Keras HDF5 legacy .h5 and Keras 3 .weights.h5 (root attributes; foreign
# keys listed in the root attribute weightvault.foreign_keys; .weights.h5
# holds the foreign keys only, see below) and pth
# (OrderedDict _metadata['weightvault:metadata'], or str leaves with --nest).
#
# Sources: the Keras fixtures (legacy weights, full model, .keras, Keras 3
# .weights.h5), the MXNet checkpoint with its -symbol.json, the GGUF
# fixture, and a safetensors file with custom __metadata__ (JSON text,
# newlines, quotes, backslashes, non-ASCII, control characters, dotted
# keys, typed-looking GGUF values). Each source goes through each target
# (source -> target -> safetensors, every hop inspected) and through one
# long chain (safetensors -> gguf -> h5 -> pth -> gguf -> weights.h5 ->
# pth --nest -> safetensors). Tensors must not change either.
#
# "Exactly" is checked per hop: every source entry is present with the
# same value, and the only other entries are the documented ones a target
# adds, with their documented values:
#   .h5 (legacy)   keras.layer_names (the layer list, JSON) when absent:
#                  the attribute Keras checks; keras.weight_names (Keras'
#                  order of the weights, JSON) when absent; from a Keras 3
#                  set (translated by its config): keras.vars dropped, a
#                  .keras config.json as keras.model_config, its
#                  metadata.json's keras_version as keras.keras_version
#                  (no backend or version is invented);
#   .weights.h5    keras.vars (the vars groups' names) when absent;
#   safetensors    format "pt" for a set read from a format without a
#                  metadata field (MXNet here): Hugging Face loaders need it.
# and the only entries a target drops are the documented ones:
#   .weights.h5    every keras.* entry but keras.vars (model_config,
#                  training_config, backend, keras_version, config,
#                  layer_names, weight_names, ...): Keras 3 writes no root
#                  attribute, and wv writes what Keras writes (issue 18);
#                  foreign keys stay.
# npy, npz and MXNet hold no metadata: `wv convert` says so on stderr.
# Tensor names change where the Keras layout is translated (legacy .h5 <->
# .weights.h5): tensors are compared as (dtype, shape, sha256). Without a
# model config that hop is refused (Keras 2 weights-only -> .weights.h5,
# Keras 3 .weights.h5 -> .h5), which is checked instead.
#
# The frameworks' view, where cheap: h5py sees model_config and the
# foreign keys as plain root attributes, the GGUF peer parser sees foreign
# keys as plain string KVs, and torch.load(weights_only=True) returns the
# metadata in the state_dict's _metadata.
# Env: WV, WV_FIXTURES, WV_SRC, PYTHON.
set -u
: "${PYTHON:=/usr/bin/python3}"
: "${WV_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${WV_FIXTURES:=$WV_SRC/tests/fixtures}"
. "$(dirname "$0")/../harness/cli.sh"
need_file "$WV_FIXTURES"/h5/keras2-weights-dearj611/model_weights.h5 \
    "$WV_FIXTURES"/h5/keras3-mnist-shreyansh/model.{h5,keras,weights.h5} \
    "$WV_FIXTURES"/mxnet/lenet-0001.params "$WV_FIXTURES"/gguf/stories260K.gguf
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
export WV WV_SRC WV_FIXTURES MT_TMP=$tmp

"$PYTHON" - <<'PY'
import json
import os
import struct
import subprocess
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.environ["WV_SRC"], "tests", "peer"))
import peer_gguf  # noqa: E402

WV = os.environ["WV"]
T = os.environ["MT_TMP"]
FIX = os.environ["WV_FIXTURES"]
bad = []
checks = 0

CUSTOM = {
    "format": "pt",
    "foo": "bar",
    "model.config": json.dumps({"hidden": 64, "act": "gelu",
                                "layers": [1, 2, 3]}),
    "text": "caf\u00e9 \u2603 \U0001F600\nline2\t\"q\" \\ back",
    "ctl": "a\u0001b\u001fc",
    "gguf.looks.typed": "u32:7",
    "gguf.not.typed": "hello",
    "empty": "",
}

SOURCES = [
    ("keras2", os.path.join(FIX, "h5/keras2-weights-dearj611/"
                                 "model_weights.h5")),
    ("keras_full", os.path.join(FIX, "h5/keras3-mnist-shreyansh/model.h5")),
    ("keras_zip", os.path.join(FIX, "h5/keras3-mnist-shreyansh/model.keras")),
    ("keras3", os.path.join(FIX, "h5/keras3-mnist-shreyansh/"
                                 "model.weights.h5")),
    ("mxnet", os.path.join(FIX, "mxnet/lenet-0001.params")),
    ("gguf", os.path.join(FIX, "gguf/stories260K.gguf")),
    ("custom", os.path.join(T, "custom.safetensors")),
]
TARGETS = [("safetensors", []), ("gguf", []), ("h5", []),
           ("weights.h5", []), ("pth", []), ("pth", ["--nest"])]
CHAIN = [("safetensors", []), ("gguf", []), ("h5", []), ("pth", []),
         ("gguf", []), ("weights.h5", []), ("pth", ["--nest"]),
         ("safetensors", [])]
# Sources a layout translation needs a model config for (Keras 2 .h5 <->
# Keras 3 .weights.h5) that they lack: that hop is refused in one line.
NO_CONFIG = {"keras2": "weights.h5", "keras3": "h5"}


def fail(msg):
    bad.append(msg)
    print("FAIL: " + msg, file=sys.stderr, flush=True)


def write_custom(path):
    h = {"__metadata__": CUSTOM,
         "w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
         "b": {"dtype": "F32", "shape": [3], "data_offsets": [24, 36]}}
    b = json.dumps(h).encode()
    b += b" " * (-len(b) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(b)) + b)
        f.write(np.arange(9, dtype=np.float32).tobytes())


def wv(*args):
    r = subprocess.run([WV] + list(args), capture_output=True, text=True)
    if r.returncode != 0:
        fail("wv %s exited %d: %s" % (" ".join(args), r.returncode,
                                      r.stderr.strip()))
    return r


def inspect(path):
    r = wv("inspect", "--json", path)
    if r.returncode != 0:
        return None, None
    d = json.loads(r.stdout)
    tensors = sorted((t["name"], t["dtype"], tuple(t["shape"]), t["sha256"])
                     for t in d["tensors"])
    return d["metadata"], tensors


def expect_meta(what, src_meta, got, fmt, extras, dropped, from_default):
    """got must be src_meta + the documented additions of every hop so far
    (extras) - the documented drops of every hop so far (dropped); both
    are updated here."""
    global checks
    checks += 1
    if fmt == "weights.h5":
        # Keras 3 writes no root attribute: every keras.* entry goes
        # (keras.vars is the vars groups' record, rebuilt on reading).
        for k in list(src_meta) + list(extras):
            if k.startswith("keras.") and k != "keras.vars":
                dropped.add(k)
                extras.pop(k, None)
    want = {k: v for k, v in src_meta.items() if k not in dropped}
    want.update(extras)
    added = {k: v for k, v in got.items() if k not in want}
    allowed = {}
    if fmt == "h5":
        # Keras 3 -> legacy translation: the vars groups' record goes, an
        # archive's config.json becomes model_config (full-model layout,
        # for the optimizer state) and its metadata.json's keras_version
        # the file's.
        if "keras.vars" in want and "keras.vars" not in got:
            dropped.add("keras.vars")
            want.pop("keras.vars")
        if ("keras.config" in want and "keras.config" not in got and
                got.get("keras.model_config") == want["keras.config"]):
            dropped.add("keras.config")
            allowed["keras.model_config"] = want.pop("keras.config")
        km = want.get("keras.metadata")
        if km and "keras.keras_version" not in want:
            allowed["keras.keras_version"] = json.loads(km)["keras_version"]
        # (keras.optimizer_weight_names: the weight_names of the
        # optimizer_weights group a full-model .h5 gets for a Keras 3
        # set's optimizer state, which the reader records)
        for k in ("keras.layer_names", "keras.weight_names",
                  "keras.optimizer_weight_names"):
            if k not in added:
                continue
            try:
                ok = all(isinstance(x, str) for x in json.loads(added[k]))
            except ValueError:
                ok = False
            if ok:
                allowed[k] = added[k]
    if fmt == "weights.h5" and "keras.vars" in added:
        try:
            ok = isinstance(json.loads(added["keras.vars"]), dict)
        except ValueError:
            ok = False
        if ok:
            allowed["keras.vars"] = added["keras.vars"]
    if fmt == "safetensors" and from_default:
        allowed["format"] = "pt"
    for k, v in added.items():
        if allowed.get(k) != v:
            fail("%s: unexpected entry %r = %r" % (what, k, v[:80]))
        else:
            extras[k] = v
    for k, v in want.items():
        if k not in got:
            fail("%s: entry %r lost" % (what, k))
        elif got[k] != v:
            fail("%s: entry %r changed:\n  was %r\n  now %r"
                 % (what, k, v[:200], got[k][:200]))


def travel(label, src, hops):
    """src through hops (format, options); every hop's metadata checked."""
    src_meta, src_t = inspect(src)
    if src_meta is None:
        return
    extras, dropped, nbad = {}, set(), len(bad)
    prev, prev_fmt = src, label
    for i, (fmt, opts) in enumerate(hops):
        out = os.path.join(T, "%s.%d.%s" % (label, i, fmt))
        what = "%s -> %s" % (label, " -> ".join(
            h[0] + "".join(" " + o for o in h[1]) for h in hops[:i + 1]))
        if NO_CONFIG.get(label) == fmt:
            r = subprocess.run([WV, "convert", prev, out] + list(opts),
                               capture_output=True, text=True)
            checks_ok = (r.returncode == 1 and
                         "no model config to translate" in r.stderr and
                         r.stderr.count("\n") == 1)
            if not checks_ok:
                fail("%s: not refused for want of a model config: %r"
                     % (what, r.stderr))
            return
        if wv("convert", prev, out, *opts).returncode != 0:
            return
        got, t = inspect(out)
        if got is None:
            return
        # Only MXNet sets (no metadata field) are "from elsewhere" for the
        # safetensors writer; every other reader records a file's metadata.
        expect_meta(what, src_meta, got, fmt, extras, dropped,
                    prev_fmt == "mxnet")
        # names change where the Keras layout is translated; bytes never
        if sorted(x[1:] for x in t) != sorted(x[1:] for x in src_t):
            fail("%s: tensors changed" % what)
        framework_view(what, out, fmt, opts, got)
        prev, prev_fmt = out, fmt
    if len(bad) == nbad:
        print("ok: %s (%d entries)" % (what, len(src_meta)), flush=True)


def framework_view(what, path, fmt, opts, meta):
    global checks
    checks += 1
    if fmt in ("h5", "weights.h5"):
        with h5py.File(path, "r") as f:
            attrs = {k: f.attrs[k] for k in f.attrs}
            opt_groups = [k for k in f.keys() if k == "optimizer_weights"]
        listed = json.loads(attrs.pop("weightvault.foreign_keys", "[]"))
        for k, v in meta.items():
            if k in ("keras.layer_names", "keras.weight_names") or (
                    k == "keras.vars" and fmt == "weights.h5") or (
                    k == "keras.optimizer_weight_names" and
                    "optimizer_weights" in opt_groups):
                continue   # lists / vars groups / optimizer_weights'
                           # weight_names: checked through wv
            an = k[len("keras."):] if k.startswith("keras.") else k
            if an not in attrs:
                fail("%s: h5py sees no root attribute %r" % (what, an))
                continue
            val = attrs[an]
            val = val.decode() if isinstance(val, bytes) else str(val)
            if val != v:
                fail("%s: h5py attribute %r = %r, want %r"
                     % (what, an, val[:80], v[:80]))
            if (an == k) != (k in listed):
                fail("%s: %r listed wrongly as foreign" % (what, k))
    elif fmt == "gguf":
        with open(path, "rb") as f:
            kv, _, _, _ = peer_gguf.parse(f.read())
        listed = kv.pop("gguf.weightvault.foreign_keys", None)
        foreign = [k for k in meta if not k.startswith("gguf.")]
        foreign += [k for k in meta if k.startswith("gguf.") and
                    kv.get(k) != meta[k]]
        if foreign:
            want = "str[]:[%s]" % ",".join(peer_gguf.enc_str(k.encode())
                                           for k in meta if k in foreign)
            if listed != want:
                fail("%s: GGUF marker %r, want %r" % (what, listed, want))
        for k in foreign:
            plain = "str:" + peer_gguf.enc_str(meta[k].encode())
            if kv.get("gguf." + k) != plain:
                fail("%s: GGUF KV %r is not the plain string" % (what, k))
    elif fmt == "pth":
        sd = torch.load(path, weights_only=True)
        if "--nest" in opts:
            return  # nested str leaves: wv's reader checks them
        side = getattr(sd, "_metadata", {}).get("weightvault:metadata", {})
        if dict(side) != meta:
            fail("%s: torch sees _metadata %r" % (what, str(side)[:200]))


write_custom(os.path.join(T, "custom.safetensors"))
for label, src in SOURCES:
    for fmt, opts in TARGETS:
        travel(label, src, [(fmt, opts), ("safetensors", [])])
    travel(label, src, CHAIN)

# Formats without a metadata field: the loss is reported, not silent.
for ext in ("npz", "params"):
    r = wv("convert", os.path.join(T, "custom.safetensors"),
           os.path.join(T, "x." + ext))
    checks += 1
    if "cannot hold metadata; %d entries" % len(CUSTOM) not in r.stderr:
        fail("convert to %s did not warn: %r" % (ext, r.stderr))

print("metadata_travels: %d checks, %d failures" % (checks, len(bad)))
sys.exit(1 if bad else 0)
PY
