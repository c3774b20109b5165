"""Checkpointer: what a checkpoint holds, retention, NumPy-only training,
and a torch run killed with SIGKILL at random points that ends bit-identical
to an uninterrupted one."""
import json
import os
import random
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

import weightvault as wv

HERE = os.path.dirname(os.path.abspath(__file__))


def test_save_every_and_restore_everything(mem_uri):
    torch.manual_seed(1)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9,
                          nesterov=True, weight_decay=1e-4)
    ck = wv.Checkpointer(mem_uri, every=5)
    assert ck.restore_latest(model, opt) is None  # empty repository
    for step in range(1, 8):
        model(torch.randn(4, 3)).sum().backward()
        opt.step()
        cid = ck.save(step, model, opt, {"loss": 1.0 / step})
        assert (cid is None) == (step != 5)
    saved_w = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(5)  # state at the save of step 5 ...
    np.random.seed(5)
    random.seed(5)
    # ... differs from now; restore must bring back the step-5 state.
    model2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.5)
    ck2 = wv.Checkpointer(mem_uri)
    assert ck2.restore_latest(model2, opt2) == 5
    g = opt2.param_groups[0]
    assert (g["lr"], g["momentum"], g["nesterov"], g["weight_decay"]) == \
        (0.1, 0.9, True, 1e-4)
    assert set(opt2.state_dict()["state"]) == {0, 1}
    info = ck2.repo.stat("main")
    assert info["metadata"]["step"] == "5"
    assert float(info["metadata"]["loss"]) == 1.0 / 5
    assert not all(torch.equal(saved_w[k], v)
                   for k, v in model2.state_dict().items())  # step 7 != 5
    ck.close()
    ck2.close()


def test_rng_states_are_restored(mem_uri):
    ck = wv.Checkpointer(mem_uri)
    torch.manual_seed(11)
    np.random.seed(11)
    random.seed(11)
    np.random.standard_normal()  # leaves a cached Gaussian
    ck.save(1, {"w": np.zeros(1)})
    expect = (torch.rand(3), np.random.standard_normal(3), random.random())
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    assert ck.restore_latest() == 1
    got = (torch.rand(3), np.random.standard_normal(3), random.random())
    assert torch.equal(expect[0], got[0])
    assert np.array_equal(expect[1], got[1]) and expect[2] == got[2]
    ck.close()


def test_numpy_training_restores_in_place(tmp_path):
    """A NumPy-only loop: the model and optimizer state are dicts."""
    repo = tmp_path / "ck"
    rng = np.random.default_rng(0)
    model = {"w": rng.standard_normal((4, 2)).astype(np.float32),
             "b": np.zeros(2, np.float32)}
    velocity = {"w": np.zeros((4, 2), np.float32), "t": 0, "beta": 0.9}
    ck = wv.Checkpointer(repo, every=2)
    for step in range(1, 5):
        velocity["w"] = 0.9 * velocity["w"] + np.float32(step)
        velocity["t"] = step
        model["w"] -= 0.01 * velocity["w"]
        ck.save(step, model, velocity, {"loss": float(step)})
    ck.close()
    final = {k: v.copy() for k, v in model.items()}
    final_v = velocity["w"].copy()
    w_obj = np.zeros((4, 2), np.float32)
    model2 = {"w": w_obj, "b": np.ones(2, np.float32)}
    opt2 = {}
    with wv.Checkpointer(str(repo)) as ck2:
        assert ck2.restore_latest(model2, opt2) == 4
    assert model2["w"] is w_obj  # updated in place
    assert np.array_equal(model2["w"], final["w"])
    assert np.array_equal(model2["b"], final["b"])
    assert np.array_equal(opt2["w"], final_v)
    assert opt2["t"] == 4 and opt2["beta"] == 0.9


