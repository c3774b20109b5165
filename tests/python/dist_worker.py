"""The writers of test_distributed.py (not a test itself).

A state dict whose large tensors are sharded over the writers (by rows, by
columns, on a 2 x 2 grid) and whose small ones are replicated, built the
same way in every process from a fixed seed (:func:`full_state`), and
each rank's part of it (:func:`local_state`).

    python dist_worker.py env URL OUT_DIR

is one torchrun-style writer: rank and world size from $RANK and
$WORLD_SIZE, no process group; it writes OUT_DIR/rankR.json with what
weightvault.distributed.save returned. :func:`pg_worker` is the
torch.multiprocessing entry point (a gloo process group).
"""
import datetime
import json
import os
import sys

import numpy as np
import torch

import weightvault as wv
import weightvault.distributed as wvd


def full_state():
    """The unsharded tensors: name -> torch tensor."""
    g = torch.Generator().manual_seed(1234)
    return {
        "emb.weight": torch.randn(96, 64, generator=g),            # rows
        "proj.weight": torch.randn(40, 150, generator=g),          # columns
        "head.weight": torch.randn(37, 50, generator=g).to(torch.bfloat16),
        "grid.weight": torch.randn(30, 44, generator=g,
                                   dtype=torch.float64),           # 2 x 2
        "norm.bias": torch.randn(64, generator=g),                 # replicated
        "step_count": torch.tensor(7, dtype=torch.int64),          # 0-d
        "vocab_ids": torch.arange(10, dtype=torch.int32),          # rank 0 only
    }


def _region(t, offs, ext):
    sl = tuple(slice(o, o + n) for o, n in zip(offs, ext))
    return (t[sl].clone(), tuple(t.shape), offs)


def local_state(rank, world):
    """Rank `rank`'s part of full_state() (world must be 4 for the grid)."""
    full = full_state()
    out = {}
    for name, dim in (("emb.weight", 0), ("head.weight", 0),
                      ("proj.weight", 1)):
        offs, ext = wvd.shard(full[name].shape, rank, world, dim)
        out[name] = _region(full[name], offs, ext)
    rows, cols = full["grid.weight"].shape
    r0, c0 = (rank // 2) * (rows // 2), (rank % 2) * (cols // 2)
    out["grid.weight"] = _region(full["grid.weight"], (r0, c0),
                                 (rows // 2, cols // 2))
    out["norm.bias"] = full["norm.bias"].clone()
    out["step_count"] = full["step_count"].clone()
    if rank == 0:
        out["vocab_ids"] = full["vocab_ids"].clone()
    return out


def _save_json(out_dir, rank, obj):
    tmp = os.path.join(out_dir, f"rank{rank}.json.tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, os.path.join(out_dir, f"rank{rank}.json"))


def pg_worker(rank, world, url, out_dir):
    """One rank of a gloo process group: saves step 1, a step whose
    replicated tensor differs on rank 1 (refused on every rank), and a
    distributed Checkpointer's state, restored into fresh tensors."""
    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo", init_method="file://" + os.path.join(out_dir, "pg-init"),
        rank=rank, world_size=world)
    res = {"rank": rank}
    res["id"] = wvd.save(local_state(rank, world), url + "@main", step=1,
                         message="four writers")
    bad = local_state(rank, world)
    if rank == 1:
        bad["norm.bias"] = bad["norm.bias"] + 1
    try:
        wvd.save(bad, url + "@main", step=2)
        res["refused"] = None
    except wv.WeightvaultError as e:
        res["refused"] = [type(e).__name__, e.message]
    with wv.Repository(url) as r:
        res["main_after_refusal"] = r.resolve("main")

    # Checkpointer(distributed=True): model regions + per-rank optimizer
    model = {"w": local_state(rank, world)["emb.weight"],
             "b": full_state()["norm.bias"]}
    optim = {"m": np.full(3, rank, np.float32), "t": rank}
    ck = wv.Checkpointer(url, branch="ck", distributed=True)
    torch.manual_seed(100 + rank)  # a per-rank RNG state to restore
    rng_saved = torch.get_rng_state()
    res["ck_id"] = ck.save(5, model, optim, {"loss": 0.5})
    w, gshape, offs = model["w"]
    fresh = {"w": (torch.zeros_like(w), gshape, offs),
             "b": torch.zeros(64)}
    fresh_opt = {}
    torch.manual_seed(99)  # restore must bring back the saved RNG state
    res["ck_step"] = ck.restore_latest(fresh, fresh_opt)
    res["ck_model_ok"] = (torch.equal(fresh["w"][0], w) and
                          torch.equal(fresh["b"], model["b"]))
    res["ck_optim"] = [fresh_opt["m"].tolist(), fresh_opt["t"]]
    res["ck_rng_ok"] = torch.equal(torch.get_rng_state(), rng_saved)
    ck.close()

    # the same in the background: save() returns once the part is staged
    # (changing the tensors afterwards changes nothing stored); the ranks
    # agree on the id at wait()
    ck = wv.Checkpointer(url, branch="ckbg", distributed=True,
                         background=True)
    wbg = w.clone()
    pend = ck.save(6, {"w": (wbg, gshape, offs), "b": model["b"]}, optim)
    wbg.fill_(-1.0)
    res["bg_id"] = ck.wait()
    res["bg_again"] = pend.wait()  # kept: no second collective
    fresh = {"w": (torch.zeros_like(w), gshape, offs)}
    res["bg_step"] = ck.restore_latest(fresh, {}, rng=False)
    res["bg_model_ok"] = torch.equal(fresh["w"][0], w)
    ck.close()
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    _save_json(out_dir, rank, res)


def pg_fail_worker(rank, world, url, out_dir):
    """One rank of a gloo group in which rank 1 fails before it stores its
    part: in weightvault.distributed.save (a step that is no int) and in a
    distributed Checkpointer's save (optimizer state it cannot store).
    Every rank must raise at once; a rank left waiting in the collective
    would end only at the group's timeout, with gloo's error."""
    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo", init_method="file://" + os.path.join(out_dir, "pg-init"),
        rank=rank, world_size=world, timeout=datetime.timedelta(seconds=60))
    res = {"rank": rank}
    sd = {"b": torch.ones(4)}
    try:
        wvd.save(sd, url + "@main", step="x" if rank == 1 else 3)
        res["save"] = None
    except Exception as e:
        res["save"] = [type(e).__name__, str(e)]
    ck = wv.Checkpointer(url, branch="ck", distributed=True)
    try:
        ck.save(5, sd, {"m": {1, 2} if rank == 1 else 0})
        res["ck_save"] = None
    except Exception as e:
        res["ck_save"] = [type(e).__name__, str(e)]
    ck.close()
    # in the background: rank 1's staging fails, every rank raises at the
    # next wait() (close() here), none is left in the collective
    ck = wv.Checkpointer(url, branch="ckbg", distributed=True,
                         background=True)
    ck.save(5, sd, {"m": {1, 2} if rank == 1 else 0})
    try:
        ck.close()
        res["ckbg_close"] = None
    except Exception as e:
        res["ckbg_close"] = [type(e).__name__, str(e)]
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    _save_json(out_dir, rank, res)


def main():
    mode, url, out_dir = sys.argv[1:4]
    if mode != "env":
        raise SystemExit(f"unknown mode {mode!r}")
    torch.set_num_threads(1)
    rank, world = wvd.rank_and_world()
    cid = wvd.save(local_state(rank, world), url, step=1)
    _save_json(out_dir, rank, {"rank": rank, "id": cid})


if __name__ == "__main__":
    main()
