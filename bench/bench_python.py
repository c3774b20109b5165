#!/usr/bin/python3
"""Benchmark of the Python package against torch.save / torch.load.

    WEIGHTVAULT_LIB=build/libweightvault.so /usr/bin/python3 bench/bench_python.py \
        [--dir bench-out] [--runs 5] [--mib 1024] [--tensors 40]

One state_dict of 40 F32 tensors, 1 GiB in all, saved and loaded by both in
the same run, alternating, page cache warm for loads (each file was just
written). Prints a markdown table of medians of --runs runs (>= 3):

* save: weightvault.save(sd, .safetensors) (durable: fsync + rename) vs
  torch.save(sd, .pt) (not synced), and torch.save followed by os.fsync,
  the like-for-like durable baseline;
* load: weightvault.load(framework="torch") (maps the file: no bytes read)
  vs torch.load (reads and copies every byte);
* load + read: the same plus summing every tensor, so both have touched
  all the data.

Scratch files go to --dir and are deleted at the end.
"""
import argparse
import gc
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "python"))
import weightvault as wv  # noqa: E402


def timed(fn):
    gc.collect()
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def torch_save_fsync(sd, path):
    with open(path, "wb") as f:
        torch.save(sd, f)
        f.flush()
        os.fsync(f.fileno())


def read_all(sd):
    return sum(float(t.sum()) for t in sd.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default="bench-out")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--tensors", type=int, default=40)
    ap.add_argument("--settle", type=float, default=3.0,
                    help="seconds of pause after sync() before each save")
    a = ap.parse_args()
    if a.runs < 3:
        ap.error("--runs must be at least 3 (medians)")
    os.makedirs(a.dir, exist_ok=True)
    torch.set_num_threads(1)
    per = a.mib * (1 << 20) // a.tensors // 4
    g = torch.Generator().manual_seed(0)
    sd = {f"layers.{i:02d}.weight": torch.rand(per, generator=g)
          for i in range(a.tensors)}
    total = sum(t.numel() * 4 for t in sd.values())
    st = os.path.join(a.dir, "py_bench.safetensors")
    pt = os.path.join(a.dir, "py_bench.pt")
    pt_sync = os.path.join(a.dir, "py_bench_sync.pt")

    rows = {k: [] for k in ("wv_save", "t_save", "t_save_sync", "wv_load",
                            "t_load", "wv_read", "t_read")}
    for run in range(a.runs):
        order = [0, 1] if run % 2 == 0 else [1, 0]
        # Before each timed save: sync() and a pause, so no save pays for
        # the writeback of the previous one's dirty pages (torch.save
        # leaves 1 GiB dirty), and old files are gone (as bench_io does).
        for who in order:
            for p in (st, pt, pt_sync):
                if os.path.exists(p):
                    os.unlink(p)
            os.sync()
            time.sleep(a.settle)
            if who == 0:
                rows["wv_save"].append(timed(lambda: wv.save(sd, st))[0])
            else:
                rows["t_save"].append(timed(lambda: torch.save(sd, pt))[0])
        os.sync()
        time.sleep(a.settle)
        rows["t_save_sync"].append(
            timed(lambda: torch_save_fsync(sd, pt_sync))[0])
        os.sync()
        if not os.path.exists(st):
            wv.save(sd, st)
        if not os.path.exists(pt):
            torch.save(sd, pt)
        for who in order:
            if who == 0:
                t, d = timed(lambda: wv.load(st, framework="torch"))
                rows["wv_load"].append(t)
                t2, s_wv = timed(lambda: read_all(d))
                rows["wv_read"].append(t + t2)
            else:
                t, d = timed(lambda: torch.load(pt))
                rows["t_load"].append(t)
                t2, s_t = timed(lambda: read_all(d))
                rows["t_read"].append(t + t2)
            del d
        if s_wv != s_t:
            sys.exit("bench_python: the two loads disagree")
    for p in (st, pt, pt_sync):
        os.unlink(p)

    med = {k: statistics.median(v) for k, v in rows.items()}
    gib = total / (1 << 30)

    def row(op, wv_key, t_key, baseline):
        w, t = med[wv_key], med[t_key]
        print(f"| {op} | {w * 1e3:.1f} ms ({gib / w:.2f} GiB/s) | {baseline} "
              f"{t * 1e3:.1f} ms ({gib / t:.2f} GiB/s) | {t / w:.1f}x |")

    print(f"\nPython package, {a.tensors} F32 tensors, {total / (1 << 20):.0f}"
          f" MiB, median of {a.runs} runs (torch {torch.__version__}, "
          f"1 thread):\n")
    print("| operation | weightvault | torch | speed-up |")
    print("|---|---|---|---|")
    row("save (wv: fsync + rename)", "wv_save", "t_save", "torch.save")
    row("save, both durable", "wv_save", "t_save_sync", "torch.save + fsync")
    row("load to torch", "wv_load", "t_load", "torch.load")
    row("load + read every tensor", "wv_read", "t_read", "torch.load +")


if __name__ == "__main__":
    main()
