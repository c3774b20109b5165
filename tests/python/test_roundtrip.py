"""Round trips: every torch 1.13 dtype, NumPy dicts, nn.Module, metadata,
through files of several formats and through repositories."""
import numpy as np
import pytest
import torch

import weightvault as wv

TORCH_DTYPES = [torch.float16, torch.float32, torch.float64, torch.bfloat16,
                torch.int8, torch.int16, torch.int32, torch.int64,
                torch.uint8, torch.bool, torch.complex64]


def sample(dtype, shape=(3, 5), seed=0):
    """Values that use the whole range of the dtype (bit patterns for
    floats, including NaN/inf/subnormals), so any bit lost shows."""
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    if dtype == torch.complex64:
        return torch.randn(shape, generator=g, dtype=torch.complex64)
    if dtype.is_floating_point:
        bits = {torch.float16: torch.int16, torch.bfloat16: torch.int16,
                torch.float32: torch.int32, torch.float64: torch.int64}[dtype]
        info = torch.iinfo(bits)
        return torch.randint(info.min, info.max, shape, generator=g,
                             dtype=bits).view(dtype)
    info = torch.iinfo(dtype)
    return torch.randint(info.min, info.max, shape, generator=g, dtype=dtype)


def same(a, b):
    """Bitwise equality of two torch tensors (NaN payloads included)."""
    assert a.dtype == b.dtype and a.shape == b.shape
    if a.dtype.is_floating_point or a.dtype.is_complex:
        width = {2: torch.int16, 4: torch.int32, 8: torch.int64}
        if a.dtype.is_complex:
            a, b = torch.view_as_real(a), torch.view_as_real(b)
        w = width[a.element_size()]
        return torch.equal(a.contiguous().view(w), b.contiguous().view(w))
    return torch.equal(a, b)


@pytest.mark.parametrize("fmt", ["safetensors", "pth", "repo"])
@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=str)
def test_torch_dtype_round_trip(tmp_path, mem_uri, dtype, fmt):
    sd = {"w": sample(dtype), "scalar": sample(dtype, ()),
          "empty": sample(dtype, (0, 4)), "v": sample(dtype, (7,), seed=1)}
    target = mem_uri + "@main" if fmt == "repo" else tmp_path / f"m.{fmt}"
    wv.save(sd, target)
    back = wv.load(target if fmt != "repo" else mem_uri + "@latest",
                   framework="torch")
    assert list(back) == list(sd) or sorted(back) == sorted(sd)
    for k in sd:
        assert same(sd[k], back[k]), k


NUMPY_DTYPES = [np.bool_, np.uint8, np.int8, np.uint16, np.int16, np.uint32,
                np.int32, np.uint64, np.int64, np.float16, np.float32,
                np.float64, np.complex64]


@pytest.mark.parametrize("fmt", ["safetensors", "npz", "repo"])
def test_numpy_dict_round_trip(tmp_path, mem_uri, fmt):
    rng = np.random.default_rng(1)
    arrays = {}
    for dt in NUMPY_DTYPES:
        raw = rng.integers(0, 256, size=6 * np.dtype(dt).itemsize,
                           dtype=np.uint8)
        a = raw.view(dt).reshape(2, 3) if dt is not np.bool_ else raw < 128
        arrays[np.dtype(dt).name] = a
    arrays["fortran"] = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    arrays["big_endian"] = np.arange(5, dtype=">i4")
    arrays["strided"] = np.arange(20, dtype=np.int16)[::3]
    # 0-d arrays (a step counter) stay 0-d, also big-endian ones
    arrays["scalar"] = np.array(1234, dtype=np.int64)
    arrays["scalar_be"] = np.array(2.5, dtype=">f8")
    target = mem_uri + "@main" if fmt == "repo" else tmp_path / f"m.{fmt}"
    wv.save(arrays, target)
    back = wv.load(target)
    assert sorted(back) == sorted(arrays)
    for k, a in arrays.items():
        b = back[k]
        assert b.dtype == a.dtype.newbyteorder("<") or b.dtype == a.dtype, k
        assert b.shape == a.shape, k
        assert a.tobytes() == b.astype(a.dtype).tobytes(), k


