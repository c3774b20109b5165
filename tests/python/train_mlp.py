"""A small deterministic training run that checkpoints and resumes.

    python train_mlp.py REPO OUT.safetensors STEPS EVERY

Trains an MLP (with dropout) with Adam on synthetic data drawn from all
three RNGs (torch, NumPy, Python's random: the learning rate is jittered
from it each step and lives in the optimizer's param_groups), checkpoints
every EVERY steps with weightvault.Checkpointer, resumes from the newest
checkpoint when started again, prints "step N" after each step and writes
the final weights to OUT. Used by test_checkpointer.py, which kills it at
random points; it is not a test itself.
"""
import random
import sys

import numpy as np
import torch

import weightvault as wv


def main():
    repo, out, steps, every = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
        int(sys.argv[4])
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(),
                                torch.nn.Dropout(0.2), torch.nn.Linear(32, 4))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    ck = wv.Checkpointer(repo, every=every, keep_last=2, keep_best=1,
                         metric="loss", mode="min")
    start = ck.restore_latest(model, opt) or 0
    print(f"resumed {start}", flush=True)
    for step in range(start + 1, steps + 1):
        x = torch.randn(8, 16)
        noise = torch.from_numpy(np.random.standard_normal((8, 4))
                                 .astype(np.float32))
        y = x[:, :4] * 2 + 0.1 * noise
        for g in opt.param_groups:
            g["lr"] = 1e-2 * (0.5 + random.random())
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        ck.save(step, model, opt, {"loss": loss.item()})
        print(f"step {step}", flush=True)
    wv.save(model, out)
    ck.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
