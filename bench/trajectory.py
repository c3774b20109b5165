#!/usr/bin/env python3
"""trajectory.py -- make a real training trajectory for the delta benchmark.

Trains a small GPT-style transformer on CPU with Adam (Debian's torch, no
downloads: the data is a fixed random token stream with a learnable
pattern) and writes N consecutive checkpoints as safetensors files
OUT/step_XX.safetensors holding the weights and the Adam state (exp_avg,
exp_avg_sq), in F32 or cast to BF16.

  /usr/bin/python3 bench/trajectory.py OUT [--dim D] [--layers L]
      [--checkpoints N] [--steps-between S] [--lr LR] [--dtype f32|bf16]

The default model is small (a quick run); WV_BENCH_FULL=1 makes the
>= 25M-parameter model of the benchmark (dim 512, 8 layers).
"""
import argparse
import json
import os
import struct
import sys

import torch


def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        if t.dtype == torch.bfloat16:
            raw = t.view(torch.int16).numpy().tobytes()
            dt = "BF16"
        else:
            raw = t.float().numpy().tobytes()
            dt = "F32"
        header[name] = {"dtype": dt, "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


class Block(torch.nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln1 = torch.nn.LayerNorm(d)
        self.attn = torch.nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln2 = torch.nn.LayerNorm(d)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(d, 4 * d),
                                       torch.nn.GELU(),
                                       torch.nn.Linear(4 * d, d))

    def forward(self, x, mask):
        h = self.ln1(x)
        a, _ = self.attn(h, h, h, attn_mask=mask, need_weights=False)
        x = x + a
        return x + self.mlp(self.ln2(x))


class GPT(torch.nn.Module):
    def __init__(self, vocab, d, layers, ctx):
        super().__init__()
        self.tok = torch.nn.Embedding(vocab, d)
        self.pos = torch.nn.Embedding(ctx, d)
        self.blocks = torch.nn.ModuleList(
            [Block(d, max(1, d // 64)) for _ in range(layers)])
        self.ln = torch.nn.LayerNorm(d)
        self.head = torch.nn.Linear(d, vocab, bias=False)

    def forward(self, idx):
        n = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(n))
        mask = torch.triu(torch.full((n, n), float("-inf")), 1)
        for b in self.blocks:
            x = b(x, mask)
        return self.head(self.ln(x))


def main():
    full = os.environ.get("WV_BENCH_FULL") == "1"
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--dim", type=int, default=512 if full else 192)
    ap.add_argument("--layers", type=int, default=8 if full else 4)
    ap.add_argument("--vocab", type=int, default=8192 if full else 4096)
    ap.add_argument("--checkpoints", type=int, default=20 if full else 8)
    ap.add_argument("--steps-between", type=int, default=1)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(1)
    ctx, batch = 64, 8
    model = GPT(a.vocab, a.dim, a.layers, ctx)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    # a token stream with structure: next token = (3 * token + noise) % V
    g = torch.Generator().manual_seed(a.seed + 1)
    os.makedirs(a.out, exist_ok=True)

    def batch_():
        x0 = torch.randint(0, a.vocab, (batch, 1), generator=g)
        xs = [x0]
        for _ in range(ctx):
            nz = torch.randint(0, 4, (batch, 1), generator=g)
            xs.append((xs[-1] * 3 + nz) % a.vocab)
        s = torch.cat(xs, 1)
        return s[:, :-1], s[:, 1:]

    def step():
        x, y = batch_()
        loss = torch.nn.functional.cross_entropy(
            model(x).reshape(-1, a.vocab), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss)

    step()  # the optimizer state exists from the first checkpoint on
    for k in range(a.checkpoints):
        for _ in range(a.steps_between):
            loss = step()
        t = {}
        for name, p in model.named_parameters():
            t[name] = p
            st = opt.state[p]
            t["opt." + name + ".exp_avg"] = st["exp_avg"]
            t["opt." + name + ".exp_avg_sq"] = st["exp_avg_sq"]
        if a.dtype == "bf16":
            t = {n: v.detach().to(torch.bfloat16) for n, v in t.items()}
        save_safetensors(os.path.join(a.out, "step_%02d.safetensors" % k), t)
        print("checkpoint %d loss %.4f" % (k, loss), file=sys.stderr)
    print(json.dumps({"params": n_params, "checkpoints": a.checkpoints,
                      "dtype": a.dtype, "lr": a.lr}))


if __name__ == "__main__":
    main()
