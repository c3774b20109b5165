"""The PEP 517 build backend of the weightvault Python package (in-tree).

Standard library only, so ``pip install ./python`` and ``pip wheel ./python``
work offline with build isolation (``requires = []``: nothing to download).
The wheel holds the pure-Python package plus ``weightvault/libweightvault.so``,
the C library it binds, so ``import weightvault`` needs nothing installed
system-wide; its tag is ``py3-none-<platform>`` (any Python 3, no CPython
ABI, this platform's shared library).

Where the bundled library comes from, first hit wins:

1. ``WEIGHTVAULT_BUILD_LIB`` (environment) or ``--config-settings lib=PATH``:
   that file, copied as it is;
2. a cmake build of the source tree this directory sits in (``python/`` is
   inside the project: the root is two levels above this file), target
   ``weightvault`` only: in ``WEIGHTVAULT_BUILD_DIR`` (or ``build-dir=``)
   when given, else in the project's ``build/`` when it is configured and not
   a sanitizer build (usually already up to date: ``make build``), else in
   ``build-python/`` (configured RelWithDebInfo on first use).

``WEIGHTVAULT_BUNDLE=0`` (or ``bundle=0``) builds a wheel without the
library: the package then uses an installed one (``make install``).

Hooks: build_wheel, build_editable (a .pth naming this source tree; the
library is built as above and found in the tree's build directory),
prepare_metadata_for_build_wheel/_editable, get_requires_for_build_*.
No sdist: the package cannot be built without the C sources around it.
"""

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_DIR = os.path.dirname(HERE)             # python/
ROOT = os.path.dirname(PKG_DIR)             # the project
PKG = "weightvault"
LIB = "libweightvault.so"
# Zip entries get this time unless SOURCE_DATE_EPOCH says otherwise, so the
# same inputs give the same wheel.
_DEFAULT_TIME = (1980, 1, 1, 0, 0, 0)


class BuildError(RuntimeError):
    """A build failure, with the one-line reason as its message."""


def _say(msg):
    print("weightvault build: " + msg, file=sys.stderr, flush=True)


# -- pyproject.toml -------------------------------------------------------------
def _toml_subset(text):
    """The tables, strings, string lists and booleans of a simple TOML file
    (what pyproject.toml here uses), for Pythons without tomllib."""
    data, table = {}, {}
    data[""] = table
    pending_key, pending = None, None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip() if '"' not in raw else raw.strip()
        if line.startswith("#"):
            continue
        if pending is not None:
            pending += " " + line
            if "]" in line:
                table[pending_key] = re.findall(r'"((?:[^"\\]|\\.)*)"', pending)
                pending = None
            continue
        if not line:
            continue
        m = re.match(r"^\[([A-Za-z0-9_.-]+)\]$", line)
        if m:
            table = data.setdefault(m.group(1), {})
            continue
        m = re.match(r'^([A-Za-z0-9_"-]+)\s*=\s*(.*)$', line)
        if not m:
            continue
        key, val = m.group(1).strip('"'), m.group(2).strip()
        if val.startswith("["):
            if "]" in val:
                table[key] = re.findall(r'"((?:[^"\\]|\\.)*)"', val)
            else:
                pending_key, pending = key, val
        elif val.startswith('"'):
            table[key] = re.match(r'^"((?:[^"\\]|\\.)*)"', val).group(1)
        elif val in ("true", "false"):
            table[key] = val == "true"
    out = {}
    for name, tbl in data.items():
        cur = out
        for part in [p for p in name.split(".") if p]:
            cur = cur.setdefault(part, {})
        cur.update(tbl)
    return out


def _project():
    path = os.path.join(PKG_DIR, "pyproject.toml")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        import tomllib
        data = tomllib.loads(raw.decode("utf-8"))
    except ImportError:
        data = _toml_subset(raw.decode("utf-8"))
    proj = data.get("project") or {}
    for key in ("name", "version"):
        if not proj.get(key):
            raise BuildError(f"{path}: [project] has no {key}")
    return proj


def _check_versions(version):
    """The package, its __init__ and the C library must carry one version."""
    init = os.path.join(PKG_DIR, PKG, "__init__.py")
    with open(init, encoding="utf-8") as f:
        m = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M)
    if not m or m.group(1) != version:
        raise BuildError(f"{init}: __version__ is "
                         f"{m.group(1) if m else 'missing'}, pyproject.toml "
                         f"says {version}")
    cml = os.path.join(ROOT, "CMakeLists.txt")
    if os.path.exists(cml):
        with open(cml, encoding="utf-8") as f:
            m = re.search(r"project\(weightvault\s+VERSION\s+([0-9.]+)",
                          f.read())
        if m and m.group(1) != version:
            raise BuildError(f"{cml}: the library is version {m.group(1)}, "
                             f"python/pyproject.toml says {version}")


def _dist_name(proj):
    return re.sub(r"[-_.]+", "_", proj["name"]).lower()