def test_keep_last_and_keep_best_prune_the_rest(mem_uri):
    losses = [5.0, 1.0, 4.0, 3.0, 2.5, 6.0, 7.0]
    ck = wv.Checkpointer(mem_uri, keep_last=2, keep_best=1, metric="loss")
    ids = []
    for step, loss in enumerate(losses, 1):
        ids.append(ck.save(step, {"w": np.full(1000, step, np.float32)},
                           metrics={"loss": loss}))
    alive = []
    for cid in ids:
        try:
            alive.append(int(ck.repo.stat(cid)["metadata"]["step"]))
        except wv.NotFoundError:
            pass
    # The last two (6, 7) and the best loss (step 2) survive.
    assert alive == [2, 6, 7]
    assert ck.repo.checkout(ids[1])["model/w"][0] == 2  # its data survived gc
    ck.close()


def test_keep_best_max_mode(mem_uri):
    ck = wv.Checkpointer(mem_uri, keep_last=1, keep_best=2, metric="acc",
                         mode="max")
    ids = [ck.save(s, {"w": np.zeros(1)}, metrics={"acc": a})
           for s, a in enumerate([0.5, 0.9, 0.7, 0.8, 0.1], 1)]
    kept = [s for s, cid in enumerate(ids, 1)
            if cid in {d["id"] for d in ck.repo.prune(keep_last=1,
                                                      keep_best=2,
                                                      metric="acc",
                                                      mode="max",
                                                      dry_run=True)}]
    assert kept == [2, 4, 5]
    ck.close()


def test_checkpoint_layout_is_documented_names(mem_uri):
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    opt.step()
    with wv.Checkpointer(mem_uri) as ck:
        ck.save(3, model, opt)
        d = ck.repo.checkout()
    assert {"model/weight", "model/bias", "rng/torch", "rng/numpy",
            "optim/state/0/exp_avg", "optim/state/1/exp_avg_sq"} <= set(d)
    state = json.loads(d.metadata["weightvault.checkpointer"])
    assert state["step"] == 3
    assert state["optimizer"]["param_groups"][0]["betas"] == \
        {"__tuple__": [0.9, 0.999]}


def test_restores_a_commit_not_made_by_a_checkpointer(mem_uri):
    """wv.save(model, "repo@main") then Checkpointer.restore_latest (the
    README's order): the tensors come back by name, optimizer and RNGs are
    left alone, the step is 0 (or the commit's integer "step" metadata)."""
    torch.manual_seed(3)
    model = torch.nn.Sequential()
    model.add_module("fc", torch.nn.Linear(4, 3))
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    wv.save(model, mem_uri + "@main")
    model2 = torch.nn.Sequential()
    model2.add_module("fc", torch.nn.Linear(4, 3))
    opt = torch.optim.SGD(model2.parameters(), lr=0.25)
    before_opt = json.dumps(opt.state_dict()["param_groups"])
    torch.manual_seed(11)
    rng_before = torch.get_rng_state().clone()
    ck = wv.Checkpointer(mem_uri, keep_last=2, keep_best=1, metric="val_loss")
    assert ck.restore_latest(model2, opt) == 0
    for k, v in saved.items():
        assert torch.equal(model2.state_dict()[k], v), k
    assert json.dumps(opt.state_dict()["param_groups"]) == before_opt
    assert torch.equal(torch.get_rng_state(), rng_before)
    # the Checkpointer commits after it; retention copes with the plain one
    for step in range(1, 4):
        ck.save(step, model2, opt, {"val_loss": 1.0 / step})
    assert wv.Checkpointer(mem_uri).restore_latest(model2, opt) == 3
    # an integer "step" in the commit's metadata is the step returned
    wv.save(model, mem_uri + "@main", metadata={"step": 42})
    assert wv.Checkpointer(mem_uri).restore_latest(model2) == 42
    # a NumPy dict model gets the arrays, by the commit's own names
    arrays = {"a": np.zeros(3, np.float32)}
    wv.save({"a": np.arange(3, dtype=np.float32)}, mem_uri + "@np")
    assert wv.Checkpointer(mem_uri, branch="np").restore_latest(arrays) == 0
    assert arrays["a"].tolist() == [0.0, 1.0, 2.0]


def test_damaged_checkpointer_metadata_is_one_clear_error(mem_uri):
    with wv.Repository(mem_uri, create=True) as r:
        r.commit({"model/w": np.ones(2, np.float32)}, "main",
                 metadata={"weightvault.checkpointer": "{not json"})
    with pytest.raises(wv.CorruptError, match="weightvault.checkpointer"):
        wv.Checkpointer(mem_uri).restore_latest({})