def test_module_and_metadata(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8),
                                torch.nn.Linear(8, 2))
    model(torch.randn(5, 4))  # moves the BatchNorm running stats
    path = tmp_path / "m.safetensors"
    wv.save(model, path, metadata={"epoch": 3, "note": "héllo", "cfg": {"a": [1, 2]}})
    back = wv.load(path, framework="torch")
    assert back.metadata["epoch"] == "3"
    assert back.metadata["note"] == "héllo"
    assert back.metadata["cfg"] == '{"a": [1, 2]}'
    assert back.format == "safetensors"
    fresh = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8),
                                torch.nn.Linear(8, 2))
    fresh.load_state_dict(back)
    for k, v in model.state_dict().items():
        assert same(v, fresh.state_dict()[k]), k


def test_non_contiguous_and_views_are_saved_by_value(tmp_path):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    sd = {"t": base.t(), "slice": base[1:3, 2:5], "conj":
          torch.tensor([1 + 2j, 3 - 4j], dtype=torch.complex64).conj(),
          "neg": torch.tensor([1.0, -2.0])._neg_view()}
    wv.save(sd, tmp_path / "v.safetensors")
    back = wv.load(tmp_path / "v.safetensors", framework="torch")
    for k, v in sd.items():
        assert torch.equal(back[k], v.resolve_conj().resolve_neg()), k


def test_bf16_in_numpy_is_its_bits(tmp_path):
    t = torch.tensor([1.0, -2.5, float("inf")], dtype=torch.bfloat16)
    wv.save({"b": t}, tmp_path / "b.safetensors")
    back = wv.load(tmp_path / "b.safetensors")
    assert back.dtypes["b"] == "BF16"
    assert back["b"].dtype == np.uint16
    assert back["b"].tobytes() == t.view(torch.int16).numpy().tobytes()


def test_loaded_raw_bits_keep_their_dtype(tmp_path, mem_uri):
    """A set weightvault.load made with NumPy holds BF16 and FP8 as their
    bits (uint16, uint8) and block-quantised GGUF tensors as uint8 blocks:
    saved or committed again as it is, each keeps its recorded dtype (and
    a block tensor its shape in elements); a value replaced since keeps
    its own dtype."""
    t = torch.tensor([1.0, -2.5, float("inf"), 3e-3], dtype=torch.bfloat16)
    wv.save({"b": t, "f": np.arange(4, dtype=np.float32)},
            tmp_path / "b.safetensors")
    back = wv.load(tmp_path / "b.safetensors")
    wv.save(back, tmp_path / "b2.safetensors")
    wv.save(back, mem_uri + "@main")
    for src in (tmp_path / "b2.safetensors", mem_uri):
        again = wv.load(src)
        assert again.dtypes == {"b": "BF16", "f": "F32"}, src
        assert again["b"].tobytes() == t.view(torch.int16).numpy().tobytes()
        tt = wv.load(src, framework="torch")
        assert tt["b"].dtype == torch.bfloat16
        assert torch.equal(tt["b"].view(torch.int16), t.view(torch.int16))
    back["b"] = np.zeros(4, np.uint16)  # still uint16: still BF16 bits
    back["f"] = np.zeros(4, np.int32)   # replaced: its own dtype
    wv.save(back, tmp_path / "b3.safetensors")
    assert wv.load(tmp_path / "b3.safetensors").dtypes == {"b": "BF16",
                                                           "f": "I32"}
    # Q8_0: blocks of 32 elements in 34 bytes; 2 rows of 64 elements
    blocks = np.arange(2 * 2 * 34, dtype=np.uint8).reshape(2, 68)
    q = wv.Tensors({"q": blocks})
    q.dtypes = {"q": "Q8_0"}
    wv.save(q, tmp_path / "q.gguf")
    wv.save(q, mem_uri + "@q")
    for src in (tmp_path / "q.gguf", mem_uri + "@q"):
        qb = wv.load(src)
        assert qb.dtypes == {"q": "Q8_0"}, src
        assert qb["q"].shape == (2, 68)
        assert qb["q"].tobytes() == blocks.tobytes()


