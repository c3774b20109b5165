"""progress= on Repository.commit, Repository.checkout and weightvault.save
(the progress fields of wv_commit_opts, wv_checkout_opts and wv_save_opts):
called with growing byte counts that end at the total of tensor data; an
exception raised by the callback is re-raised once the call is over, and
the work itself is done."""
import numpy as np
import pytest

import weightvault as wv


def _arrays():
    rng = np.random.default_rng(1)
    return {"a": rng.standard_normal(200_000).astype(np.float32),
            "b": np.arange(1000, dtype=np.int64)}


def _check(calls, total):
    assert calls, "progress was never called"
    assert all(t == total for _, t in calls)
    done = [d for d, _ in calls]
    assert done == sorted(done)
    assert all(d <= total for d in done), (done[-3:], total)
    assert done[-1] == total, (done[-3:], total)


def test_commit_and_checkout_progress(tmp_path):
    arrays = _arrays()
    total = sum(a.nbytes for a in arrays.values())
    with wv.Repository(tmp_path / "r", create=True, chunk_size=65536) as r:
        calls = []
        cid = r.commit(arrays, progress=lambda d, t: calls.append((d, t)))
        _check(calls, total)
        calls = []
        got = r.checkout(cid, progress=lambda d, t: calls.append((d, t)))
        _check(calls, total)
        assert np.array_equal(got["a"], arrays["a"])

        def boom(d, t):
            raise KeyboardInterrupt("stop")
        with pytest.raises(KeyboardInterrupt):
            r.commit({"c": np.ones(4)}, progress=boom)
        assert "c" in r.checkout("latest")  # committed all the same
        with pytest.raises(KeyboardInterrupt):
            r.checkout(cid, progress=boom)


def test_save_progress(tmp_path):
    arrays = _arrays()
    total = sum(a.nbytes for a in arrays.values())
    calls = []
    p = wv.save(arrays, tmp_path / "m.safetensors",
                progress=lambda d, t: calls.append((d, t)))
    # the tensor data alone (not its header): ends at the total, not past it
    _check(calls, total)
    assert np.array_equal(wv.load(p)["b"], arrays["b"])
    # formats whose headers are counted too stop at the total
    for name in ("m.pth", "m.npz", "m.gguf"):
        calls = []
        wv.save(arrays, tmp_path / name,
                progress=lambda d, t: calls.append((d, t)))
        _check(calls, total)
    calls = []
    wv.save(arrays, tmp_path / "half.safetensors", cast="F16",
            progress=lambda d, t: calls.append((d, t)))
    _check(calls, 200_000 * 2 + arrays["b"].nbytes)
    calls = []
    wv.save(arrays, str(tmp_path / "repo") + "@main",
            progress=lambda d, t: calls.append((d, t)))
    _check(calls, total)
