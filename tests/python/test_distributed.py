"""weightvault.distributed: four writers (a torch.multiprocessing gloo
group, and torchrun-style processes with only $RANK/$WORLD_SIZE) save one
checkpoint whose large tensors are sharded by rows, columns and on a grid
and whose small ones are replicated; it is read back whole by 1 reader and
as regions by 3 and by 8 readers, bit-identical to the unsharded tensors.
Refusals (overlap with different bytes, a gap, a replicated tensor that
differs, a missing part) name the tensor. On a local directory, and on S3
when the Ceph test environment is given ($AWS_ENDPOINT_URL)."""
import json
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest
import torch

import weightvault as wv
import weightvault.distributed as wvd
from weightvault import _lib, _model

from conftest import needs_s3, s3_bucket, wv_features
from dist_worker import full_state, local_state

HERE = os.path.dirname(os.path.abspath(__file__))
WORLD = 4

needs_dist = pytest.mark.skipif(
    not all(_lib.has(f) for f in _lib.DISTRIBUTED),
    reason="this libweightvault has no multi-writer checkpoints")


def raw(x):
    """The bytes of a tensor or array, row-major (BF16 as its bits)."""
    if isinstance(x, torch.Tensor):
        x = x.contiguous()
        if x.dtype == torch.bfloat16:
            x = x.view(torch.int16)
        x = x.numpy()
    return np.ascontiguousarray(x).tobytes()


def make_repo(uri):
    # small chunks: every sharded tensor spans several, and regions
    # start and end inside them
    wv.Repository.init(uri, chunk_size=4096, pack_size=1 << 20)


# -- no library needed ------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 5, 37, 96])
@pytest.mark.parametrize("world", [1, 3, 4, 8])
def test_shard_tiles_every_extent(n, world):
    seen = []
    for rank in range(world):
        offs, ext = wvd.shard((7, n, 2), rank, world, dim=1)
        assert offs[0] == offs[2] == 0 and ext[0] == 7 and ext[2] == 2
        seen += range(offs[1], offs[1] + ext[1])
        # as even as can be: extents differ by at most one
        assert n // world <= ext[1] <= -(-n // world)
    assert seen == list(range(n))
    assert wvd.shard_rows((n, 3), 0, world) == wvd.shard((n, 3), 0, world)
    assert wvd.shard((), 0, world) == ((), ())


def test_shard_refuses_bad_arguments():
    with pytest.raises(ValueError, match="rank 4 of world size 4"):
        wvd.shard((8,), 4, 4)
    with pytest.raises(ValueError, match="dim 2"):
        wvd.shard((8, 2), 0, 2, dim=2)


