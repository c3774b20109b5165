"""Every real framework fixture (tests/fixtures) reads in Python exactly
as `wv inspect --json` reads it: same names, same SHA-256 per tensor (the
elements in C order, little-endian: what the arrays hold), and the files wv
refuses are refused with the same status."""
import glob
import hashlib
import json
import os
import subprocess

import numpy as np
import pytest

import weightvault as wv

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.environ.get("WV_FIXTURES",
                          os.path.join(ROOT, "tests", "fixtures"))
WV = os.environ.get("WV")
FILES = sorted(f for f in glob.glob(os.path.join(FIXTURES, "**", "*"),
                                    recursive=True)
               if os.path.isfile(f) and not f.endswith((".json", ".md"))
               and os.path.basename(f) != "SHA256SUMS")


def test_fixtures_are_present():
    # The fixtures travel with the clone: their absence is a failure that
    # names the directory, not a silent skip.
    assert FILES, f"no fixture files under {FIXTURES} (WV_FIXTURES)"


@pytest.mark.skipif(not WV, reason="needs $WV")
@pytest.mark.parametrize("path", FILES,
                         ids=[os.path.relpath(f, FIXTURES) for f in FILES])
def test_fixture_reads_as_wv_inspect(path):
    # wv carries its own sanitizer runtime: not the one preloaded for Python.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    r = subprocess.run([WV, "inspect", "--json", path], capture_output=True,
                       text=True, env=env)
    if r.returncode != 0:
        with pytest.raises(wv.WeightvaultError):
            wv.load(path)
        return
    want = {t["name"]: t["sha256"] for t in json.loads(r.stdout)["tensors"]}
    got = wv.load(path)
    assert {k: hashlib.sha256(v.tobytes()).hexdigest()
            for k, v in got.items()} == want


def test_npy_tensor_is_named_after_the_file(tmp_path):
    wv.save({"x": np.arange(3)}, tmp_path / "weights.v2.npy")
    assert list(wv.load(tmp_path / "weights.v2.npy")) == ["weights.v2"]
