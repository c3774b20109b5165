"""Loading libweightvault.so and declaring the C functions the package uses.

Only the public API of ``include/weightvault.h`` is bound. Every prototype is
declared explicitly (argtypes and restype), so a wrong call fails in Python
instead of corrupting memory.

Where the library is found, first hit that loads wins (the error lists
every place tried):

1. ``$WEIGHTVAULT_LIB``: the path of the shared library itself (only that);
2. ``libweightvault.so`` next to this file: the copy a wheel bundles
   (``pip install ./python``), built from the same sources as this code;
3. the build directories of the source tree this package sits in
   (``../../build*/libweightvault.so`` relative to this file, ``build``
   first, sanitizer builds skipped): running from a checkout
   (``PYTHONPATH=python``, ``pip install -e``);
4. an installed library (``make install``): ``libweightvault.so.0`` through
   the system loader (``LD_LIBRARY_PATH``, ``ldconfig``'s cache), then
   ``<sys.prefix>/lib``, ``/usr/local/lib``, ``/usr/lib``, then
   ``ctypes.util.find_library``.

The bundled copy comes before an installed one because it is the version
this Python code was written against; a wheel built with
``WEIGHTVAULT_BUNDLE=0`` has none and uses the installed library. A library
lacking a function this package requires (an older version) is skipped.
"""

import ctypes
import ctypes.util
import glob
import os
import sys
import threading

c_int = ctypes.c_int
c_uint = ctypes.c_uint
c_size_t = ctypes.c_size_t
c_uint32 = ctypes.c_uint32
c_uint64 = ctypes.c_uint64
c_long = ctypes.c_long
c_char_p = ctypes.c_char_p
c_void_p = ctypes.c_void_p
P = ctypes.POINTER

# Status codes (WV_ERRNO_MAP).
OK, ERROR, NOMEM, IO, CORRUPT, FORMAT, NOTFOUND, EXISTS, CONFLICT, AUTH, \
    RANGE, MISUSE, BACKEND, UNSUPPORTED, BUSY = range(15)

DATA_COPY, DATA_BORROW, DATA_TAKE = 0, 1, 2
LOAD_MMAP, LOAD_PREAD = 0, 1
LOAD_OBJECTS = 32  # WV_LOAD_OBJECTS
SAVE_COMPRESS, SAVE_NEST = 1, 2
PRUNE_MIN, PRUNE_MAX = 0, 1
ERRBUF_SIZE = 256
ID_HEX = 65


# void (*progress)(void *arg, uint64_t done, uint64_t total): the progress
# callback of wv_save_opts, wv_commit_opts, wv_checkout_opts, wv_sync_opts.
PROGRESS_CB = ctypes.CFUNCTYPE(None, c_void_p, c_uint64, c_uint64)

# The option structs mirror include/weightvault.h field by field, in order
# (tests/python/test_structs.py compiles the header and compares every
# offset and size): a struct shorter than the header's is still accepted
# by the library (struct_size), but its newer options are then unreachable.


class LoadOpts(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("flags", c_uint),
                ("format", c_int), ("errbuf", c_void_p),
                ("errbuf_size", c_size_t), ("names", P(c_char_p)),
                ("n_names", c_size_t), ("max_expand", c_uint64)]


class SaveOpts(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("format", c_int),
                ("cast", c_int), ("flags", c_uint), ("shard_size", c_uint64),
                ("progress", PROGRESS_CB), ("progress_arg", c_void_p),
                ("template_path", c_char_p)]


class InitOpts(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("compression", c_char_p),
                ("level", c_int), ("chunk_size", c_uint64),
                ("pack_size", c_uint64), ("errbuf", c_void_p),
                ("errbuf_size", c_size_t), ("encrypt", c_int),
                ("passphrase", c_char_p), ("key_file", c_char_p),
                ("key_label", c_char_p), ("delta_keyframe", c_int)]


class OpenOpts(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("passphrase", c_char_p),
                ("key_file", c_char_p), ("errbuf", c_void_p),
                ("errbuf_size", c_size_t)]


class CommitOpts(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("message", c_char_p),
                ("max_retries", c_int), ("staging_bytes", c_uint64),
                ("sign_key", c_char_p), ("progress", PROGRESS_CB),
                ("progress_arg", c_void_p), ("delta_keyframe", c_int)]


class CheckoutOpts(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("names", P(c_char_p)),
                ("n_names", c_size_t), ("verify_signer", c_char_p),
                ("progress", PROGRESS_CB), ("progress_arg", c_void_p),
                ("buffer_bytes", c_uint64)]


