"""Library failures become WeightvaultError subclasses carrying the
library's status code and its own message."""
import numpy as np
import pytest

import weightvault as wv


def test_missing_file_is_not_found(tmp_path):
    with pytest.raises(wv.NotFoundError) as e:
        wv.load(tmp_path / "nope.safetensors")
    assert e.value.code == 6 and e.value.primary == 6
    assert "nope.safetensors" in e.value.message
    assert isinstance(e.value, LookupError)


def test_truncated_file_is_corrupt_with_the_library_message(tmp_path):
    path = tmp_path / "t.safetensors"
    wv.save({"w": np.arange(100, dtype=np.float32)}, path)
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(wv.CorruptError) as e:
        wv.load(path)
    assert e.value.primary == 4
    # The library's rule, with the file named (not "<memory>").
    assert "truncated" in e.value.message and str(path) in e.value.message
    assert "<memory>" not in e.value.message
    assert isinstance(e.value, wv.WeightvaultError)


def test_unknown_content_is_format_error(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"hello, this is not weights" * 10)
    with pytest.raises(wv.FormatError) as e:
        wv.load(path)
    assert e.value.code == 5 and "not a recognised weights file" in e.value.message


def test_unknown_extension_is_usage_error(tmp_path):
    with pytest.raises(wv.UsageError) as e:
        wv.save({"a": np.ones(2)}, tmp_path / "a.unknownext")
    assert "cannot tell the format" in e.value.message
    assert isinstance(e.value, ValueError)
    with pytest.raises(wv.WeightvaultError):
        wv.save({"a": np.ones(2)}, tmp_path / "a.bin", format="nosuchformat")


def test_repository_errors(tmp_path, mem_uri):
    with pytest.raises(wv.NotFoundError) as e:
        wv.load(tmp_path / "norepo@main")
    assert "norepo: no repository here (No such file or directory)" in e.value.message
    assert "create one with 'wv init" in e.value.message
    (tmp_path / "empty").mkdir()
    with pytest.raises(wv.NotFoundError) as e:
        wv.load(tmp_path / "empty@main")
    assert "not a weightvault repository" in e.value.message
    r = wv.Repository(mem_uri, create=True)
    with pytest.raises(wv.NotFoundError):
        r.checkout("latest")  # empty: main has no head yet
    cid = r.commit({"a": np.ones(2)})
    with pytest.raises(wv.NotFoundError):
        r.checkout("nosuchbranch")
    with pytest.raises(wv.NotFoundError):
        r.checkout(names=["missing"])
    r.tag("v1", cid)
    with pytest.raises(wv.ExistsError) as e:
        r.tag("v1", cid)
    assert e.value.code == 7
    with pytest.raises(wv.UsageError):
        r.tag("bad name!", cid)
    with pytest.raises(wv.ExistsError):
        wv.Repository.init(mem_uri)
    r.close()
    with pytest.raises(ValueError, match="closed"):
        r.checkout()


def test_missing_tensor_name(tmp_path):
    wv.save({"a": np.ones(2)}, tmp_path / "a.safetensors")
    with pytest.raises(wv.NotFoundError, match="'b'"):
        wv.load(tmp_path / "a.safetensors", names=["a", "b"])


def test_error_str_names_the_code():
    e = wv.errors.error(4 | (1 << 8), "bad chunk")
    assert isinstance(e, wv.CorruptError)
    assert e.code == 0x104 and e.primary == 4
    assert str(e) == "bad chunk [CORRUPT]"
    assert wv.errors.error(3).message == "I/O error"
