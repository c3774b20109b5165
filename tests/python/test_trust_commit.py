"""A repository that trusts signing keys refuses an unsigned commit from
Python too (the library's commit path enforces it), with an AuthError
naming --sign, and its branch does not move."""
import os
import subprocess

import numpy as np
import pytest

import weightvault as wv

pytestmark = pytest.mark.crypto  # trusted keys are signatures


def _wv_binary():
    lib = os.environ.get("WEIGHTVAULT_LIB")
    path = os.path.join(os.path.dirname(lib), "wv") if lib else ""
    if not os.path.isfile(path):
        pytest.skip("no wv binary beside $WEIGHTVAULT_LIB")
    return path


def _wv(*args, **kw):
    # wv carries its own sanitizer runtime: not the one preloaded for Python.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    return subprocess.run([_wv_binary(), *args], check=True,
                          capture_output=True, env=env, **kw)


def test_unsigned_commit_refused_when_keys_are_trusted(tmp_path):
    _wv_binary()
    uri = str(tmp_path / "vault")
    repo = wv.Repository(uri, create=True)
    first = repo.commit({"w": np.arange(6, dtype=np.float32)}, message="before")
    _wv("keygen", "-o", str(tmp_path / "alice"))
    _wv("trust", "add", uri, str(tmp_path / "alice.pub"))
    repo = wv.Repository(uri)
    with pytest.raises(wv.AuthError) as e:
        repo.commit({"w": np.ones(6, dtype=np.float32)}, message="unsigned")
    assert "--sign" in e.value.message and "trusts 1 key" in e.value.message
    log = _wv("log", uri, "--json", text=True).stdout
    assert log.count('"id"') == 1 and str(first)[:12] in log