class PruneOpts(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("keep_last", c_long),
                ("keep_best", c_long), ("metric", c_char_p), ("mode", c_int),
                ("branch", c_char_p), ("dry_run", c_int)]


class PruneDecision(ctypes.Structure):
    _fields_ = [("id", c_char_p), ("branch", c_char_p), ("time", c_char_p),
                ("step", c_char_p), ("metric", c_char_p), ("keep", c_int),
                ("reason", c_char_p)]


class PruneStats(ctypes.Structure):
    _fields_ = [("kept", c_uint64), ("removed", c_uint64)]


class GcOpts(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("dry_run", c_int),
                ("repack_percent", c_int), ("tmp_age", ctypes.c_int64),
                ("pending_timeout", c_uint32)]


class CheckpointStorage(ctypes.Structure):
    _fields_ = ([("struct_size", c_uint32)] +
                [(n, c_uint64) for n in (
                    "chunks", "stored_bytes", "raw_bytes", "new_chunks",
                    "new_stored_bytes", "new_raw_bytes")] +
                [("new_by_codec", c_uint64 * 4),
                 ("new_stored_by_codec", c_uint64 * 4),
                 ("max_chain", c_int)])


class GcStats(ctypes.Structure):
    _fields_ = [(n, c_uint64) for n in (
        "checkpoints", "live_chunks", "missing_chunks", "packs",
        "packs_deleted", "packs_repacked", "packs_written",
        "indexes_deleted", "indexes_written", "locks_removed",
        "bytes_before", "bytes_after", "bytes_freed", "tmp_removed",
        "pending_removed")]


class VerifyProblem(ctypes.Structure):
    _fields_ = [("object", c_char_p), ("checkpoint", c_char_p),
                ("branch", c_char_p), ("tensor", c_char_p),
                ("message", c_char_p)]


class VerifyStats(ctypes.Structure):
    _fields_ = [(n, c_uint64) for n in (
        "checkpoints", "refs", "indexes", "packs", "chunks", "bytes",
        "problems")] + [("unlocked", ctypes.c_char * 256)]


ASYNC_COPY, ASYNC_TAKE = 1, 2


class SyncOpts(ctypes.Structure):
    _fields_ = [("struct_size", c_uint32), ("branch", c_char_p),
                ("jobs", c_int), ("force", c_int), ("no_create", c_int),
                ("progress", PROGRESS_CB), ("progress_arg", c_void_p),
                ("errbuf", c_void_p), ("errbuf_size", c_size_t)]


class SyncResult(ctypes.Structure):
    _fields_ = [("objects_total", c_uint64), ("objects_copied", c_uint64),
                ("bytes_copied", c_uint64), ("refs_updated", c_int),
                ("refs_unchanged", c_int), ("requests", c_uint64),
                ("bytes_sent", c_uint64), ("bytes_received", c_uint64),
                ("chunks_verified", c_uint64)]

class PartOpts(ctypes.Structure):
    """wv_part_opts: one writer's share of a multi-writer checkpoint."""
    _fields_ = [("struct_size", c_uint32), ("txn", c_char_p),
                ("writer", c_uint32), ("n_writers", c_uint32),
                ("no_finish", c_int)]


VERIFY_CB = ctypes.CFUNCTYPE(None, c_void_p, P(VerifyProblem))
PRUNE_CB = ctypes.CFUNCTYPE(c_int, c_void_p, P(PruneDecision))
REF_CB = ctypes.CFUNCTYPE(c_int, c_void_p, c_char_p, c_char_p)
# wv_pending_cb(arg, branch, txn, n_writers, n_parts, oldest_part_time)
PENDING_CB = ctypes.CFUNCTYPE(c_int, c_void_p, c_char_p, c_char_p, c_uint32,
                              c_uint32, c_char_p)


class Progress:
    """A Python ``progress(done, total)`` as the C callback of an option
    struct's ``progress`` field. An exception it raises does not stop the
    library (which cannot be interrupted from a callback); it is kept, the
    callback is not called again, and :meth:`reraise` raises it once the
    call is over. Keep this object alive until the call has returned."""

    def __init__(self, fn):
        self.raised = []

        def on_progress(_arg, done, total):
            if self.raised:
                return
            try:
                fn(done, total)
            except BaseException as e:  # noqa: B036 -- re-raised later
                self.raised.append(e)
        self.c = PROGRESS_CB(on_progress) if fn is not None else None

    def set(self, opts):
        """Put the callback in the option struct `opts` (if there is one)."""
        if self.c is not None:
            opts.progress = self.c

    def reraise(self):
        if self.raised:
            raise self.raised[0]