def test_names_selects_tensors(tmp_path, mem_uri):
    sd = {f"t{i}": np.full(3, i, np.int32) for i in range(5)}
    wv.save(sd, tmp_path / "s.safetensors")
    wv.save(sd, mem_uri + "@main")
    for src in (tmp_path / "s.safetensors", mem_uri):
        back = wv.load(src, names=["t3", "t1"])
        assert sorted(back) == ["t1", "t3"]
        assert back["t3"].tolist() == [3, 3, 3]


def test_repository_branches_refs_and_history(mem_uri):
    r = wv.Repository(mem_uri, create=True)
    ids = [r.commit({"w": np.full(4, i, np.float32)}, metadata={"step": i},
                    message=f"c{i}") for i in range(3)]
    other = r.commit({"w": np.zeros(2, np.float32)}, "exp")
    assert r.branches() == {"main": ids[-1], "exp": other}
    r.tag("v1", ids[1][:10])
    assert r.tags() == {"v1": ids[1]}
    assert [s["id"] for s in r.log("main")] == ids[::-1]
    assert r.stat(ids[0])["metadata"]["step"] == "0"
    assert r.checkout("v1")["w"].tolist() == [1, 1, 1, 1]
    assert wv.load(mem_uri + "@exp")["w"].shape == (2,)
    r.close()


def test_save_to_existing_directory_repository(tmp_path):
    wv.Repository.init(tmp_path / "ck", compression="zstd")
    cid = wv.save({"a": np.ones(3)}, tmp_path / "ck")
    assert wv.load(tmp_path / "ck").checkpoint == cid
    # '@' creates one; a weights-file extension after '@' stays a file.
    wv.save({"a": np.ones(3)}, tmp_path / "new@main")
    wv.save({"a": np.ones(3)}, tmp_path / "w@2.safetensors")
    assert (tmp_path / "new" / "config").exists()
    assert (tmp_path / "w@2.safetensors").is_file()


def test_format_argument_and_cast(tmp_path):
    sd = {"x": torch.tensor([1.0, 2.0, 3.0])}
    wv.save(sd, tmp_path / "weights.bin", format="npz")
    assert wv.load(tmp_path / "weights.bin").format == "npz"
    wv.save(sd, tmp_path / "h.safetensors", cast="BF16")
    back = wv.load(tmp_path / "h.safetensors", framework="torch")
    assert back["x"].dtype == torch.bfloat16
    assert back["x"].tolist() == [1.0, 2.0, 3.0]


def test_loaded_arrays_are_writable_private_copies_on_write(tmp_path):
    path = tmp_path / "w.safetensors"
    wv.save({"w": np.arange(4, dtype=np.float32)}, path)
    before = path.read_bytes()
    t = wv.load(path, framework="torch")["w"]
    t.mul_(10)  # in place: a private copy-on-write page, not the file
    assert t.tolist() == [0, 10, 20, 30]
    assert path.read_bytes() == before
    assert wv.load(path)["w"].tolist() == [0, 1, 2, 3]


def test_unsupported_dtypes_raise_type_error(tmp_path):
    with pytest.raises(TypeError, match="complex128"):
        wv.save({"c": torch.zeros(2, dtype=torch.complex128)},
                tmp_path / "c.safetensors")
    with pytest.raises(TypeError, match="object"):
        wv.save({"o": np.array([None, 1])}, tmp_path / "o.safetensors")
    with pytest.raises(TypeError, match="not a torch tensor"):
        wv.save({"l": [1, 2]}, tmp_path / "l.safetensors")
    assert not (tmp_path / "c.safetensors").exists()


def test_unsigned_types_torch_lacks(tmp_path):
    wv.save({"u16": np.array([65535], np.uint16),
             "u32": np.array([4294967295], np.uint32),
             "u64": np.array([1], np.uint64)}, tmp_path / "u.safetensors")
    back = wv.load(tmp_path / "u.safetensors", framework="torch",
                   names=["u16", "u32"])
    assert back["u16"].dtype == torch.int32 and back["u16"].item() == 65535
    assert back["u32"].dtype == torch.int64 and back["u32"].item() == 4294967295
    with pytest.raises(TypeError, match="uint64"):
        wv.load(tmp_path / "u.safetensors", framework="torch")
