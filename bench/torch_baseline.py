#!/usr/bin/python3
"""torch baseline for bench_io: torch.save / torch.load of the same tensors.

usage: /usr/bin/python3 bench/torch_baseline.py IN.safetensors OUT.pt RUNS

Reads IN.safetensors itself (8-byte little-endian header length, JSON
header, raw data; no safetensors package), builds torch tensors, writes
them with torch.save (zip format, the default since torch 1.6) to OUT.pt,
then times RUNS calls of torch.load(OUT.pt, map_location="cpu") with the
file in the page cache (one untimed load first). torch 1.13 has no
weights_only default of True and no mmap= argument, so this is the plain
pickle + zip load every 1.13 user gets. Prints one JSON line with medians.
"""
import json
import os
import statistics
import struct
import sys
import time

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64,
          "I64": np.int64, "I32": np.int32, "U8": np.uint8, "I8": np.int8}


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, e in header.items():
            if name == "__metadata__":
                continue
            b, end = e["data_offsets"]
            f.seek(base + b)
            arr = np.frombuffer(f.read(end - b), dtype=DTYPES[e["dtype"]])
            out[name] = torch.from_numpy(arr.reshape(e["shape"]).copy())
    return out


def main():
    src, pt, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tensors = read_safetensors(src)
    nbytes = sum(t.numel() * t.element_size() for t in tensors.values())

    save_times = []
    for _ in range(runs):
        if os.path.exists(pt):
            os.unlink(pt)
        t0 = time.perf_counter()
        torch.save(tensors, pt)
        save_times.append(time.perf_counter() - t0)
    del tensors

    loaded = torch.load(pt, map_location="cpu")  # warm the page cache
    del loaded
    load_times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        loaded = torch.load(pt, map_location="cpu")
        load_times.append(time.perf_counter() - t0)
        del loaded

    print(json.dumps({
        "torch_load_s": statistics.median(load_times),
        "torch_save_s": statistics.median(save_times),
        "torch_load_runs": load_times,
        "torch_save_runs": save_times,
        "pt_bytes": os.path.getsize(pt),
        "data_bytes": nbytes,
        "torch_version": torch.__version__,
        "weights_only": "not available in 1.13 (full unpickler)",
    }))


if __name__ == "__main__":
    main()
