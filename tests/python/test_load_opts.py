"""wv_load_opts from Python.

max_expand (the library's amplification bound): a compressed .npz whose
tensors are ~10x its size loads by default (64x), is refused with
max_expand=2 (UsageError naming the file) and loads again with a generous
bound; the binding checks the value's type and range itself.

names (wv_load_opts.names): with a Hugging Face shard index only the
shards holding the tensors asked for are read (a shard removed first does
not stop the load), and a missing name is NotFoundError naming the index;
a .npy's one array is asked for by the file's stem; a checkout reads
only the tensors asked for (an empty list: none)."""
import json

import numpy as np
import pytest

import weightvault as wv


@pytest.fixture
def npz(tmp_path):
    rng = np.random.default_rng(7)
    # runs of 16 equal bytes: deflate shrinks them about tenfold
    a = np.repeat(rng.integers(0, 256, 3 << 16, dtype=np.uint8), 16)
    p = tmp_path / "runs.npz"
    np.savez_compressed(p, a=a)
    assert a.nbytes > 4 * p.stat().st_size + (1 << 20)
    return p, a


def test_max_expand_bounds_a_load(npz, monkeypatch):
    p, a = npz
    monkeypatch.delenv("WV_MAX_EXPAND", raising=False)
    assert np.array_equal(wv.load(p)["a"], a)
    with pytest.raises(wv.UsageError) as e:
        wv.load(p, max_expand=2)
    assert e.value.primary == 10  # WV_RANGE
    assert "runs.npz" in e.value.message
    assert np.array_equal(wv.load(p, max_expand=1000)["a"], a)
    assert np.array_equal(wv.load(p, max_expand=0)["a"], a)  # the default


def test_max_expand_argument_checked(npz):
    p, _ = npz
    for bad in (-1, 1 << 64, 2.5, "3", True):
        with pytest.raises(ValueError, match="max_expand"):
            wv.load(p, max_expand=bad)


def test_names_reach_a_shard_index(tmp_path):
    wv.save({"a": np.arange(3, dtype=np.float32)},
            tmp_path / "m-00001-of-00002.safetensors")
    wv.save({"b": np.arange(4, dtype=np.int64)},
            tmp_path / "m-00002-of-00002.safetensors")
    idx = tmp_path / "m.safetensors.index.json"
    idx.write_text(json.dumps({"metadata": {}, "weight_map": {
        "a": "m-00001-of-00002.safetensors",
        "b": "m-00002-of-00002.safetensors"}}))
    assert sorted(wv.load(idx)) == ["a", "b"]
    # the shard of "a" is not read: gone, loading "b" still works
    (tmp_path / "m-00001-of-00002.safetensors").unlink()
    got = wv.load(idx, names=["b"])
    assert list(got) == ["b"] and got["b"].tolist() == [0, 1, 2, 3]
    assert wv.load(idx, names=[]) == {}
    with pytest.raises(wv.NotFoundError,
                       match="m.safetensors.index.json: no tensor named "
                             "'nope'"):
        wv.load(idx, names=["b", "nope"])


def test_names_of_a_file(tmp_path):
    p = tmp_path / "w.safetensors"
    wv.save({"a": np.arange(3, dtype=np.float32),
             "b": np.arange(2, dtype=np.int8)}, p)
    assert list(wv.load(p, names=["b"])) == ["b"]
    assert wv.load(p, names=[]) == {}
    with pytest.raises(wv.NotFoundError,
                       match="w.safetensors: no tensor named 'c'"):
        wv.load(p, names=["a", "c"])
    n = tmp_path / "w.npy"
    np.save(n, np.arange(5, dtype=np.int16))
    assert wv.load(n, names=["w"])["w"].tolist() == [0, 1, 2, 3, 4]
    for bad in ("array", "x"):
        with pytest.raises(wv.NotFoundError,
                           match=f"w.npy: no tensor named '{bad}'"):
            wv.load(n, names=[bad])


def test_names_of_a_checkout(tmp_path):
    r = wv.Repository(tmp_path / "repo", create=True)
    r.commit({"a": np.arange(3, dtype=np.float32),
              "b": np.arange(2, dtype=np.int8)})
    got = r.checkout(names=["b"])
    assert list(got) == ["b"] and got["b"].tolist() == [0, 1]
    assert r.checkout(names=[]) == {}
    assert sorted(r.checkout()) == ["a", "b"]
    with pytest.raises(wv.NotFoundError, match="no tensor 'c'"):
        r.checkout(names=["a", "c"])
    r.close()