def init_struct(cls, **fields):
    """An option struct with struct_size set and the header's defaults."""
    s = cls()
    s.struct_size = ctypes.sizeof(cls)
    for k, v in fields.items():
        setattr(s, k, v)
    return s


# name -> (restype, argtypes). Optional ones may be missing from an older
# library; they are bound as None and the feature using them says so.
_PROTOS = {
    "wv_version_string": (c_char_p, []),
    "wv_strerror": (c_char_p, [c_int]),
    "wv_primary": (c_int, [c_int]),
    "wv_dtype_name": (c_char_p, [c_int]),
    "wv_dtype_from_name": (c_int, [c_char_p, P(c_int)]),
    "wv_dtype_block": (c_int, [c_int, P(c_size_t), P(c_size_t)]),
    "wv_format_from_name": (c_int, [c_char_p, P(c_int)]),
    "wv_format_from_path": (c_int, [c_char_p, P(c_int)]),
    "wv_model_new": (c_int, [P(c_void_p)]),
    "wv_model_free": (None, [c_void_p]),
    "wv_model_errmsg": (c_char_p, [c_void_p]),
    "wv_model_source_format": (c_char_p, [c_void_p]),
    "wv_model_add": (c_int, [c_void_p, c_char_p, c_int, c_int, P(c_uint64),
                             c_void_p, c_size_t, c_uint]),
    "wv_model_count": (c_size_t, [c_void_p]),
    "wv_model_tensor": (c_void_p, [c_void_p, c_size_t]),
    "wv_model_set_meta": (c_int, [c_void_p, c_char_p, c_char_p]),
    "wv_model_meta_count": (c_size_t, [c_void_p]),
    "wv_model_meta": (c_int, [c_void_p, c_size_t, P(c_char_p), P(c_char_p)]),
    "wv_tensor_name": (c_char_p, [c_void_p]),
    "wv_tensor_dtype": (c_int, [c_void_p]),
    "wv_tensor_ndim": (c_int, [c_void_p]),
    "wv_tensor_shape": (P(c_uint64), [c_void_p]),
    "wv_tensor_nbytes": (c_size_t, [c_void_p]),
    "wv_tensor_data": (c_void_p, [c_void_p]),
    "wv_model_load": (c_int, [c_char_p, P(LoadOpts), P(c_void_p)]),
    "wv_model_load_mem": (c_int, [c_void_p, c_size_t, P(LoadOpts),
                                  P(c_void_p)]),
    "wv_model_save": (c_int, [c_void_p, c_char_p, P(SaveOpts)]),
    "wv_repo_init": (c_int, [c_char_p, P(InitOpts)]),
    "wv_repo_open": (c_int, [c_char_p, c_void_p, c_size_t, P(c_void_p)]),
    "wv_repo_close": (None, [c_void_p]),
    "wv_repo_errmsg": (c_char_p, [c_void_p]),
    "wv_repo_commit": (c_int, [c_void_p, c_void_p, c_char_p, P(CommitOpts),
                               c_char_p]),
    "wv_repo_resolve": (c_int, [c_void_p, c_char_p, c_char_p]),
    "wv_repo_checkout": (c_int, [c_void_p, c_char_p, P(CheckoutOpts),
                                 P(c_void_p)]),
}
_OPTIONAL = {
    "wv_dtype_parse": (c_int, [c_char_p, P(c_int)]),
    "wv_model_read_all": (c_int, [c_void_p, P(c_void_p), c_size_t]),
    "wv_repo_open_ex": (c_int, [c_char_p, P(OpenOpts), P(c_void_p)]),
    "wv_repo_stat": (c_int, [c_void_p, c_char_p, P(c_void_p)]),
    "wv_repo_storage": (c_int, [c_void_p, c_char_p, P(CheckpointStorage)]),
    "wv_repo_read_tensor": (c_int, [c_void_p, c_char_p, c_char_p, c_uint64,
                                    c_uint64, c_void_p]),
    "wv_checkpoint_free": (None, [c_void_p]),
    "wv_checkpoint_id": (c_char_p, [c_void_p]),
    "wv_checkpoint_parent": (c_char_p, [c_void_p]),
    "wv_checkpoint_branch": (c_char_p, [c_void_p]),
    "wv_checkpoint_time": (c_char_p, [c_void_p]),
    "wv_checkpoint_message": (c_char_p, [c_void_p]),
    "wv_checkpoint_meta_count": (c_size_t, [c_void_p]),
    "wv_checkpoint_meta": (c_int, [c_void_p, c_size_t, P(c_char_p),
                                   P(c_char_p)]),
    "wv_checkpoint_tensor_count": (c_size_t, [c_void_p]),
    "wv_checkpoint_tensor_name": (c_char_p, [c_void_p, c_size_t]),
    "wv_checkpoint_total_bytes": (c_uint64, [c_void_p]),
    "wv_checkpoint_tensor_nbytes": (c_uint64, [c_void_p, c_size_t]),
    "wv_escape": (c_size_t, [c_char_p, c_size_t, c_char_p, c_size_t,
                             c_uint]),
    "wv_repo_tag": (c_int, [c_void_p, c_char_p, c_char_p]),
    "wv_repo_branch": (c_int, [c_void_p, c_char_p, c_char_p]),
    "wv_repo_list_branches": (c_int, [c_void_p, REF_CB, c_void_p]),
    "wv_repo_list_tags": (c_int, [c_void_p, REF_CB, c_void_p]),
    "wv_repo_prune": (c_int, [c_void_p, P(PruneOpts), PRUNE_CB, c_void_p,
                              P(PruneStats)]),
    "wv_repo_gc": (c_int, [c_void_p, P(GcOpts), P(GcStats)]),
    "wv_repo_verify": (c_int, [c_void_p, VERIFY_CB, c_void_p,
                               P(VerifyStats)]),
    "wv_repo_commit_async": (c_int, [c_void_p, c_void_p, c_char_p,
                                     P(CommitOpts), c_uint, P(c_void_p)]),
    "wv_commit_poll": (c_int, [c_void_p]),
    "wv_commit_wait": (c_int, [c_void_p, c_char_p]),
    "wv_commit_errmsg": (c_char_p, [c_void_p]),
    "wv_commit_free": (None, [c_void_p]),
    "wv_checkpoint_signer": (c_char_p, [c_void_p]),
    "wv_repo_sync": (c_int, [c_char_p, c_char_p, P(SyncOpts),
                             P(SyncResult)]),
    "wv_checkpoint_tensor_dtype": (c_int, [c_void_p, c_size_t]),
    "wv_checkpoint_tensor_ndim": (c_int, [c_void_p, c_size_t]),
    "wv_checkpoint_tensor_shape": (P(c_uint64), [c_void_p, c_size_t]),
    # multi-writer checkpoints and regions (weightvault.distributed)
    "wv_model_set_region": (c_int, [c_void_p, c_char_p, P(c_uint64),
                                    P(c_uint64)]),
    "wv_tensor_region": (c_int, [c_void_p, P(P(c_uint64)),
                                 P(P(c_uint64))]),
    "wv_repo_commit_part": (c_int, [c_void_p, c_void_p, c_char_p,
                                    P(PartOpts), P(CommitOpts), c_char_p]),
    "wv_repo_commit_part_async": (c_int, [c_void_p, c_void_p, c_char_p,
                                          P(PartOpts), P(CommitOpts), c_uint,
                                          P(c_void_p)]),
    "wv_repo_finish": (c_int, [c_void_p, c_char_p, c_char_p, c_uint32,
                               P(CommitOpts), c_char_p]),
    "wv_repo_list_pending": (c_int, [c_void_p, PENDING_CB, c_void_p]),
    "wv_repo_read_region": (c_int, [c_void_p, c_char_p, c_char_p, c_int,
                                    P(c_uint64), P(c_uint64), c_void_p,
                                    c_size_t]),
    "wv_checkpoint_tensor_shards": (c_size_t, [c_void_p, c_size_t]),
    "wv_checkpoint_tensor_writers": (c_size_t, [c_void_p, c_size_t,
                                                P(c_uint32), c_size_t]),
}

