"""Repository.read_tensor: a byte range of one tensor of a checkpoint,
read without checking the checkpoint out (wv_repo_read_tensor), equal to
the same bytes of a checkout, across chunk boundaries; a range past the end
and an unknown tensor are refused with the library's message."""
import numpy as np
import pytest

import weightvault as wv


def test_read_tensor_ranges(tmp_path):
    r = wv.Repository(tmp_path / "r", create=True, chunk_size=65536)
    rng = np.random.default_rng(3)
    a = rng.standard_normal(300_000).astype(np.float32)  # > 1 chunk
    r.commit({"a": a, "b": np.arange(5, dtype=np.int64)}, message="one")
    raw = a.tobytes()
    n = len(raw)
    for off, ln in [(0, 0), (0, n), (1, 7), (n - 3, 3), (65_530, 20), (65_536, 65_536),
                    (n // 2, n // 3)]:
        assert r.read_tensor("latest", "a", off, ln) == raw[off:off + ln]
    got = np.frombuffer(r.read_tensor("latest", "b", 8, 16), dtype="<i8")
    assert list(got) == [1, 2]
    with pytest.raises(wv.UsageError) as e:
        r.read_tensor("latest", "a", n - 1, 2)
    assert "past the end of tensor 'a'" in str(e.value)
    with pytest.raises(wv.NotFoundError) as e:
        r.read_tensor("latest", "nope", 0, 1)
    assert "no tensor 'nope'" in str(e.value)
    r.close()


def test_read_tensor_checks_the_range_before_allocating(tmp_path):
    """A huge length is refused from the manifest's size, naming the tensor
    and its size, before a buffer of that length is asked for (it would be
    a MemoryError, or exabytes of swap, otherwise)."""
    r = wv.Repository(tmp_path / "r", create=True)
    r.commit({"w": np.arange(10, dtype=np.float32)})
    for off, ln in [(0, 1 << 62), (8, (1 << 64) - 1), (41, 0), (1 << 63, 1)]:
        with pytest.raises(ValueError) as e:
            r.read_tensor("latest", "w", off, ln)
        assert isinstance(e.value, wv.UsageError)
        assert "past the end of tensor 'w' (40 bytes)" in str(e.value)
    assert r.read_tensor("main", "w", 36, 4) == np.float32(9).tobytes()
    assert r.read_tensor("main", "w", 40, 0) == b""
    with pytest.raises(wv.NotFoundError, match="no tensor 'nope\\\\n'"):
        r.read_tensor("latest", "nope\n", 0, 1 << 62)
    r.close()
