"""pytest setup: import the package from this source tree (python/), with
the library named by $WEIGHTVAULT_LIB (tests/cli/python.sh sets it to the
build's libweightvault.so)."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))

import pytest  # noqa: E402


@pytest.fixture
def mem_uri(request):
    """A fresh in-process repository URI per test."""
    return "mem://" + request.node.name.replace("[", "_").replace("]", "_")
