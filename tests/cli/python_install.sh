#!/usr/bin/env bash
# python_install.sh -- the Python package works after `pip install`, as a
# user gets it: a fresh venv in a temporary directory, `pip install
# --no-index ./python` (the in-tree build backend: nothing downloaded), then,
# from a directory outside the source tree and with no WEIGHTVAULT_LIB,
# LD_LIBRARY_PATH or PYTHONPATH:
#   - the package and the library it loads are the venv's own copies;
#   - a tensor set (numpy, several dtypes) saved and loaded through a file
#     and a repository comes back bit for bit;
#   - the Python snippet of README.md's "## Python" section runs in order
#     (with a small torch model, optimizer and train_step defined first; its
#     s3:// push goes to a local directory instead), so the Checkpointer
#     restores the commit that wv.save(model, "./ckpts@main") made;
#   - `pip wheel` gives a py3-none-<platform> wheel holding
#     weightvault/libweightvault.so, every RECORD hash right;
#   - an install without the library (WEIGHTVAULT_BUNDLE=0) loads an
#     installed libweightvault.so.0 (here: in the venv's prefix).
# The library bundled is the one of this build (WEIGHTVAULT_BUILD_LIB);
# a release build also lets the backend run cmake itself for a second
# wheel, installed and checked the same way: its `cmake --build --target
# weightvault` in this build's directory (WEIGHTVAULT_BUILD_DIR), where the
# library is up to date, so nothing is compiled again. The other python3 on PATH (pyenv's, when there is one; Debian's numpy
# lent to its venv, as pip would install numpy online) installs the package
# from the tree too (the backend running under it) and checks the tensor set.
#
# In a sanitizer build the library needs the ASan runtime preloaded into the
# Python that loads it (as tests/cli/python.sh does).
#
# Env: WV (the wv binary; its directory holds libweightvault.so),
#      PYTHON (Debian's /usr/bin/python3: numpy, torch, venv).
set -u
. "$(dirname "$0")/../harness/cli.sh"
fail_fast=1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
lib=$(cd "$(dirname "$WV")" && pwd)/libweightvault.so
[ -f "$lib" ] || { echo "python_install.sh: $lib not found" >&2; exit 1; }
"$PYTHON" -c 'import venv, ensurepip, numpy, torch' || {
    echo "python_install.sh: $PYTHON lacks venv/ensurepip/numpy/torch" \
         "(bash scripts/deps.sh check: python3-venv python3-torch)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset WEIGHTVAULT_LIB WEIGHTVAULT_BUILD_DIR WEIGHTVAULT_BUNDLE LD_LIBRARY_PATH \
      PYTHONPATH PIP_FIND_LINKS PIP_INDEX_URL
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1

preload=
sanitized=0
if nm -D --undefined-only "$lib" 2>/dev/null | grep -q ' __asan_init'; then
    sanitized=1
    rt=$(ldd "$lib" | awk '/libasan\.so/ {print $3; exit}')
    [ -n "$rt" ] || rt=$(clang -print-file-name=libclang_rt.asan-x86_64.so 2>/dev/null)
    [ -f "$rt" ] || { echo "python_install.sh: ASan build but no ASan runtime" >&2; exit 1; }
    preload=$rt
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:abort_on_error=1
fi
# run_py VENV ARGS...: the venv's python, from $tmp/work, the library's
# sanitizer runtime preloaded if it has one.
run_py() {
    local v=$1; shift
    (cd "$tmp/work" && LD_PRELOAD=${preload:-${LD_PRELOAD:-}} "$v/bin/python" "$@")
}
mkdir -p "$tmp/work" "$tmp/wheels"

# -- the package a user checks and save/load ---------------------------------
cat >"$tmp/roundtrip.py" <<'EOF'
import os, sys
import numpy as np
import weightvault as wv
venv = os.path.realpath(sys.argv[1])
pkg = os.path.realpath(os.path.dirname(wv.__file__))
assert pkg.startswith(venv + os.sep), f"weightvault imported from {pkg}, not the venv"
path = os.path.realpath(wv.library_path())
assert path == os.path.join(pkg, "libweightvault.so"), f"library loaded from {path}"
assert wv.library_version() == wv.__version__, (wv.library_version(), wv.__version__)
rng = np.random.default_rng(7)
ts = {"w": rng.standard_normal((5, 3)).astype(np.float32),
      "b": rng.standard_normal(3).astype(np.float64),
      "h": rng.standard_normal((2, 2)).astype(np.float16),
      "i": np.arange(-4, 8, dtype=np.int64).reshape(3, 4),
      "u": np.arange(10, dtype=np.uint8),
      "m": np.array([True, False, True])}
def same(got):
    assert set(got) == set(ts), list(got)
    for k, a in ts.items():
        g = np.asarray(got[k])
        assert g.dtype == a.dtype and g.shape == a.shape, (k, g.dtype, g.shape)
        assert g.tobytes() == a.tobytes(), k
for f in ("set.safetensors", "set.npz"):
    wv.save(ts, f, **({"metadata": {"who": "venv"}} if f.endswith("tensors") else {}))
    got = wv.load(f)
    same(got)
    if f.endswith("tensors"):
        assert got.metadata.get("who") == "venv", got.metadata
cid = wv.save(ts, "./repo@main", message="from a venv")
assert len(cid) == 64
same(wv.load("./repo@latest"))
print("roundtrip ok:", path)
EOF

# -- Debian's python: install from the source tree ---------------------------
deb=$tmp/deb
"$PYTHON" -m venv --system-site-packages "$deb" || fail "venv with $PYTHON"
(cd "$tmp" && WEIGHTVAULT_BUILD_LIB=$lib "$deb/bin/pip" install --no-index \
    --no-cache-dir "$root/python") >"$tmp/pip.log" 2>&1 ||
    { cat "$tmp/pip.log"; fail "pip install --no-index $root/python"; }
run_py "$deb" "$tmp/roundtrip.py" "$deb" || fail "save/load from the Debian venv"

# -- README.md's Python snippet, in order --------------------------------------
"$PYTHON" - "$root/README.md" "$tmp/readme.py" <<'EOF' || fail "README snippet"
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
sec = re.search(r"^## Python\n(.*?)(?=^## )", text, re.S | re.M)
assert sec, "README.md has no '## Python' section"
code = re.search(r"^```python\n(.*?)^```", sec.group(1), re.S | re.M)
assert code, "README.md's Python section has no ```python block"
snippet = code.group(1).replace('"s3://team/run1"', '"./pushed-run1"')
prelude = '''import torch
torch.manual_seed(0)
model = torch.nn.Sequential()
model.add_module("fc", torch.nn.Linear(4, 3))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
steps = 7
def train_step():
    optimizer.zero_grad()
    loss = model(torch.randn(8, 4)).pow(2).mean()
    loss.backward()
    optimizer.step()
    return loss.item()
'''
check = '''
# after the snippet: restore_latest found wv.save's plain commit (0, not
# None: it restored it; tests/python/test_checkpointer.py checks the values)
assert start == 0, start
assert list(sd) == ["fc.weight"], list(sd)
print("README snippet ok: restored", cid[:12], "step", start)
'''
open(sys.argv[2], "w").write(prelude + snippet + check)
EOF
run_py "$deb" "$tmp/readme.py" || fail "README.md's Python snippet in a venv"
# The Checkpointer's own commits after a plain one: every=1 saves each step.
sed 's/every=100/every=1/' "$tmp/readme.py" >"$tmp/readme1.py"
rm -rf "$tmp/work/ckpts" "$tmp/work/pushed-run1"
run_py "$deb" "$tmp/readme1.py" || fail "README snippet with every=1"
run_py "$deb" -c '
import weightvault as wv, torch
model = torch.nn.Sequential(); model.add_module("fc", torch.nn.Linear(4, 3))
ck = wv.Checkpointer("./ckpts")
assert ck.restore_latest(model) == 7
print("resume after the snippet: step 7")' || fail "resume a Checkpointer commit"

# -- pip wheel: the wheel holds the library -------------------------------------
check_wheel() {  # WHEEL: tag, weightvault/libweightvault.so, RECORD hashes
    "$PYTHON" - "$1" <<'EOF'
import base64, hashlib, re, sys, sysconfig, zipfile
w = sys.argv[1]
plat = re.sub(r"[-.]", "_", sysconfig.get_platform())
assert w.endswith(f"-py3-none-{plat}.whl"), w
z = zipfile.ZipFile(w)
names = z.namelist()
assert "weightvault/libweightvault.so" in names, names
assert z.read("weightvault/libweightvault.so")[:4] == b"\x7fELF"
rec = [n for n in names if n.endswith(".dist-info/RECORD")]
assert len(rec) == 1, rec
rows = [l.split(",") for l in z.read(rec[0]).decode().splitlines()]
assert sorted(r[0] for r in rows) == sorted(names), "RECORD != contents"
for name, h, size in rows:
    if name == rec[0]:
        continue
    data = z.read(name)
    d = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    assert h == "sha256=" + d.decode() and int(size) == len(data), name
assert "Requires-Dist: numpy" in z.read(
    [n for n in names if n.endswith("METADATA")][0]).decode()
print("wheel ok:", w.rsplit("/", 1)[-1], len(names), "files")
EOF
}
(cd "$tmp" && WEIGHTVAULT_BUILD_LIB=$lib "$deb/bin/pip" wheel --no-deps \
    --no-index --no-cache-dir -w "$tmp/wheels" "$root/python") >"$tmp/pip.log" 2>&1 ||
    { cat "$tmp/pip.log"; fail "pip wheel $root/python"; }
whl=$(ls "$tmp"/wheels/weightvault-*.whl)
check_wheel "$whl" || fail "the wheel of pip wheel"

# -- a wheel without the library uses an installed one ---------------------------
nb=$tmp/nobundle
"$PYTHON" -m venv --system-site-packages "$nb" || fail "venv with $PYTHON"
(cd "$tmp" && WEIGHTVAULT_BUNDLE=0 "$nb/bin/pip" install --no-index --no-cache-dir \
    "$root/python") >"$tmp/pip.log" 2>&1 ||
    { cat "$tmp/pip.log"; fail "WEIGHTVAULT_BUNDLE=0 pip install"; }
cp "$lib" "$nb/lib/libweightvault.so.0"   # as `make install PREFIX=$nb` would
run_py "$nb" -c '
import os, sys, weightvault as wv
pkg = os.path.dirname(wv.__file__)
assert not os.path.exists(os.path.join(pkg, "libweightvault.so")), "bundled anyway"
assert wv.library_path().endswith("libweightvault.so.0"), wv.library_path()
print("no bundled library: uses", wv.library_path(), wv.library_version())' ||
    fail "a WEIGHTVAULT_BUNDLE=0 install finds the installed library"

# -- the backend's own cmake build (release builds only: the same sources) -----
if [ "$sanitized" = 0 ]; then
    rm -rf "$tmp/wheels"
    (cd "$tmp" && WEIGHTVAULT_BUILD_DIR=$(dirname "$lib") CMAKE_BUILD_PARALLEL_LEVEL=2 \
        "$deb/bin/pip" wheel -v --no-deps --no-index --no-cache-dir \
        -w "$tmp/wheels" "$root/python") >"$tmp/pip.log" 2>&1 ||
        { cat "$tmp/pip.log"; fail "pip wheel building the library with cmake"; }
    grep -q -- "--target weightvault" "$tmp/pip.log" ||
        fail "the backend did not run cmake --build: $(head -c 600 "$tmp/pip.log")"
    whl=$(ls "$tmp"/wheels/weightvault-*.whl)
    "$PYTHON" -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
sys.exit(z.read("weightvault/libweightvault.so") != open(sys.argv[2], "rb").read())' \
        "$whl" "$lib" || fail "the cmake wheel does not bundle $lib"
    check_wheel "$whl" || fail "the wheel built with cmake"
    "$deb/bin/pip" install --no-index --no-cache-dir --force-reinstall --no-deps \
        "$whl" >"$tmp/pip.log" 2>&1 || { cat "$tmp/pip.log"; fail "pip install $whl"; }
    run_py "$deb" "$tmp/roundtrip.py" "$deb" || fail "save/load with the cmake-built wheel"
fi

# -- the other python on PATH (pyenv's), from the wheel -----------------------
alt=$(command -v python3 || true)
if [ -n "$alt" ] && [ "$(readlink -f "$alt")" != "$(readlink -f "$PYTHON")" ] &&
   "$alt" -c 'import venv, ensurepip' 2>/dev/null; then
    pv=$tmp/alt
    "$alt" -m venv "$pv" || fail "venv with $alt"
    sp=$("$pv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    if ! "$pv/bin/python" -c 'import numpy' 2>/dev/null; then
        np_dir=$("$PYTHON" -c 'import numpy, os; print(os.path.dirname(numpy.__file__))')
        ln -s "$np_dir" "$sp/numpy"
        for d in "$(dirname "$np_dir")"/numpy-*-info; do ln -s "$d" "$sp/"; done
    fi
    if "$pv/bin/python" -c 'import numpy' 2>/dev/null; then
        (cd "$tmp" && WEIGHTVAULT_BUILD_LIB=$lib "$pv/bin/pip" install --no-index \
            --no-cache-dir "$root/python") >"$tmp/pip.log" 2>&1 ||
            { cat "$tmp/pip.log"; fail "$alt: pip install $root/python"; }
        run_py "$pv" "$tmp/roundtrip.py" "$pv" || fail "save/load from the $alt venv"
    else
        echo "python_install.sh: $alt cannot use $PYTHON's numpy; its half skipped"
    fi
else
    echo "python_install.sh: no second python3 on PATH; that half skipped"
fi
finish