def test_rank_and_world_sources(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert wvd.rank_and_world() == (0, 1)
    assert wvd.rank_and_world(2, 3) == (2, 3)
    with pytest.raises(ValueError, match="both"):
        wvd.rank_and_world(rank=1)
    with pytest.raises(ValueError, match="0 <= rank < world_size"):
        wvd.rank_and_world(3, 3)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert wvd.rank_and_world() == (1, 4)
    assert wvd.rank_and_world(0, 2) == (0, 2)  # arguments first
    monkeypatch.setenv("WORLD_SIZE", "four")
    with pytest.raises(ValueError, match="WORLD_SIZE='four'"):
        wvd.rank_and_world()


def test_save_needs_a_step_or_txn(tmp_path):
    with pytest.raises(ValueError, match="step="):
        wvd.save({"a": np.zeros(2)}, str(tmp_path / "r") + "@main",
                 rank=0, world_size=1)


def test_without_the_library_functions_a_clear_error(monkeypatch, tmp_path):
    """An older library: the package imports, distributed calls say what
    is missing."""
    real = _lib.has
    monkeypatch.setattr(_lib, "has", lambda n: False if n in
                        _lib.DISTRIBUTED or n == "wv_repo_list_pending"
                        else real(n))
    uri = str(tmp_path / "r")
    with pytest.raises(wv.UnsupportedError, match="wv_model_set_region"):
        _model.build_model({"w": (np.zeros(2), (4,), (0,))}, regions=True)
    with pytest.raises(wv.UnsupportedError, match="wv_repo_commit_part"):
        wvd.save({"w": np.zeros(2)}, uri + "@main", step=1, rank=0,
                 world_size=2)
    wv.save({"w": np.arange(4.0)}, uri + "@main")
    with pytest.raises(wv.UnsupportedError, match="wv_repo_read_region"):
        wvd.load(uri + "@main", regions={"w": ((0,), (2,))})
    with pytest.raises(wv.UnsupportedError, match="wv_repo_list_pending"):
        wvd.pending(uri)
    # whole tensors need nothing new
    assert wvd.load(uri + "@main", framework="numpy")["w"].tolist() == \
        [0.0, 1.0, 2.0, 3.0]


def test_malformed_triples_name_the_tensor(tmp_path):
    uri = str(tmp_path / "r") + "@main"
    with pytest.raises(ValueError, match="'w': offsets"):
        wvd.save({"w": (np.zeros((2, 2)), (4, 2), (0,))}, uri, step=1,
                 rank=0, world_size=1)
    with pytest.raises(ValueError, match="'w': global shape"):
        wvd.save({"w": (np.zeros(2), ("x",), (0,))}, uri, step=1,
                 rank=0, world_size=1)


# -- the C side of issue 16 ----------------------------------------------------

@needs_dist
def test_region_past_the_global_shape_is_refused(tmp_path):
    uri = str(tmp_path / "r") + "@main"
    with pytest.raises(wv.UsageError, match="'w'"):
        wvd.save({"w": (np.zeros((2, 3)), (4, 3), (3, 0))}, uri, step=1,
                 rank=0, world_size=2)


def check_checkpoint(url, cid):
    """Whole by 1 reader, regions by 3 and by 8: bit-identical."""
    full = full_state()
    with wv.Repository(url) as r:
        assert r.resolve("main") == cid
        info = r.tensors(cid)
        assert {n: i["shape"] for n, i in info.items()} == \
            {n: tuple(t.shape) for n, t in full.items()}
        if info["emb.weight"]["shards"] is not None:
            assert info["emb.weight"]["shards"] == WORLD
            assert info["vocab_ids"]["shards"] == 1
        v = r.verify()
        assert v["ok"], v["problems"]
    whole = wvd.load(url + "@latest")
    assert whole.checkpoint == cid and set(whole) == set(full)
    for name, t in full.items():
        assert whole[name].dtype == t.dtype, name
        assert raw(whole[name]) == raw(t), name
    assert whole.metadata["step"] == "1"
    for readers in (3, 8):
        parts = [wvd.load(url + "@" + cid, regions="rows", rank=k,
                          world_size=readers, framework="numpy")
                 for k in range(readers)]
        for name, t in full.items():
            if t.dim() == 0:
                assert all(raw(p[name]) == raw(t) for p in parts), name
                continue
            got = np.concatenate([p[name] for p in parts], axis=0)
            assert got.shape == tuple(t.shape), name
            assert raw(got) == raw(t), (name, readers)
        # columns of the column-sharded tensor, into a template in place
        t = full["proj.weight"]
        cols = []
        for k in range(readers):
            offs, ext = wvd.shard(t.shape, k, readers, dim=1)
            dest = torch.full(ext, float("nan"))
            got = wvd.load(url + "@latest", regions={
                "proj.weight": (dest, tuple(t.shape), offs)})
            assert got["proj.weight"] is dest
            cols.append(dest)
        assert raw(torch.cat(cols, dim=1)) == raw(t)
    # an arbitrary block across the 2 x 2 grid's seams
    g = full["grid.weight"]
    blk = wvd.load(url + "@latest", regions={
        "grid.weight": ((10, 13), (11, 20))})["grid.weight"]
    assert raw(blk) == raw(g[10:21, 13:33])


def run_group(url, out_dir):
    torch.multiprocessing.spawn(
        __import__("dist_worker").pg_worker,
        args=(WORLD, url, str(out_dir)), nprocs=WORLD, join=True)
    return [json.loads((out_dir / f"rank{k}.json").read_text())
            for k in range(WORLD)]


def check_group(url, res):
    ids = {x["id"] for x in res}
    assert len(ids) == 1 and None not in ids, res
    cid = ids.pop()
    for x in res:  # rank 1's differing replica: refused on every rank
        assert x["refused"] is not None, x
        kind, msg = x["refused"]
        assert kind == "CorruptError" and "norm.bias" in msg, x
        assert x["main_after_refusal"] == cid
    ck_ids = {x["ck_id"] for x in res}
    assert len(ck_ids) == 1 and None not in ck_ids
    for x in res:
        assert x["ck_step"] == 5 and x["ck_model_ok"] and x["ck_rng_ok"], x
        assert x["ck_optim"] == [[float(x["rank"])] * 3, x["rank"]]
    bg_ids = {x["bg_id"] for x in res}  # background=True: one id, on ckbg
    assert len(bg_ids) == 1 and None not in bg_ids, res
    for x in res:
        assert x["bg_again"] == x["bg_id"] and x["bg_step"] == 6, x
        assert x["bg_model_ok"], x
    check_checkpoint(url, cid)
    with wv.Repository(url) as r:
        pend = [p for p in r.pending() if p["txn"] == "step-2"]
        assert len(pend) == 1 and pend[0]["parts"] == WORLD
        assert r.stat("ck")["metadata"]["loss"] == "0.5"
        assert r.resolve("ckbg") == bg_ids.pop()


@needs_dist
def test_process_group_four_writers_local(tmp_path):
    url = str(tmp_path / "repo")
    make_repo(url)
    check_group(url, run_group(url, tmp_path))


@needs_dist
@needs_s3
def test_process_group_four_writers_s3(tmp_path):
    with s3_bucket("wv-i16-pydist") as bucket:
        url = f"s3://{bucket}/run"
        make_repo(url)
        check_group(url, run_group(url, tmp_path))


@needs_dist
@pytest.mark.skipif(not os.path.isfile(os.environ.get("CEPH_CONF", "")),
                    reason="needs a Ceph cluster ($CEPH_CONF naming its "
                           "configuration: the Ceph test environment)")
def test_process_group_four_writers_rados(tmp_path):
    feats = wv_features()
    if feats is not None and "rados" not in feats:
        pytest.skip("the library was built without rados://")
    pool = f"wvt-i16-pydist-{uuid.uuid4().hex[:12]}"
    url = f"rados://{pool}/run"
    try:
        make_repo(url)
        check_group(url, run_group(url, tmp_path))
    finally:  # best effort, as tests/cli/rados_repo.sh
        try:
            subprocess.run(["ceph", "-c", os.environ["CEPH_CONF"], "osd",
                            "pool", "rm", pool, pool,
                            "--yes-i-really-really-mean-it"],
                           capture_output=True, timeout=120)
        except (OSError, subprocess.SubprocessError):
            pass


@needs_dist
def test_a_rank_failing_before_its_part_fails_every_rank(tmp_path):
    """Rank 1 raises before it stores anything (its arguments, its
    optimizer state): rank 0 raises an error naming it instead of waiting
    for it in the collective."""
    url = str(tmp_path / "repo")
    make_repo(url)
    torch.multiprocessing.spawn(
        __import__("dist_worker").pg_fail_worker,
        args=(2, url, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = [json.loads((tmp_path / f"rank{k}.json").read_text())
              for k in range(2)]
    assert r1["save"][0] == "ValueError" and "step" in r1["save"][1], r1
    assert r0["save"][0] == "RuntimeError", r0
    assert r0["save"][1].startswith("rank 1 of 2 failed: step"), r0
    assert r1["ck_save"][0] == "TypeError" and "set" in r1["ck_save"][1]
    assert r0["ck_save"][1].startswith("rank 1 of 2 failed: Checkpointer:"
                                       " cannot store set"), r0
    assert r1["ckbg_close"][0] == "TypeError", r1
    assert r0["ckbg_close"][1].startswith("rank 1 of 2 failed: "
                                          "Checkpointer: cannot store set"), r0
    with wv.Repository(url) as r:
        assert r.branches() == {}


@needs_dist
def test_torchrun_style_env_writers(tmp_path):
    """Four processes with RANK/WORLD_SIZE and no process group: whoever
    is done last finishes; every id returned is the checkpoint's."""
    url = str(tmp_path / "repo")
    make_repo(url)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.join(os.path.dirname(os.path.dirname(HERE)), "python"),
         env.get("PYTHONPATH", "")])
    procs = []
    for k in range(WORLD):
        e = dict(env, RANK=str(k), WORLD_SIZE=str(WORLD))
        procs.append(subprocess.Popen(
            [sys.executable, os.path.join(HERE, "dist_worker.py"), "env",
             url + "@main", str(tmp_path)], env=e))
    assert [p.wait() for p in procs] == [0] * WORLD
    ids = [json.loads((tmp_path / f"rank{k}.json").read_text())["id"]
           for k in range(WORLD)]
    done = {i for i in ids if i is not None}
    assert len(done) == 1, ids
    cid = done.pop()
    with wv.Repository(url) as r:
        assert r.pending() == []
    check_checkpoint(url, cid)


@needs_dist
def test_parts_missing_then_last_writer_finishes(tmp_path):
    url = str(tmp_path / "repo")
    make_repo(url)
    wv.save({"x": np.ones(3, np.float32)}, url + "@main")
    with wv.Repository(url) as r:
        before = r.resolve("main")
    for k in range(WORLD - 1):
        assert wvd.save(local_state(k, WORLD), url + "@main", step=1,
                        rank=k, world_size=WORLD) is None
    with wv.Repository(url) as r:
        assert r.resolve("main") == before  # nothing partial shows
        assert [(p["branch"], p["txn"], p["writers"], p["parts"])
                for p in r.pending()] == [("main", "step-1", WORLD,
                                           WORLD - 1)]
    with pytest.raises(wv.BusyError, match=str(WORLD - 1)):
        wvd.finish(url + "@main", step=1, world_size=WORLD)
    cid = wvd.save(local_state(WORLD - 1, WORLD), url + "@main", step=1,
                   rank=WORLD - 1, world_size=WORLD)
    assert cid is not None
    # the same id whoever finishes, and again
    assert wvd.finish(url + "@main", step=1, world_size=WORLD) == cid
    with wv.Repository(url) as r:
        assert r.stat(cid)["parent"] == before
        assert r.pending() == []


def _refused(tmp_path, parts, name):
    """Save `parts` (one state dict per writer); finishing must raise
    CorruptError naming tensor `name`, and main must not move."""
    url = str(tmp_path / "repo")
    make_repo(url)
    n = len(parts)
    for k, sd in enumerate(parts[:-1]):
        assert wvd.save(sd, url + "@main", step=1, rank=k,
                        world_size=n) is None
    with pytest.raises(wv.CorruptError, match=name):
        wvd.save(parts[-1], url + "@main", step=1, rank=n - 1,
                 world_size=n)
    with pytest.raises(wv.CorruptError, match=name):
        wvd.finish(url + "@main", step=1, world_size=n)
    with wv.Repository(url) as r:
        assert r.branches() == {}


@needs_dist
def test_overlap_with_different_bytes_is_refused(tmp_path):
    a = np.arange(40, dtype=np.float32).reshape(10, 4)
    b = a.copy()
    b[4:6] += 1  # rows 4..5 are in both parts, with different bytes
    _refused(tmp_path, [{"layer.w": (a[0:6], (10, 4), (0, 0))},
                        {"layer.w": (b[4:10], (10, 4), (4, 0))}], "layer.w")


@needs_dist
def test_a_region_replicated_bit_identical_is_accepted(tmp_path):
    a = np.arange(40, dtype=np.float32).reshape(10, 4)
    url = str(tmp_path / "repo")
    make_repo(url)
    parts = [{"w": (a[0:6], (10, 4), (0, 0))},
             {"w": (a[0:6].copy(), (10, 4), (0, 0))},  # the same region
             {"w": (a[6:10], (10, 4), (6, 0))}]
    ids = [wvd.save(sd, url + "@main", step=1, rank=k, world_size=3)
           for k, sd in enumerate(parts)]
    assert ids[:2] == [None, None] and ids[2] is not None
    assert raw(wvd.load(url + "@latest", framework="numpy")["w"]) == raw(a)
    with wv.Repository(url) as r:
        info = r.tensors()["w"]
        assert info["writers"] == [0, 1, 2]


@needs_dist
def test_gap_is_refused(tmp_path):
    a = np.arange(40, dtype=np.float32).reshape(10, 4)
    _refused(tmp_path, [{"layer.w": (a[0:4], (10, 4), (0, 0))},
                        {"layer.w": (a[5:10], (10, 4), (5, 0))}], "layer.w")


@needs_dist
def test_differing_replicas_are_refused(tmp_path):
    _refused(tmp_path, [{"bias": np.zeros(4, np.float32)},
                        {"bias": np.ones(4, np.float32)}], "bias")


@needs_dist
def test_regions_out_of_range_name_the_tensor(tmp_path):
    url = str(tmp_path / "repo")
    make_repo(url)
    wvd.save(local_state(0, 1) | {"grid.weight": full_state()["grid.weight"]},
             url + "@main", step=1, rank=0, world_size=1)
    with pytest.raises(wv.UsageError, match="emb.weight"):
        wvd.load(url + "@latest", regions={"emb.weight": ((90, 0), (7, 64))})
    with pytest.raises(wv.NotFoundError, match="nope"):
        wvd.load(url + "@latest", regions={"nope": ((0,), (1,))})
    with pytest.raises(ValueError, match="template"):
        wvd.load(url + "@latest", regions={"emb.weight": torch.zeros(3, 3)})
    with pytest.raises(ValueError, match="emb.weight"):
        wvd.load(url + "@latest",
                 regions={"emb.weight": torch.zeros(96, 64,
                                                    dtype=torch.float64)})
    # not contiguous (nor would one on a GPU be): no silent cast either
    with pytest.raises(ValueError, match="'emb.weight' is F32 .*float64"):
        wvd.load(url + "@latest", regions={
            "emb.weight": torch.zeros(64, 96, dtype=torch.float64).t()})
    with pytest.raises(ValueError, match="'emb.weight' is F32 .*float64"):
        wvd.load(url + "@latest", regions={
            "emb.weight": np.zeros((64, 96)).T})
    dest = torch.zeros(64, 96).t()  # the right dtype: filled
    wvd.load(url + "@latest", regions={"emb.weight": dest})
    assert raw(dest) == raw(full_state()["emb.weight"])


def _snippet(path, section):
    """The ```python block of `path` that uses weightvault.distributed
    (in the '## `section`' section, if given), dedented."""
    import re
    import textwrap
    text = open(path, encoding="utf-8").read()
    if section:
        text = re.search(rf"^## {section}\n(.*?)(?=^## )", text,
                         re.S | re.M).group(1)
    blocks = re.findall(r"^( *)```python\n(.*?)^\1```", text, re.S | re.M)
    code = [textwrap.dedent(b) for _, b in blocks
            if "weightvault.distributed" in b]
    assert len(code) == 1, f"{path}: {len(code)} distributed snippets"
    return code[0]


@needs_dist
@pytest.mark.parametrize("path,section", [("README.md", "Python"),
                                          ("python/README.md", None)])
def test_readme_snippets_run(path, section, tmp_path, monkeypatch):
    """What the READMEs show works as shown (one writer: no process
    group, no $RANK)."""
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    root = os.path.dirname(os.path.dirname(HERE))
    code = _snippet(os.path.join(root, path), section)
    code = code.replace("s3://bucket/run", str(tmp_path / "run"))
    g = torch.Generator().manual_seed(3)
    env = {"emb": torch.randn(10, 4, generator=g),
           "bias": torch.randn(4, generator=g), "dest": torch.zeros(3, 4)}
    exec(compile(code, path, "exec"), env)
    assert env["cid"] is not None
    assert raw(env["sd"]["emb.weight"]) == raw(env["emb"])
    assert raw(env["mine"]["emb.weight"]) == raw(env["emb"])
    assert raw(env["sd"]["norm.bias"]) == raw(env["bias"])
    if "part" in env:
        assert raw(env["part"]["emb.weight"]) == raw(env["emb"][0:2])
        assert raw(env["dest"]) == raw(env["emb"][2:5])


@needs_dist
@pytest.mark.crypto
def test_encrypted_and_signed(tmp_path, monkeypatch):
    """Every writer has the key; the finisher signs the manifest."""
    monkeypatch.delenv("WV_PASSPHRASE", raising=False)
    monkeypatch.delenv("WV_KEY_FILE", raising=False)
    lib = os.environ.get("WEIGHTVAULT_LIB", "")
    wv_bin = os.path.join(os.path.dirname(lib), "wv")
    if not os.path.isfile(wv_bin):
        pytest.skip("no wv binary beside $WEIGHTVAULT_LIB")
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    subprocess.run([wv_bin, "keygen", "-o", str(tmp_path / "alice")],
                   check=True, capture_output=True, env=env)
    pub = (tmp_path / "alice.pub").read_text().split()[1]
    url = str(tmp_path / "vault")
    wv.Repository.init(url, encrypt=True, passphrase="pw", chunk_size=4096,
                       pack_size=1 << 20)
    a = np.arange(60, dtype=np.float32).reshape(12, 5)
    ids = []
    for k in range(2):
        offs, ext = wvd.shard_rows(a.shape, k, 2)
        ids.append(wvd.save({"w": (a[offs[0]:offs[0] + ext[0]], a.shape,
                                   offs)},
                            url + "@main", step=3, rank=k, world_size=2,
                            passphrase="pw",
                            sign_key=tmp_path / "alice.key"))
    assert ids[0] is None and ids[1] is not None
    with pytest.raises(wv.AuthError):
        wvd.load(url + "@latest", regions="rows", rank=0, world_size=3)
    rows = [wvd.load(url + "@latest", regions="rows", rank=k, world_size=3,
                     passphrase="pw", framework="numpy")["w"]
            for k in range(3)]
    assert raw(np.concatenate(rows)) == raw(a)
    with wv.Repository(url, passphrase="pw") as r:
        assert r.stat()["signer"] == pub
        assert r.stat()["metadata"]["step"] == "3"


@needs_dist
def test_checkpointer_resumes_on_another_world_size(tmp_path, monkeypatch):
    """Saved by 2 ranks, the model restores into 3 ranks' regions; the
    per-rank optimizer state only for the world size it was saved by."""
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    url = str(tmp_path / "repo")
    make_repo(url)
    w = torch.arange(70, dtype=torch.float32).reshape(14, 5)
    ids = []
    for k in range(2):
        offs, ext = wvd.shard_rows(w.shape, k, 2)
        ck = wv.Checkpointer(url, distributed=True, rank=k, world_size=2)
        ids.append(ck.save(4, {"w": (w[offs[0]:offs[0] + ext[0]], w.shape,
                                     offs)},
                           {"m": np.full(2, k, np.float32)}))
        ck.close()
    assert ids[0] is None and ids[1] is not None
    rows = []
    for k in range(3):
        offs, ext = wvd.shard_rows(w.shape, k, 3)
        dest = torch.zeros(ext)
        ck = wv.Checkpointer(url, distributed=True, rank=k, world_size=3)
        assert ck.restore_latest({"w": (dest, w.shape, offs)}, rng=False) \
            == 4
        with pytest.raises(ValueError, match="saved by 2 ranks, this run "
                           "has 3"):
            ck.restore_latest({"w": (dest, w.shape, offs)}, {})
        ck.close()
        rows.append(dest)
    assert raw(torch.cat(rows)) == raw(w)
    opt = {}
    ck = wv.Checkpointer(url, distributed=True, rank=1, world_size=2)
    assert ck.restore_latest(None, opt, rng=False) == 4
    assert opt["m"].tolist() == [1.0, 1.0]
    ck.close()


def test_background_checkpointer_without_a_group(tmp_path, monkeypatch):
    """background=True, distributed=True, two ranks of one process (no
    process group): each save() returns a pending part; the first one's
    wait() gives None (a part missing), the last one's the id; the staged
    copy is what is stored; a staging error is raised at wait()."""
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    url = str(tmp_path / "repo")
    make_repo(url)
    w = torch.arange(40, dtype=torch.float32).reshape(8, 5)
    got = []
    for k in range(2):
        offs, ext = wvd.shard_rows(w.shape, k, 2)
        local = w[offs[0]:offs[0] + ext[0]].clone()
        ck = wv.Checkpointer(url, distributed=True, background=True,
                             rank=k, world_size=2)
        pend = ck.save(3, {"w": (local, w.shape, offs)})
        local.fill_(-7.0)  # after staging: not stored
        got.append(pend.wait())
        assert ck.wait() == got[-1]
        ck.close()
    assert got[0] is None and got[1] is not None
    with wv.Repository(url) as r:
        assert r.resolve("main") == got[1]
    assert raw(wvd.load(url + "@latest")["model/w"]) == raw(w)
    ck = wv.Checkpointer(url, distributed=True, background=True, rank=0,
                         world_size=2)
    pend = ck.save(4, {"w": (w, (4, 5), (0, 0))})  # past the global shape
    with pytest.raises(wv.WeightvaultError):
        pend.wait()
    with pytest.raises(wv.WeightvaultError):
        ck.wait()  # the outcome is kept
    ck.close()
