"""wv_load_opts from Python.

max_expand (the library's amplification bound): a compressed .npz whose
tensors are ~10x its size loads by default (64x), is refused with
max_expand=2 (UsageError naming the file) and loads again with a generous
bound; the binding checks the value's type and range itself.

names with a Hugging Face shard index: only the tensors asked for come
back, from whichever shard holds them, and a missing one is NotFoundError
(the binding does not hand names to wv_load_opts.names here: the library
then asks every shard for every name)."""
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
    got = wv.load(idx, names=["b"])
    assert list(got) == ["b"] and got["b"].tolist() == [0, 1, 2, 3]
    with pytest.raises(wv.NotFoundError, match="nope"):
        wv.load(idx, names=["b", "nope"])
