"""pytest setup: import the package from this source tree (python/), with
the library named by $WEIGHTVAULT_LIB (tests/cli/python.sh sets it to the
build's libweightvault.so).

Tests marked ``@pytest.mark.crypto`` (signatures, encryption) are skipped,
with the reason, when the build has no crypto (WV_WITH_CRYPTO=OFF): the
optional parts built in are those `wv --version` lists ("features: s3
hdf5 crypto") for the wv beside the library (or $WV)."""
import contextlib
import functools
import os
import subprocess
import sys
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))

import pytest  # noqa: E402


@pytest.fixture
def mem_uri(request):
    """A fresh in-process repository URI per test."""
    return "mem://" + request.node.name.replace("[", "_").replace("]", "_")


needs_s3 = pytest.mark.skipif(
    not os.environ.get("AWS_ENDPOINT_URL"),
    reason="needs an S3 endpoint ($AWS_ENDPOINT_URL and credentials: the "
    "Ceph test environment)")


@contextlib.contextmanager
def s3_bucket(prefix):
    """A fresh bucket name, PREFIX-<12 hex digits>; the bucket and what it
    holds are removed afterwards (best effort: the shared test cluster
    keeps data in memory)."""
    bucket = f"{prefix}-{uuid.uuid4().hex[:12]}"
    try:
        yield bucket
    finally:
        try:
            subprocess.run(["aws", "--endpoint-url",
                            os.environ["AWS_ENDPOINT_URL"], "s3", "rb",
                            f"s3://{bucket}", "--force"],
                           capture_output=True, timeout=120)
        except (OSError, subprocess.SubprocessError):
            pass


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