def _run(repo, out, steps, every, env):
    return subprocess.Popen(
        [sys.executable, os.path.join(HERE, "train_mlp.py"), repo, out,
         str(steps), str(every)], stdout=subprocess.PIPE, text=True, env=env)


def test_killed_training_resumes_bit_identical(tmp_path):
    steps, every = 40, 3
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.join(os.path.dirname(os.path.dirname(HERE)), "python"),
         env.get("PYTHONPATH", "")])
    ref = _run(str(tmp_path / "ref"), str(tmp_path / "ref.safetensors"),
               steps, every, env)
    ref.communicate()
    assert ref.returncode == 0
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    kills, resumes = 0, []
    for attempt in range(60):
        p = _run(str(tmp_path / "run"), str(tmp_path / "run.safetensors"),
                 steps, every, env)
        kill_after = rng.randint(1, 8)
        seen = 0
        for line in p.stdout:
            if line.startswith("resumed"):
                resumes.append(int(line.split()[1]))
            elif line.startswith("step"):
                seen += 1
                if seen == kill_after:
                    # Land anywhere: inside the next step, its commit, its
                    # prune or gc.
                    for _ in range(rng.randint(0, 200000)):
                        pass
                    p.send_signal(signal.SIGKILL)
                    kills += 1
                    break
        p.stdout.close()
        rc = p.wait()
        if rc == 0:
            break
        assert rc == -signal.SIGKILL, f"seed {seed}: exit {rc}"
    else:
        pytest.fail(f"seed {seed}: never finished")
    assert kills >= 2, f"seed {seed}"
    assert any(r > 0 for r in resumes), f"seed {seed}: {resumes}"
    a = (tmp_path / "ref.safetensors").read_bytes()
    b = (tmp_path / "run.safetensors").read_bytes()
    assert a == b, f"seed {seed}: resumed run differs ({kills} kills, " \
                   f"resumed at {resumes})"
    # The repository is consistent after all those kills.
    with wv.Repository(str(tmp_path / "run")) as r:
        assert r.stat("main")["metadata"]["step"] == str(steps - steps % every)


def needs(fn):
    """Skip when the library predates `fn` (it is declared in the header)."""
    return pytest.mark.skipif(not wv._lib.has(fn),
                              reason=f"libweightvault has no {fn}")


@needs("wv_repo_commit_async")
@needs("wv_repo_verify")
def test_background_commits_snapshot_the_state(mem_uri):
    """save() returns before the commit is written, yet the checkpoint holds
    the state at save time, even though the arrays change right after."""
    w = {"w": np.zeros(300_000, np.float32)}
    ck = wv.Checkpointer(mem_uri, background=True, keep_last=2)
    pending = []
    for step in range(1, 5):
        w["w"][:] = step
        pending.append(ck.save(step, w, metrics={"loss": -step}))
        w["w"][:] = -1  # mutated while the commit may still be running
    ids = [p.wait() for p in pending]
    ck.close()
    with wv.Repository(mem_uri) as r:
        assert r.checkout(ids[-1])["model/w"].min() == 4
        alive = [cid for cid in ids if cid in {s["id"] for s in r.log()}]
        assert alive == ids[-2:]  # keep_last=2 applied after the last one
        assert r.verify()["ok"]


@needs("wv_repo_verify")
def test_repository_verify_reports_damage(tmp_path):
    r = wv.Repository(tmp_path / "ck", create=True)
    r.commit({"w": np.arange(1000, dtype=np.float32)})
    assert r.verify()["ok"] and r.verify()["chunks"] == 1
    r.close()
    pack = next((tmp_path / "ck" / "packs").rglob("*[0-9a-f]"))
    while pack.is_dir():
        pack = next(pack.iterdir())
    data = bytearray(pack.read_bytes())
    data[20] ^= 0xFF
    pack.write_bytes(bytes(data))
    with wv.Repository(tmp_path / "ck") as r:
        v = r.verify()
        assert not v["ok"] and v["problems"]
        assert "packs/" in v["problems"][0]["object"]
        with pytest.raises(wv.CorruptError):
            r.checkout()
