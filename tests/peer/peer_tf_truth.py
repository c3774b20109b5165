#!/usr/bin/env python3
"""peer_tf_truth.py FIXTURES -- the TensorFlow bundles of tests/fixtures/tf,
read through weightvault's Python load, against files written by the same
training runs that hold the same weights (TensorFlow itself is not
installable here):

  tf/a  boston_house.h5       Keras full-model h5 (model and optimizer
                              weights), read with h5py
  tf/b  1_BASIC/my_model.h5   Keras h5 (model weights), h5py
  tf/c  frozen_one_hidden_layer.pb
                              a frozen GraphDef: every variable became a
                              Const node of the same name; decoded by the
                              protobuf wire decoder below (python3-protobuf
                              is not installed, and TensorFlow's .proto
                              files are not either)

Every weight tensor of the bundle that has a counterpart must equal it bit
for bit (same dtype, shape and bytes), and every weight of the truth file
must be found. For the h5 files the counterpart is found by content among
the datasets of the same shape and dtype (the layer names differ: the
bundle has object-graph keys); each dataset is used once.

Also checked for all six: the reader's tensor count, and for the
two-shard bundle (d) that the tensors cover both data files byte for byte.
Prints one line per fixture; exits 1 on the first mismatch.
"""
import os
import sys

import h5py
import numpy as np
import weightvault as wv

root = os.path.join(sys.argv[1], "tf")


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


# ---- a minimal protobuf wire decoder (for the frozen graph) ---------------

def varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, i


def fields(b):
    """(field number, wire type, value) of a message's fields."""
    i = 0
    while i < len(b):
        tag, i = varint(b, i)
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        elif wt == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise ValueError("wire type %d" % wt)
        yield num, wt, v


TF_NP = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64}


def tensor_proto(b):
    """TensorProto -> numpy array (dtype=1, tensor_shape=2,
    tensor_content=4, float_val=5, double_val=6, int_val=7, int64_val=10).
    """
    dtype, dims, content, vals = None, [], None, []
    for num, wt, v in fields(b):
        if num == 1:
            dtype = v
        elif num == 2:
            for n2, _, d in fields(v):
                if n2 == 2:
                    dims.append(dict((k, x) for k, _, x in fields(d)).get(1, 0))
        elif num == 4:
            content = bytes(v)
        elif num in (5, 6, 7, 10):
            if wt == 2:  # packed
                if num == 5:
                    vals += list(np.frombuffer(v, "<f4"))
                elif num == 6:
                    vals += list(np.frombuffer(v, "<f8"))
                else:
                    j = 0
                    while j < len(v):
                        x, j = varint(v, j)
                        vals.append(x)
            elif wt == 5:
                vals.append(np.frombuffer(v, "<f4")[0])
            elif wt == 1:
                vals.append(np.frombuffer(v, "<f8")[0])
            else:
                vals.append(v)
    dt = np.dtype(TF_NP[dtype]).newbyteorder("<")
    n = int(np.prod(dims)) if dims else 1
    if content is not None:
        return np.frombuffer(content, dt).reshape(dims)
    a = np.array(vals, dt)
    if a.size == 1 and n > 1:  # a splat, as TensorFlow stores constants
        a = np.full(n, a[0], dt)
    return a.reshape(dims)


def frozen_consts(path):
    out = {}
    for num, _, node in fields(open(path, "rb").read()):
        if num != 1:
            continue
        name = op = None
        value = None
        for n2, _, v in fields(node):
            if n2 == 1:
                name = bytes(v).decode()
            elif n2 == 2:
                op = bytes(v).decode()
            elif n2 == 5:
                kv = dict((k, x) for k, _, x in fields(v))
                if bytes(kv.get(1, b"")) == b"value":
                    for n3, _, t in fields(kv[2]):
                        if n3 == 8:
                            value = tensor_proto(t)
        if op == "Const" and value is not None:
            out[name] = value
    return out


# ---- the checks -------------------------------------------------------------

def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return (a.dtype == b.dtype and a.shape == b.shape
            and a.tobytes() == b.tobytes())


def against_h5(bundle, h5path, want_pairs):
    t = wv.load(bundle)
    ds = []
    with h5py.File(h5path, "r") as h:
        h.visititems(lambda n, o: ds.append((n, o[()]))
                     if isinstance(o, h5py.Dataset) else None)
    used = set()
    pairs = 0
    for name, arr in t.items():
        for i, (dn, d) in enumerate(ds):
            if i not in used and same(arr, d):
                used.add(i)
                pairs += 1
                break
        else:
            if "VARIABLE_VALUE" in name and name.startswith("layer_with"):
                if ".OPTIMIZER_SLOT" not in name:
                    fail("%s: %s has no equal dataset in %s"
                         % (bundle, name, h5path))
    for i, (dn, d) in enumerate(ds):
        if i not in used and dn.startswith("model_weights/"):
            fail("%s: dataset %s of %s is not in the bundle"
                 % (bundle, dn, h5path))
    if pairs != want_pairs:
        fail("%s: %d tensors equal to a dataset, expected %d"
             % (bundle, pairs, want_pairs))
    print("ok: %s: %d tensors bit-equal to %s" % (bundle, pairs, h5path))


def main():
    a = os.path.join(root, "a/CodeAshing-Boston_house")
    # 6 model weights + 6 rms slots + optimizer iter
    against_h5(os.path.join(a, "variables"),
               os.path.join(a, "boston_house.h5"), 13)
    b = os.path.join(root, "b/Gauraviitkgp-Tensorflow/1_BASIC")
    against_h5(os.path.join(b, "weights/checkpoint"),
               os.path.join(b, "my_model.h5"), 6)

    c = os.path.join(root, "c/sbhtkx-urgent_sms_python/out")
    t = wv.load(os.path.join(c, "one_hidden_layer.chkp"))
    consts = frozen_consts(os.path.join(c, "frozen_one_hidden_layer.pb"))
    n = 0
    for name, arr in t.items():
        if name not in consts:
            fail("c: %s is not a constant of the frozen graph" % name)
        if not same(arr, consts[name]):
            fail("c: %s differs from the frozen graph's constant" % name)
        n += 1
    if n != 4:
        fail("c: %d tensors, expected 4" % n)
    print("ok: %s: %d tensors bit-equal to the frozen graph's constants"
          % (c, n))

    counts = {
        "b/dpong-Keras_Stock_Price_Prediction/model_weights": 14,
        "c/wenjunpku-learning-tensorflow/logs/fully_connected_feed/"
        "model.cpkt-1999.index": 7,
        "d/fcuyttsai-overtoppingEve": 123,
    }
    for rel, want in counts.items():
        t = wv.load(os.path.join(root, rel))
        if len(t) != want:
            fail("%s: %d tensors, expected %d" % (rel, len(t), want))
        print("ok: %s: %d tensors" % (rel, len(t)))
    # d: two shards, every byte of both is some tensor's (no strings).
    d = os.path.join(root, "d/fcuyttsai-overtoppingEve/variables")
    t = wv.load(d)
    total = sum(v.nbytes for v in t.values())
    files = sum(os.path.getsize(os.path.join(d, "variables.data-%05d-of-00002"
                                             % s)) for s in (0, 1))
    if total != files:
        fail("d: tensors hold %d bytes, the two shards %d" % (total, files))
    print("ok: d: %d tensor bytes = both shards" % total)


main()