# What weightvault.distributed needs of the library (issue 16).
DISTRIBUTED = ("wv_model_set_region", "wv_repo_commit_part",
               "wv_repo_finish", "wv_repo_read_region",
               "wv_checkpoint_tensor_dtype", "wv_checkpoint_tensor_ndim",
               "wv_checkpoint_tensor_shape")


def _sanitized(build_dir):
    """True if the cmake build in build_dir is a sanitizer build (its
    library aborts a Python that has no ASan runtime preloaded)."""
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt"),
                  encoding="utf-8", errors="replace") as f:
            return any(line.strip().upper() in ("WV_SANITIZE:BOOL=ON",
                                                "WV_SANITIZE:BOOL=1")
                       for line in f)
    except OSError:
        return False


def _candidates():
    env = os.environ.get("WEIGHTVAULT_LIB")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, "libweightvault.so")
    tree = os.path.dirname(os.path.dirname(here))
    if os.path.isfile(os.path.join(tree, "include", "weightvault.h")):
        builds = sorted(glob.glob(os.path.join(tree, "build*",
                                               "libweightvault.so")))
        builds.sort(key=lambda p: os.path.basename(os.path.dirname(p))
                    != "build")
        yield from (b for b in builds if not _sanitized(os.path.dirname(b)))
    yield "libweightvault.so.0"
    multiarch = getattr(sys.implementation, "_multiarch", None)
    dirs = [os.path.join(sys.prefix, "lib"), "/usr/local/lib"]
    dirs += ["/usr/lib/" + multiarch] if multiarch else []
    for d in dirs + ["/usr/lib"]:
        yield os.path.join(d, "libweightvault.so.0")
    found = ctypes.util.find_library("weightvault")
    if found:
        yield found


