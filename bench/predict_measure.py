#!/usr/bin/env python3
"""predict_measure.py -- how far an optimizer-aware delta could go.

Not used by weightvault: a measurement for the delta codec's next step
(docs/repo-format.md "Delta chunks", README "Still short of the
targets"). Takes two consecutive checkpoints of bench/trajectory.py (one
Adam step apart, weights plus "opt.NAME.exp_avg" / "opt.NAME.exp_avg_sq")
and prints, per kind of tensor, the order-0 entropy of the byte planes
(what byte grouping and an entropy coder approach) of:

  whole      the new checkpoint's values
  xor-parent the XOR with the older checkpoint's (the delta codec today)
  xor-pred   the XOR with a prediction from values a reader would already
             have: the weights from the older weights and the new Adam
             moments (torch.optim.Adam's update, in F32), the second
             moment from the older one and the gradient the two first
             moments imply; the first moment has no prediction (it takes
             in the new gradient) and keeps xor-parent

  /usr/bin/python3 bench/predict_measure.py OLD NEW [--lr LR]
      [--betas B1 B2] [--eps EPS] [--max-step T]

The step count (Adam's bias correction) is searched for on a sample of
the weights, 1 .. --max-step. F32 only.
"""
import argparse
import json
import math
import struct

import numpy as np


def load(path):
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    (n,) = struct.unpack("<Q", raw[:8].tobytes())
    if n > raw.size - 8:
        raise SystemExit("%s: not a safetensors file" % path)
    head = json.loads(raw[8:8 + n].tobytes())
    out = {}
    for name, t in head.items():
        if name == "__metadata__":
            continue
        if t["dtype"] != "F32":
            raise SystemExit("%s: %s is %s, not F32" % (path, name, t["dtype"]))
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=np.float32)
    return out


def plane_bits(x):
    """Order-0 entropy of each byte plane of the 32-bit words x, in bits."""
    u = x.view(np.uint8).reshape(-1, 4)
    bits = 0.0
    for j in range(4):
        c = np.bincount(u[:, j], minlength=256).astype(np.float64)
        p = c[c > 0] / c.sum()
        bits += -(p * np.log2(p)).sum() * u.shape[0]
    return bits


def adam_w(w0, m1, v1, lr, b1, b2, eps, t):
    """torch.optim.Adam's F32 update of w0 with the new moments, step t."""
    bc1 = 1 - b1 ** t
    bc2s = np.float32(math.sqrt(1 - b2 ** t))
    den = np.sqrt(v1) / bc2s + np.float32(eps)
    return (w0 + np.float32(-lr / bc1) * (m1 / den)).astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--betas", type=float, nargs=2, default=(0.9, 0.999))
    ap.add_argument("--eps", type=float, default=1e-8)
    ap.add_argument("--max-step", type=int, default=1000)
    a = ap.parse_args()
    b1, b2 = a.betas
    old, new = load(a.old), load(a.new)
    params = [k for k in new if not k.startswith("opt.")]
    # the step: the t whose prediction matches most sampled weights exactly
    big = max(params, key=lambda k: new[k].size)
    s = slice(0, min(new[big].size, 1 << 16))
    w0, w1 = old[big][s], new[big][s]
    m1 = new["opt.%s.exp_avg" % big][s]
    v1 = new["opt.%s.exp_avg_sq" % big][s]
    step = max(range(1, a.max_step + 1),
               key=lambda t: np.count_nonzero(
                   adam_w(w0, m1, v1, a.lr, b1, b2, a.eps, t) == w1))
    rows = {k: [0.0, 0.0, 0.0, 0] for k in ("weights", "exp_avg", "exp_avg_sq")}
    for p in params:
        w0, w1 = old[p], new[p]
        m0, m1 = old["opt.%s.exp_avg" % p], new["opt.%s.exp_avg" % p]
        v0, v1 = old["opt.%s.exp_avg_sq" % p], new["opt.%s.exp_avg_sq" % p]
        pw = adam_w(w0, m1, v1, a.lr, b1, b2, a.eps, step)
        g = (m1.astype(np.float64) - b1 * m0) / (1 - b1)
        pv = (b2 * v0.astype(np.float64) + (1 - b2) * g * g).astype(np.float32)
        for kind, x1, x0, pr in (("weights", w1, w0, pw),
                                 ("exp_avg", m1, m0, m0),
                                 ("exp_avg_sq", v1, v0, pv)):
            u1, u0, up = x1.view(np.uint32), x0.view(np.uint32), pr.view(np.uint32)
            r = rows[kind]
            r[0] += plane_bits(x1)
            r[1] += plane_bits(u1 ^ u0)
            r[2] += plane_bits(u1 ^ up)
            r[3] += x1.size * 4
    print("Adam step found: %d (lr %g, betas %g %g, eps %g)"
          % (step, a.lr, b1, b2, a.eps))
    print()
    print("| tensors | raw MB | whole MB | xor-parent MB | xor-pred MB |")
    print("|---|---|---|---|---|")
    tot = [0.0, 0.0, 0.0, 0]
    for kind, r in rows.items():
        print("| %s | %.1f | %.1f | %.1f | %.1f |"
              % (kind, r[3] / 1e6, r[0] / 8e6, r[1] / 8e6, r[2] / 8e6))
        tot = [x + y for x, y in zip(tot, r)]
    print("| all | %.1f | %.1f | %.1f (%.2fx) | %.1f (%.2fx) |"
          % (tot[3] / 1e6, tot[0] / 8e6, tot[1] / 8e6, tot[1] / tot[0],
             tot[2] / 8e6, tot[2] / tot[0]))


if __name__ == "__main__":
    main()
