"""pytest setup: import the package from this source tree (python/), with
the library named by $WEIGHTVAULT_LIB (tests/cli/python.sh sets it to the
build's libweightvault.so).

Tests marked ``@pytest.mark.crypto`` (signatures, encryption) are skipped,
with the reason, when the build has no crypto (WV_WITH_CRYPTO=OFF): the
optional parts built in are those `wv --version` lists ("features: s3
hdf5 crypto") for the wv beside the library (or $WV)."""
import functools
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))

import pytest  # noqa: E402


@pytest.fixture
def mem_uri(request):
    """A fresh in-process repository URI per test."""
    return "mem://" + request.node.name.replace("[", "_").replace("]", "_")


@functools.lru_cache(maxsize=None)
def wv_features():
    """The optional parts of this build as `wv --version` lists them (a
    set), or None when there is no wv binary to ask."""
    lib = os.environ.get("WEIGHTVAULT_LIB")
    wv_bin = os.path.join(os.path.dirname(lib), "wv") if lib else ""
    if not os.path.isfile(wv_bin):
        wv_bin = os.environ.get("WV", "")
    if not os.path.isfile(wv_bin):
        return None
    # wv carries its own sanitizer runtime: not the one preloaded for Python.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    out = subprocess.run([wv_bin, "--version"], capture_output=True,
                         text=True, env=env, check=True).stdout
    for line in out.splitlines():
        if line.startswith("features:"):
            return set(line.split()[1:]) - {"none"}
    raise RuntimeError(f"{wv_bin} --version lists no features: {out!r}")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "crypto: needs a build with crypto (WV_WITH_CRYPTO=ON): "
        "signatures, encrypted repositories")


def pytest_collection_modifyitems(config, items):
    marked = [it for it in items if it.get_closest_marker("crypto")]
    feats = wv_features() if marked else None
    if feats is None or "crypto" in feats:
        return  # crypto built in, or no wv to tell (those tests need it)
    skip = pytest.mark.skip(reason="the library was built with "
                            "WV_WITH_CRYPTO=OFF (wv --version lists no "
                            "crypto): no signatures or encryption")
    for it in marked:
        it.add_marker(skip)
