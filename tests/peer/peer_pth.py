#!/usr/bin/python3
"""peer_pth.py -- describe a torch.save file the way `wv inspect --json`
does, with the real framework (torch.load) and no weightvault code.

dump(path) -> {"format": "pth", "metadata": {...}, "tensors": [...]}

Flattening is weightvault's documented rule (src/formats/pth.c): dict keys
(str; int and bool as str()) and list/tuple indices joined by '.'; a root
tensor is named "tensor", a root scalar "value". Non-tensor leaves become
metadata: int as decimal, float as repr(), bool as "True"/"False", str as
is; anything else (None, bytes, torch.device, ...) is dropped. An
OrderedDict root whose _metadata attribute holds 'weightvault:metadata'
(our writer's side channel) contributes those entries after the leaves.
Tensors are hashed over their elements in C order, little-endian.

torch.load runs with weights_only=True first; only when that refuses the
file (legacy files with floats, torch 1.13's smaller allowlist) does it
fall back to weights_only=False, which is meant for the trusted fixtures.
"""
import hashlib
import json
import sys

import torch

DT = {
    torch.bool: "BOOL", torch.uint8: "U8", torch.int8: "I8",
    torch.int16: "I16", torch.int32: "I32", torch.int64: "I64",
    torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32",
    torch.float64: "F64", torch.complex64: "C64",
}
for _n, _v in (("uint16", "U16"), ("uint32", "U32"), ("uint64", "U64"),
               ("float8_e4m3fn", "F8_E4M3"), ("float8_e5m2", "F8_E5M2")):
    if hasattr(torch, _n):
        DT[getattr(torch, _n)] = _v


def tensor_bytes(t):
    t = t.detach().cpu().contiguous()
    if t.dtype in (torch.bfloat16,) or str(t.dtype).startswith("torch.float8"):
        t = t.view(torch.int16 if t.element_size() == 2 else torch.uint8)
    if t.dtype == torch.bool:
        return t.to(torch.uint8).numpy().tobytes()
    if t.dim() == 0:
        t = t.reshape(1)
    return t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()


def flatten(obj, path, tensors, meta, depth=0):
    if depth > 100:
        raise ValueError("nested too deeply")
    if isinstance(obj, torch.Tensor):
        name = path or "tensor"
        raw = tensor_bytes(obj)
        tensors.append({"name": name, "dtype": DT[obj.dtype],
                        "shape": list(obj.shape), "nbytes": len(raw),
                        "sha256": hashlib.sha256(raw).hexdigest()})
        return
    key = path or "value"
    if isinstance(obj, bool):
        meta[key] = "True" if obj else "False"
    elif isinstance(obj, int):
        meta[key] = str(obj)
    elif isinstance(obj, float):
        meta[key] = repr(obj)
    elif isinstance(obj, str):
        meta[key] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, bool) or isinstance(k, (int, str)):
                seg = str(k)
            else:
                raise ValueError("dict key of type %s" % type(k).__name__)
            flatten(v, path + "." + seg if path else seg, tensors, meta,
                    depth + 1)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            flatten(v, path + "." + str(i) if path else str(i), tensors,
                    meta, depth + 1)


def dump(path):
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    tensors, meta = [], {}
    flatten(obj, "", tensors, meta)
    side = getattr(obj, "_metadata", None)
    if isinstance(side, dict):
        extra = side.get("weightvault:metadata")
        if isinstance(extra, dict):
            for k, v in extra.items():
                if isinstance(k, str) and isinstance(v, str) and k:
                    meta[k] = v
    return {"format": "pth", "metadata": meta, "tensors": tensors}


if __name__ == "__main__":
    json.dump(dump(sys.argv[1]), sys.stdout)
    print()
