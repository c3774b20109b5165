"""A TF.js model is a directory: weightvault.save to "DIR/" or to an
existing directory writes DIR/model.json and its .bin shards (the library's
save does it, as for wv convert), making DIR if missing (one level)."""
import os

import numpy as np
import pytest

import weightvault as wv

SET = {"w": np.arange(6, dtype=np.float32).reshape(2, 3),
       "n": np.array([3, -1, 7], dtype=np.int32)}


def check(d):
    assert sorted(os.listdir(d)) == ["group1-shard1of1.bin", "model.json"]
    t = wv.load(os.path.join(d, "model.json"))
    assert sorted(t) == sorted(SET)
    for k, v in SET.items():
        got = np.asarray(t[k])
        assert got.dtype == v.dtype and np.array_equal(got, v), k


def test_trailing_slash_makes_the_directory(tmp_path):
    out = str(tmp_path / "webm") + "/"
    assert not os.path.exists(out)
    assert wv.save(SET, out) == out
    check(out)
    # again, over the same directory: rewritten in place
    wv.save(SET, out)
    check(out)


def test_existing_directory(tmp_path):
    d = tmp_path / "existing.safetensors"  # the directory wins over the name
    d.mkdir()
    wv.save(SET, d)
    check(d)
    assert wv.load(d / "model.json", names=["w"])["w"].shape == (2, 3)


def test_model_json_path_makes_its_directory(tmp_path):
    d = tmp_path / "byname"
    wv.save(SET, d / "model.json")
    check(d)


def test_format_tfjs_and_a_directory(tmp_path):
    out = str(tmp_path / "named") + "/"
    wv.save(SET, out, format="tfjs")
    check(out)


def test_only_one_level_is_made(tmp_path):
    out = str(tmp_path / "a" / "b") + "/"
    with pytest.raises(wv.WeightvaultIOError) as e:
        wv.save(SET, out)
    assert "cannot make the directory" in e.value.message
    assert os.fspath(tmp_path / "a" / "b") in e.value.message
    assert not os.path.exists(tmp_path / "a")


def test_other_formats_are_not_directories(tmp_path):
    # a trailing '/' with another format named is that format's own path
    with pytest.raises(wv.WeightvaultError):
        wv.save(SET, str(tmp_path / "x") + "/", format="safetensors")
    assert not os.path.exists(tmp_path / "x")
