#!/usr/bin/python3
"""bench_convert.py -- the benchmark of the framework-formats issue.

usage: /usr/bin/python3 bench/bench_convert.py WV SCRATCH_DIR [--runs N]

Converts a 1 GiB .pth written by torch.save to safetensors and compares,
in the same run, `wv convert x.pth y.safetensors` with what a PyTorch user
does without weightvault: a fresh /usr/bin/python3 running
`torch.save(torch.load(x), y2.pt)`.

- The state_dict: 40 F32 tensors of mixed shapes (embedding and output
  head, 4 transformer-style layers of attention and MLP matrices, biases
  and norm vectors, a 4-D convolution, a 3-D table, a scalar), 1 GiB plus
  a few KiB, filled by torch.randn with seed 0, written by torch.save in
  the zip format (the default since torch 1.6) by a child process.
- Page cache warm: x.pth is read once before the timed runs.
- Time: the median of N runs (default 3) of the wall time of each child,
  measured here, from start to exit. For the baseline that includes the
  interpreter start and `import torch`; the time of load + save alone,
  measured inside the child, is reported too. wv's output is durable
  (fsync of the file and its directory before the rename); torch.save's
  is not (no fsync), which favours the baseline.
- Peak RSS: ru_maxrss of each child from os.wait4(). This process never
  imports torch or holds the data, so what a child inherits before exec
  (Linux keeps the larger of the two in ru_maxrss) stays a few MiB.
- Targets (issue 3): weightvault >= 3x faster than the baseline, and
  weightvault's peak RSS <= 1.1x the data.

Prints a markdown table (| measure | weightvault | baseline | ratio |
target |) and removes its files from SCRATCH_DIR.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PY = "/usr/bin/python3"

GEN = r'''
import sys, torch
torch.manual_seed(0)
d, ff, vocab = 2048, 8192, 16384
shapes = [("tok_embeddings.weight", (vocab, d))]
for i in range(4):
    p = "layers.%d." % i
    shapes += [(p + "attention.wq.weight", (d, d)),
               (p + "attention.wk.weight", (d, d)),
               (p + "attention.wv.weight", (d, d)),
               (p + "attention.wo.weight", (d, d)),
               (p + "attention.wq.bias", (d,)),
               (p + "feed_forward.w1.weight", (ff, d)),
               (p + "feed_forward.w2.weight", (d, ff)),
               (p + "attention_norm.weight", (d,))]
shapes += [("norm.weight", (d,)), ("output.weight", (vocab, d)),
           ("output.bias", (vocab,)), ("conv.weight", (64, 3, 7, 7)),
           ("conv.bias", (64,)), ("rel_pos.table", (4, 16, 32)),
           ("logit_scale", ())]
sd = {n: torch.randn(s, dtype=torch.float32) for n, s in shapes}
torch.save(sd, sys.argv[1])
print(len(sd), sum(t.numel() * t.element_size() for t in sd.values()))
'''

BASELINE = r'''
import json, sys, time
import torch
t0 = time.perf_counter()
sd = torch.load(sys.argv[1])
t1 = time.perf_counter()
torch.save(sd, sys.argv[2])
t2 = time.perf_counter()
json.dump({"load": t1 - t0, "save": t2 - t1}, open(sys.argv[3], "w"))
'''


def run(argv):
    """Run argv; return (wall seconds, peak RSS bytes). Raises on failure."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    p.stderr.close()
    if p.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (argv, p.returncode,
                                                 err.decode(errors="replace")))
    return wall, ru.ru_maxrss * 1024


def warm(path):
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("wv")
    ap.add_argument("scratch")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    wv = os.path.abspath(a.wv)
    os.makedirs(a.scratch, exist_ok=True)
    d = tempfile.mkdtemp(prefix="bench_convert.", dir=a.scratch)
    try:
        bench(wv, d, max(1, a.runs))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def bench(wv, d, runs):
    x = os.path.join(d, "x.pth")
    y = os.path.join(d, "y.safetensors")
    y2 = os.path.join(d, "y2.pt")
    times = os.path.join(d, "times.json")
    t0 = time.perf_counter()
    r = subprocess.run([PY, "-c", GEN, x], check=True, capture_output=True,
                       text=True)
    n_tensors, data = (int(v) for v in r.stdout.split())
    print("bench_convert: %d F32 tensors, %.3f GiB of data, x.pth %.3f GiB "
          "(generated and saved by torch in %.1f s); %d runs each"
          % (n_tensors, data / 2**30, os.path.getsize(x) / 2**30,
             time.perf_counter() - t0, runs), file=sys.stderr)
    warm(x)

    ours, base, inner = [], [], []
    for i in range(runs):
        # Alternate, so that both sides see the same machine state.
        for p in (y, y2):
            if os.path.exists(p):
                os.unlink(p)
        ours.append(run([wv, "convert", x, y]))
        base.append(run([PY, "-c", BASELINE, x, y2, times]))
        with open(times) as f:
            t = json.load(f)
        inner.append(t["load"] + t["save"])
        print("  run %d: wv %.2f s %.0f MiB; torch %.2f s (load+save %.2f s)"
              " %.0f MiB" % (i + 1, ours[-1][0], ours[-1][1] / 2**20,
                             base[-1][0], inner[-1], base[-1][1] / 2**20),
              file=sys.stderr)
    # The outputs are what they should be: same tensors as x.pth.
    check = subprocess.run([wv, "inspect", "--json", y], check=True,
                           capture_output=True, text=True)
    got = json.loads(check.stdout)["tensors"]
    assert len(got) == n_tensors and sum(t["nbytes"] for t in got) == data

    t_ours = statistics.median(w for w, _ in ours)
    t_base = statistics.median(w for w, _ in base)
    t_inner = statistics.median(inner)
    rss_ours = max(m for _, m in ours)
    rss_base = max(m for _, m in base)
    speed = t_base / t_ours
    rss_ratio = rss_ours / data
    print()
    print("### bench_convert: 1 GiB .pth (torch.save) to safetensors")
    print()
    print("| measure | weightvault | baseline | ratio | target |")
    print("|---|---|---|---|---|")
    print("| convert time, wall (median of %d) | %.2f s | %.2f s | %.2fx "
          "| >= 3x |" % (runs, t_ours, t_base, speed))
    print("| baseline without interpreter start and import torch | "
          "%.2f s | %.2f s | %.2fx | - |" % (t_ours, t_inner,
                                               t_inner / t_ours))
    print("| peak RSS (max of %d) | %.0f MiB | %.0f MiB | %.2fx | - |"
          % (runs, rss_ours / 2**20, rss_base / 2**20, rss_base / rss_ours))
    print("| peak RSS / data (%.2f GiB) | %.2f | %.2f | - | <= 1.1 |"
          % (data / 2**30, rss_ours / data, rss_base / data))
    print()
    print("- weightvault: `wv convert x.pth y.safetensors` (durable: fsync "
          "before rename); baseline: `/usr/bin/python3 -c "
          "'torch.save(torch.load(x), y2.pt)'` (torch %s, no fsync)"
          % torch_version())
    print("- targets: speed %s (%.2fx), RSS %s (%.2f)"
          % ("met" if speed >= 3 else "MISSED", speed,
             "met" if rss_ratio <= 1.1 else "MISSED", rss_ratio))


def torch_version():
    r = subprocess.run([PY, "-c", "import torch; print(torch.__version__)"],
                       capture_output=True, text=True)
    return r.stdout.strip() or "?"


if __name__ == "__main__":
    main()
