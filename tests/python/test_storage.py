"""Repository.storage() and delta_keyframe= against what the library stores."""
import numpy as np
import pytest

import weightvault as wv


def _weights(seed, n=1 << 18):
    rng = np.random.default_rng(seed)
    return {"w": rng.standard_normal(n).astype(np.float32),
            "b": np.arange(1024, dtype=np.float32)}


def test_storage_counts_new_chunks_and_codecs(tmp_path):
    with wv.Repository(tmp_path / "r", create=True, chunk_size=1 << 16) as r:
        a = _weights(1)
        r.commit(a, "main")
        s1 = r.storage("main")
        assert s1["raw_bytes"] == a["w"].nbytes + a["b"].nbytes
        assert s1["new_raw_bytes"] == s1["raw_bytes"]
        assert s1["new_chunks"] == s1["chunks"] > 1
        assert 0 < s1["stored_bytes"] <= s1["raw_bytes"]
        assert sum(s1["new_by_codec"].values()) == s1["new_chunks"]
        assert (sum(s1["new_stored_by_codec"].values())
                == s1["new_stored_bytes"])
        assert s1["new_by_codec"]["xor-bg-zstd"] == 0
        assert s1["max_chain"] == 0
        # only b changes: its one chunk is new, w's are shared
        a["b"] = a["b"] + 1
        r.commit(a, "main")
        s2 = r.storage("latest")
        assert s2["chunks"] == s1["chunks"]
        assert s2["new_chunks"] == 1
        assert s2["new_raw_bytes"] == a["b"].nbytes
        with pytest.raises(wv.NotFoundError):
            r.storage("no-such-ref")


def test_delta_keyframe_stores_deltas_and_reads_back(tmp_path):
    with wv.Repository(tmp_path / "d", create=True, chunk_size=1 << 16,
                       delta_keyframe=3) as r:
        w = _weights(2)
        steps = []
        for i in range(4):
            w["w"] = (w["w"] + np.float32(1e-4) *
                      np.random.default_rng(10 + i).standard_normal(
                          w["w"].size).astype(np.float32))
            steps.append(r.commit(w, "main"))
            want = w["w"].copy()
        st = r.storage(steps[1])
        # the second commit's changed chunks are deltas against the first
        assert st["new_by_codec"]["xor-bg-zstd"] > 0
        assert st["max_chain"] == 1
        assert r.storage(steps[3])["max_chain"] <= 2  # keyframe every 3
        got = r.checkout("latest")
        assert np.array_equal(got["w"], want)
    with wv.Repository(tmp_path / "p", create=True, chunk_size=1 << 16) as r:
        r.commit(_weights(2), "main")
        r.commit(_weights(3), "main")
        assert r.storage()["new_by_codec"]["xor-bg-zstd"] == 0
