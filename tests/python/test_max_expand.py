"""weightvault.load(max_expand=N): the library's amplification bound
(wv_load_opts.max_expand) from Python. A compressed .npz whose tensors
are ~10x its size loads by default (64x), is refused with max_expand=2
(UsageError naming the file) and loads again with a generous bound; the
binding checks the value's type and range itself."""
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