def _metadata(proj):
    lines = ["Metadata-Version: 2.1", f"Name: {proj['name']}",
             f"Version: {proj['version']}"]
    if proj.get("description"):
        lines.append(f"Summary: {proj['description']}")
    if proj.get("requires-python"):
        lines.append(f"Requires-Python: {proj['requires-python']}")
    for dep in proj.get("dependencies") or []:
        lines.append(f"Requires-Dist: {dep}")
    for extra, deps in (proj.get("optional-dependencies") or {}).items():
        lines.append(f"Provides-Extra: {extra}")
        for dep in deps:
            lines.append(f'Requires-Dist: {dep}; extra == "{extra}"')
    body = ""
    readme = proj.get("readme")
    if isinstance(readme, str):
        with open(os.path.join(PKG_DIR, readme), encoding="utf-8") as f:
            body = f.read()
        lines.append("Description-Content-Type: text/markdown")
    return ("\n".join(lines) + "\n\n" + body).encode("utf-8")


def _tag():
    plat = re.sub(r"[-.]", "_", sysconfig.get_platform())
    return f"py3-none-{plat}"


def _wheel_file(tag, pure=False):
    return (f"Wheel-Version: 1.0\nGenerator: weightvault wv_backend\n"
            f"Root-Is-Purelib: {'true' if pure else 'false'}\n"
            f"Tag: {tag}\n").encode("ascii")


# -- the library ----------------------------------------------------------------
def _setting(config_settings, key, env):
    cs = config_settings or {}
    val = cs.get(key)
    if val is None:
        val = os.environ.get(env)
    return val or None


def _sanitized_build(bdir):
    cache = os.path.join(bdir, "CMakeCache.txt")
    try:
        with open(cache, encoding="utf-8", errors="replace") as f:
            return re.search(r"^WV_SANITIZE:BOOL=(ON|1|TRUE)$", f.read(),
                             re.M | re.I) is not None
    except OSError:
        return False


def _run(cmd):
    _say("$ " + " ".join(cmd))
    r = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr)
    if r.returncode != 0:
        raise BuildError(f"`{' '.join(cmd)}` failed (exit {r.returncode})")


def _build_library(config_settings):
    """Path of the libweightvault.so to bundle (building it if needed)."""
    given = _setting(config_settings, "lib", "WEIGHTVAULT_BUILD_LIB")
    if given:
        given = os.path.abspath(given)
        if not os.path.isfile(given):
            raise BuildError(f"WEIGHTVAULT_BUILD_LIB / lib=: {given}: "
                             "no such file")
        return given
    if not os.path.isfile(os.path.join(ROOT, "CMakeLists.txt")) or \
            not os.path.isfile(os.path.join(ROOT, "include", "weightvault.h")):
        raise BuildError(f"{ROOT}: not the weightvault source tree (no "
                         "CMakeLists.txt/include/weightvault.h above python/); "
                         "set WEIGHTVAULT_BUILD_LIB to a built libweightvault.so")
    cmake = shutil.which("cmake")
    if cmake is None:
        raise BuildError("cmake not found on PATH (bash scripts/deps.sh build), "
                         "or set WEIGHTVAULT_BUILD_LIB to a built "
                         "libweightvault.so")
    bdir = _setting(config_settings, "build-dir", "WEIGHTVAULT_BUILD_DIR")
    if bdir:
        bdir = os.path.abspath(bdir)
    else:
        user = os.path.join(ROOT, "build")
        if os.path.isfile(os.path.join(user, "CMakeCache.txt")) and \
                not _sanitized_build(user):
            bdir = user
        else:
            bdir = os.path.join(ROOT, "build-python")
    if not os.path.isfile(os.path.join(bdir, "CMakeCache.txt")):
        # a library to ship: no test programs, no fault-injection sites
        _run([cmake, "-S", ROOT, "-B", bdir,
              "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DWV_TESTS=OFF"])
    jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or \
        str(os.cpu_count() or 2)
    _run([cmake, "--build", bdir, "--target", "weightvault", "-j", jobs])
    lib = os.path.join(bdir, LIB)
    if not os.path.isfile(lib):
        raise BuildError(f"{bdir}: the build made no {LIB}")
    return lib


