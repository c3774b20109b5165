"""weightvault.load_into: a file's tensors copied into arrays and tensors
that already exist (wv_model_read_all), checked before anything is written."""
import numpy as np
import pytest
import torch

import weightvault as wv

from test_roundtrip import TORCH_DTYPES, sample, same


def arrays():
    g = np.random.default_rng(7)
    return {"w": g.standard_normal((64, 33)).astype(np.float32),
            "b": g.standard_normal(33).astype(np.float16),
            "step": np.array(1234, dtype=np.int64),
            "empty": np.zeros((0, 4), np.float32),
            "big": g.standard_normal(3 << 20).astype(np.float32)}


def test_numpy_dict(tmp_path):
    src = arrays()
    path = wv.save(src, tmp_path / "a.safetensors")
    dst = {k: np.full_like(v, 7) for k, v in src.items()}
    addr = {k: v.ctypes.data for k, v in dst.items()}
    res = wv.load_into(path, dst)
    assert res == {"tensors": 5,
                   "bytes": sum(v.nbytes for v in src.values())}
    for k in src:
        assert dst[k].ctypes.data == addr[k]  # in place
        assert np.array_equal(dst[k], src[k])


@pytest.mark.parametrize("fmt", ["safetensors", "pth", "gguf"])
def test_every_torch_dtype(tmp_path, fmt):
    dts = TORCH_DTYPES if fmt != "gguf" else [torch.float32, torch.float16,
                                              torch.int32]
    src = {f"t{i}": sample(d, (5, 7), seed=i) for i, d in enumerate(dts)}
    path = wv.save(src, tmp_path / f"x.{fmt}")
    dst = {k: torch.zeros_like(v) for k, v in src.items()}
    wv.load_into(path, dst)
    for k in src:
        assert same(dst[k], src[k]), k


def test_module_in_place(tmp_path):
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16),
                            torch.nn.Linear(16, 3))
    a(torch.randn(4, 8))  # moves the BatchNorm running statistics
    path = wv.save(a, tmp_path / "m.safetensors")
    torch.manual_seed(1)
    b = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16),
                            torch.nn.Linear(16, 3))
    params = {n: p.data_ptr() for n, p in b.state_dict().items()}
    res = wv.load_into(path, b)
    assert res["tensors"] == len(a.state_dict())
    for n, v in b.state_dict().items():
        assert v.data_ptr() == params[n]
        assert same(v, a.state_dict()[n]), n
    x = torch.randn(5, 8)
    a.eval(), b.eval()
    assert torch.equal(a(x), b(x))


def test_bf16_bits_into_numpy(tmp_path):
    t = sample(torch.bfloat16, (9,))
    path = wv.save({"h": t}, tmp_path / "h.safetensors")
    dst = {"h": np.zeros(9, np.uint16)}
    wv.load_into(path, dst)
    assert np.array_equal(dst["h"], t.view(torch.int16).numpy().view(np.uint16))
    with pytest.raises(ValueError, match="BF16"):
        wv.load_into(path, {"h": np.zeros(9, np.float32)})


def test_checked_before_anything_is_written(tmp_path):
    src = arrays()
    path = wv.save(src, tmp_path / "a.safetensors")

    def fresh():
        return {k: np.full_like(v, 7) for k, v in src.items()}

    def untouched(d):
        return all((d[k] == 7).all() for k in src if k in d)

    d = fresh()
    del d["b"]
    with pytest.raises(wv.NotFoundError, match="'b' has no destination"):
        wv.load_into(path, d)
    assert untouched(d)
    d = fresh()
    d["extra"] = np.zeros(3, np.float32)
    with pytest.raises(wv.NotFoundError, match="no tensor named 'extra'"):
        wv.load_into(path, d)
    assert untouched(d)
    d = fresh()
    d["w"] = np.full((33, 64), 7, np.float32)  # same bytes, other shape
    with pytest.raises(ValueError, match=r"'w' is F32 \[64, 33\]"):
        wv.load_into(path, d)
    assert untouched(d)
    d = fresh()
    d["step"] = np.zeros((), np.int32)
    with pytest.raises(ValueError, match="'step'"):
        wv.load_into(path, d)
    d = fresh()
    d["w"] = np.zeros((33, 64), np.float32).T  # not C-contiguous
    with pytest.raises(TypeError, match="C-contiguous"):
        wv.load_into(path, d)
    d = fresh()
    d["b"].flags.writeable = False
    with pytest.raises(TypeError, match="writable"):
        wv.load_into(path, d)
    d = fresh()
    d["w"] = torch.zeros(33, 64).t()
    with pytest.raises(TypeError, match="contiguous CPU tensor"):
        wv.load_into(path, d)
    d = fresh()
    d["w"] = [0.0] * 10
    with pytest.raises(TypeError, match="list"):
        wv.load_into(path, d)
    assert untouched({k: v for k, v in d.items() if k != "w"})
    assert untouched(fresh())  # the helper itself sees a change:
    d = fresh()
    d["b"][0] = 0
    assert not untouched(d)
    with pytest.raises(TypeError, match="state_dict"):
        wv.load_into(path, [1, 2])


def test_not_strict_copies_what_both_have(tmp_path):
    src = arrays()
    path = wv.save(src, tmp_path / "a.safetensors")
    d = {"w": np.zeros_like(src["w"]), "other": np.ones(4, np.float32)}
    res = wv.load_into(path, d, strict=False)
    assert res == {"tensors": 1, "bytes": src["w"].nbytes}
    assert np.array_equal(d["w"], src["w"])
    assert (d["other"] == 1).all()


def test_errors_name_the_file(tmp_path):
    with pytest.raises(wv.NotFoundError, match="nope.safetensors"):
        wv.load_into(tmp_path / "nope.safetensors", {})
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    with pytest.raises(wv.CorruptError, match="bad.safetensors"):
        wv.load_into(bad, {})
    wv.Repository(tmp_path / "r", create=True).close()
    with pytest.raises(ValueError, match="Repository.checkout"):
        wv.load_into(str(tmp_path / "r") + "@main", {})