def _printable(s):
    """`s` if every character is printable, else its repr() (for messages
    made before the library, and so wv_escape, is loaded)."""
    return s if s.isprintable() else repr(s)


_lock = threading.Lock()
_lib = None


def lib():
    """The loaded library, with prototypes declared (loaded on first use).

    Raises OSError naming every place looked at when none loads.
    """
    global _lib
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        for path in _candidates():
            if os.sep in path and not os.path.exists(path):
                tried.append(_printable(path) + " (missing)")
                continue
            try:
                handle = ctypes.CDLL(path)
            except OSError as e:
                tried.append(f"{_printable(path)} ({_printable(str(e))})")
                continue
            lacking = [n for n in _PROTOS if not hasattr(handle, n)]
            if lacking:
                tried.append(f"{_printable(path)} (lacks {lacking[0]}: an "
                             "older library)")
                continue
            for name, (res, args) in _PROTOS.items():
                fn = getattr(handle, name)
                fn.restype, fn.argtypes = res, args
            for name, (res, args) in _OPTIONAL.items():
                fn = getattr(handle, name, None)
                if fn is not None:
                    fn.restype, fn.argtypes = res, args
            handle.path = path
            _lib = handle
            return _lib
        raise OSError("weightvault: cannot load libweightvault.so (reinstall "
                      "the package with pip, `make install` the library, or "
                      "set WEIGHTVAULT_LIB to its path). Tried: "
                      + "; ".join(tried))


def has(name):
    """True if the loaded library exports the C function `name`."""
    return getattr(lib(), name, None) is not None


def enc(s):
    """str -> UTF-8 bytes for a `const char *` argument (None stays None)."""
    return None if s is None else s.encode("utf-8")


def dec(b):
    """A borrowed `const char *` -> str (None stays None)."""
    return None if b is None else b.decode("utf-8", "replace")


ESCAPE_QUOTE = 1  # WV_ESCAPE_QUOTE


def show(s):
    """A path or name given by the user, safe to put in a message.

    Rendered as the library renders names in its own messages
    (``wv_escape`` with WV_ESCAPE_QUOTE): printable text stays as it is;
    anything with a control character, an escape sequence or bytes that
    are not UTF-8 is put in double quotes with those escaped (``\\n``,
    ``\\x1b``), as git quotes paths. So a name cannot forge a line of
    output. Without ``wv_escape`` (an older library): Python's repr().
    """
    if isinstance(s, os.PathLike):
        s = os.fspath(s)
    if isinstance(s, str):
        # surrogateescape: the undecodable bytes of a file name come back
        # as themselves, and wv_escape shows them as \xNN
        raw = s.encode("utf-8", "surrogateescape")
    elif isinstance(s, (bytes, bytearray)):
        raw = bytes(s)
    else:
        raw = str(s).encode("utf-8", "surrogateescape")
    fn = getattr(lib(), "wv_escape", None)
    if fn is None:
        return _printable(raw.decode("utf-8", "surrogateescape"))
    n = fn(None, 0, raw, len(raw), ESCAPE_QUOTE)
    out = ctypes.create_string_buffer(n + 1)
    fn(out, n + 1, raw, len(raw), ESCAPE_QUOTE)
    return out.value.decode("utf-8", "replace")