def _check_library(lib):
    """The bundled file must be an ELF shared object whose dependencies
    this machine has (Debian system libraries: libhdf5, libcurl, ...)."""
    with open(lib, "rb") as f:
        if f.read(4) != b"\x7fELF":
            raise BuildError(f"{lib}: not an ELF shared library")
    ldd = shutil.which("ldd")
    if ldd:
        r = subprocess.run([ldd, lib], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        missing = [ln.split()[0] for ln in r.stdout.splitlines()
                   if "not found" in ln]
        if missing:
            raise BuildError(f"{lib}: needs {', '.join(missing)}, not installed "
                             "(bash scripts/deps.sh build)")
        if "libasan" in r.stdout or "libclang_rt.asan" in r.stdout:
            _say(f"warning: {lib} is a sanitizer build; it loads only with "
                 "the ASan runtime preloaded")


# -- writing wheels -------------------------------------------------------------
def _zip_time():
    sde = os.environ.get("SOURCE_DATE_EPOCH")
    if sde and sde.isdigit():
        import time
        t = time.gmtime(max(int(sde), 315532800))
        return t[:6]
    return _DEFAULT_TIME


class _Wheel:
    def __init__(self, path, distinfo):
        self.path, self.distinfo = path, distinfo
        self.records = []
        self.zf = zipfile.ZipFile(path + ".part", "w", zipfile.ZIP_DEFLATED)
        self.when = _zip_time()

    def add(self, arcname, data, mode=0o644):
        info = zipfile.ZipInfo(arcname, self.when)
        info.external_attr = (0o100000 | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zf.writestr(info, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest())
        self.records.append(f"{arcname},sha256={digest.rstrip(b'=').decode()},"
                            f"{len(data)}")

    def close(self):
        rec = f"{self.distinfo}/RECORD"
        body = "\n".join(self.records + [f"{rec},,"]) + "\n"
        info = zipfile.ZipInfo(rec, self.when)
        info.external_attr = (0o100644) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zf.writestr(info, body.encode("utf-8"))
        self.zf.close()
        os.replace(self.path + ".part", self.path)


def _package_files():
    """(arcname, path) of the package's Python files, sorted."""
    out = []
    src = os.path.join(PKG_DIR, PKG)
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for fn in sorted(filenames):
            if fn.endswith(".py") or fn == "py.typed":
                full = os.path.join(dirpath, fn)
                out.append((os.path.relpath(full, PKG_DIR).replace(os.sep, "/"),
                            full))
    return out


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _write_metadata_dir(directory, proj, tag):
    distinfo = f"{_dist_name(proj)}-{proj['version']}.dist-info"
    d = os.path.join(directory, distinfo)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "METADATA"), "wb") as f:
        f.write(_metadata(proj))
    with open(os.path.join(d, "WHEEL"), "wb") as f:
        f.write(_wheel_file(tag))
    return distinfo


def _bundle(config_settings):
    val = _setting(config_settings, "bundle", "WEIGHTVAULT_BUNDLE")
    return val is None or val.lower() not in ("0", "no", "false", "off")


def _build(wheel_directory, config_settings, editable):
    try:
        proj = _project()
        _check_versions(proj["version"])
        bundle = _bundle(config_settings)
        tag = _tag() if bundle or editable else "py3-none-any"
        distinfo = f"{_dist_name(proj)}-{proj['version']}.dist-info"
        name = f"{_dist_name(proj)}-{proj['version']}-{tag}.whl"
        lib = None
        if bundle:
            lib = _build_library(config_settings)
            _check_library(lib)
        os.makedirs(wheel_directory, exist_ok=True)
        whl = _Wheel(os.path.join(wheel_directory, name), distinfo)
        try:
            if editable:
                # The tree's package directory goes on sys.path; _lib finds
                # the library in the tree's build directories.
                whl.add(f"__editable__.{_dist_name(proj)}.pth",
                        (PKG_DIR + "\n").encode("utf-8"))
            else:
                for arc, full in _package_files():
                    whl.add(arc, _read(full))
                if lib:
                    whl.add(f"{PKG}/{LIB}", _read(lib), 0o755)
            whl.add(f"{distinfo}/METADATA", _metadata(proj))
            whl.add(f"{distinfo}/WHEEL",
                    _wheel_file(tag, pure=not bundle and not editable))
            whl.add(f"{distinfo}/top_level.txt", (PKG + "\n").encode())
        except BaseException:
            whl.zf.close()
            os.unlink(whl.path + ".part")
            raise
        whl.close()
        _say(f"wrote {name}" + (f" (library: {lib})" if lib else
                                " (no library: uses an installed one)"))
        return name
    except (BuildError, OSError) as e:
        # One line for the user instead of a backend traceback.
        raise SystemExit(f"weightvault build: {e}") from None


# -- PEP 517 / 660 hooks -------------------------------------------------------
def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    tag = _tag() if _bundle(config_settings) else "py3-none-any"
    return _write_metadata_dir(metadata_directory, _project(), tag)


def prepare_metadata_for_build_editable(metadata_directory,
                                        config_settings=None):
    return _write_metadata_dir(metadata_directory, _project(), _tag())


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _build(wheel_directory, config_settings, editable=False)


def build_editable(wheel_directory, config_settings=None,
                   metadata_directory=None):
    return _build(wheel_directory, config_settings, editable=True)


__all__ = ["build_wheel", "build_editable", "get_requires_for_build_wheel",
           "get_requires_for_build_editable",
           "prepare_metadata_for_build_wheel",
           "prepare_metadata_for_build_editable"]
