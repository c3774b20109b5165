#!/usr/bin/python3
"""peer_keras.py -- describe a Keras HDF5 file (.h5, .weights.h5) or .keras
archive the way `wv inspect --json` does, with h5py and numpy only (no
weightvault).

dump(path) -> {"format": "keras", "metadata": {k: v},
               "tensors": [{"name", "dtype", "shape", "nbytes", "sha256"}]}

Naming rules (the same as src/formats/keras.c): the weights root is
/model_weights when the root has no layer_names attribute and a
model_weights group exists, else /; tensor names are dataset paths relative
to it. Order: with layer_names, the datasets listed by each layer's
weight_names in that order, then every other dataset depth first in name
order with digit-only names compared as numbers. Metadata: root attribute X
-> "keras.X" (string as is, list of strings as a JSON array); a full-model
file's model_weights/layer_names -> "keras.layer_names"; without
layer_names, every group called "vars" with a string attribute "name" ->
"keras.vars" = {"path": "name", ...} in walk order; with layer_names, the
paths its layers' weight_names list -> "keras.weight_names" (a JSON array,
no spaces); a full-model file's /optimizer_weights datasets, in the order
of its weight_names, -> tensors "optimizer/vars/<i>" and the names ->
"keras.optimizer_weight_names"; .keras: config.json ->
"keras.config", metadata.json -> "keras.metadata". sha256 is over the
elements in C order, little-endian.
"""
import hashlib
import io
import json
import sys
import zipfile

import h5py
import numpy as np

INTS = {("u", 1): "U8", ("i", 1): "I8", ("u", 2): "U16", ("i", 2): "I16",
        ("u", 4): "U32", ("i", 4): "I32", ("u", 8): "U64", ("i", 8): "I64"}
FLOATS = {2: "F16", 4: "F32", 8: "F64"}
TAGS = {"bfloat16": ("BF16", 2), "float8_e4m3fn": ("F8_E4M3", 1),
        "float8_e5m2": ("F8_E5M2", 1)}


def _s(v):
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def _attr_value(v):
    """String, list of strings, or None for other attribute types."""
    if isinstance(v, (bytes, str)):
        return _s(v)
    if isinstance(v, np.ndarray):
        if v.size == 0 and v.ndim == 1:
            return []
        if v.ndim == 1 and v.dtype.kind in "SUO":
            return [_s(x) for x in v.tolist()]
    return None


def _list_attr(g, name):
    if name in g.attrs:
        v = _attr_value(g.attrs[name])
        return v if isinstance(v, list) else None
    out, i, found = [], 0, False
    while "%s%d" % (name, i) in g.attrs:
        out.extend(_attr_value(g.attrs["%s%d" % (name, i)]) or [])
        i += 1
        found = True
    return out if found else None


def _natkey(name):
    if name.isdigit():
        return (0, len(name.lstrip("0") or "0"), name.lstrip("0") or "0")
    return (1, 0, name)


def _walk(g, prefix, paths, vars_):
    for name in sorted(g.keys(), key=lambda n: _natkey(n)):
        link = g.get(name, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise ValueError("%s/%s is not a hard link" % (prefix, name))
        path = prefix + "/" + name if prefix else name
        obj = g[name]
        if isinstance(obj, h5py.Dataset):
            paths.append(path)
        elif isinstance(obj, h5py.Group):
            if name == "vars" and "name" in obj.attrs:
                v = _attr_value(obj.attrs["name"])
                if isinstance(v, str):
                    vars_.append((path, v))
            _walk(obj, path, paths, vars_)


def _describe(name, ds):
    dt = ds.dtype
    tag = ds.attrs.get("dtype")
    tag = _s(tag) if tag is not None else None
    raw = None
    if dt.kind == "b":
        kind = "BOOL"
    elif dt.kind in "ui":
        kind = INTS[(dt.kind, dt.itemsize)]
    elif dt.kind == "f":
        kind = FLOATS[dt.itemsize]
    elif dt.kind == "c" and dt.itemsize == 8:
        kind = "C64"
    elif dt.kind == "V" and tag in TAGS and TAGS[tag][1] == dt.itemsize:
        kind = TAGS[tag][0]
        raw = ds.id
    else:
        raise ValueError("dataset %r has unsupported dtype %s" % (name, dt))
    if raw is not None:
        buf = np.empty(ds.shape, dtype=dt)
        if buf.size:
            ds.read_direct(buf)
        data = buf.tobytes(order="C")
    else:
        arr = ds[()]
        arr = np.asarray(arr)
        le = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        data = np.ascontiguousarray(le).tobytes(order="C")
    return {"name": name, "dtype": kind, "shape": list(ds.shape),
            "nbytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _dump_h5(f, meta):
    for k in sorted(f.attrs.keys()):
        if k.startswith("layer_names") and k[11:].isdigit():
            continue  # split layer_names: joined below
        v = _attr_value(f.attrs[k])
        if isinstance(v, str):
            meta["keras." + k] = v
        elif isinstance(v, list):
            meta["keras." + k] = json.dumps(v, ensure_ascii=False)
    layers = _list_attr(f, "layer_names")
    root = f
    if layers is None and isinstance(f.get("model_weights"), h5py.Group):
        root = f["model_weights"]
        layers = _list_attr(root, "layer_names")
    if layers is not None and "keras.layer_names" not in meta:
        meta["keras.layer_names"] = json.dumps(layers, ensure_ascii=False)
    paths, vars_ = [], []
    _walk(root, "", paths, vars_)
    if layers is None and vars_:
        meta["keras.vars"] = "{" + ",".join(
            json.dumps(p, ensure_ascii=False) + ":" +
            json.dumps(n, ensure_ascii=False) for p, n in vars_) + "}"
    order = []
    if layers is not None:
        for ln in layers:
            for wn in _list_attr(root[ln], "weight_names") or []:
                order.append(ln + "/" + wn)
    if order and "keras.weight_names" not in meta:
        meta["keras.weight_names"] = json.dumps(
            order, ensure_ascii=False, separators=(",", ":"))
    seen = set(order)
    order += [p for p in paths if p not in seen]
    out = [_describe(p, root[p]) for p in order]
    opt = f.get("optimizer_weights") if root is not f else None
    if isinstance(opt, h5py.Group):
        names = _list_attr(opt, "weight_names")
        if names is not None:
            meta["keras.optimizer_weight_names"] = json.dumps(
                names, ensure_ascii=False)
            out += [dict(_describe(n, opt[n]), name="optimizer/vars/%d" % i)
                    for i, n in enumerate(names)]
    return out


def dump(path):
    meta = {}
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == b"PK\x03\x04":
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if "config.json" in names:
                meta["keras.config"] = z.read("config.json").decode("utf-8")
            if "metadata.json" in names:
                meta["keras.metadata"] = z.read("metadata.json").decode(
                    "utf-8")
            img = io.BytesIO(z.read("model.weights.h5"))
        with h5py.File(img, "r") as f:
            tensors = _dump_h5(f, meta)
    else:
        with h5py.File(path, "r") as f:
            tensors = _dump_h5(f, meta)
    return {"format": "keras", "metadata": meta, "tensors": tensors}


if __name__ == "__main__":
    json.dump(dump(sys.argv[1]), sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
