"""Tensor sets (wv_model) from Python objects and back, without copies.

Two directions:

* Python -> C (:func:`build_model`): every array or tensor is added with
  ``WV_DATA_BORROW``, so the library reads the caller's memory in place. A
  contiguous little-endian CPU array/tensor is passed as it is; anything else
  (non-contiguous, on a GPU, big-endian, conjugate/negative views) is first
  made contiguous on the CPU, and that temporary is what is borrowed. The
  objects borrowed are kept in ``Model.keep`` until the set is freed.

* C -> Python (:func:`arrays`): each tensor becomes a NumPy array built with
  ``np.frombuffer`` over a ctypes buffer at ``wv_tensor_data()``. That
  buffer holds a reference to the :class:`Model` that owns the ``wv_model``,
  so the set (and the file mapping its tensors point into) is freed only
  when the last array (or torch tensor made from one with
  ``torch.from_numpy``) built on it has been garbage-collected.
"""

import ctypes
import json
import mmap
import os
import re
import sys

import numpy as np

from . import _lib
from .errors import check, error

# safetensors dtype name -> numpy dtype used to hold its elements.
_NP_OF = {
    "BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "U16": np.uint16,
    "I16": np.int16, "U32": np.uint32, "I32": np.int32, "U64": np.uint64,
    "I64": np.int64, "F16": np.float16, "F32": np.float32,
    "F64": np.float64, "C64": np.complex64,
    # No NumPy dtype: the raw bits (BF16 as uint16, FP8 as uint8).
    "BF16": np.uint16, "F8_E4M3": np.uint8, "F8_E5M2": np.uint8,
}

# The first bytes of a .npy file (what the library's npy probe looks for).
_NPY_MAGIC = b"\x93NUMPY"
_NAME_OF_NP = {np.dtype(v).str[1:]: k for k, v in _NP_OF.items()
               if k not in ("BF16", "F8_E4M3", "F8_E5M2")}

_dtype_ids = {}


def dtype_id(name):
    """The wv_dtype value of a dtype name ("F32" -> WV_F32)."""
    v = _dtype_ids.get(name)
    if v is None:
        out = ctypes.c_int()
        check(_lib.lib().wv_dtype_from_name(name.encode(), ctypes.byref(out)),
              f"unknown dtype {name!r}")
        v = _dtype_ids[name] = out.value
    return v


def dtype_name(dt):
    """The name of a wv_dtype value (WV_F32 -> "F32")."""
    return _lib.dec(_lib.lib().wv_dtype_name(dt))


class Model:
    """Owner of one ``wv_model *``, freed when this object dies.

    ``keep`` holds whatever the set borrows from Python (arrays added with
    WV_DATA_BORROW, the mmap of a file loaded by :func:`load_file`), so it
    outlives the set: it is released only after ``wv_model_free``.
    """

    __slots__ = ("ptr", "keep", "__weakref__")

    def __init__(self, ptr, keep=None):
        self.ptr = ptr
        self.keep = keep if keep is not None else []

    @classmethod
    def new(cls):
        p = ctypes.c_void_p()
        check(_lib.lib().wv_model_new(ctypes.byref(p)))
        return cls(p.value)

    def errmsg(self):
        return _lib.dec(_lib.lib().wv_model_errmsg(self.ptr))

    def free(self):
        """Free the set now (idempotent); then release what it borrowed."""
        ptr, self.ptr = self.ptr, None
        if ptr:
            _lib.lib().wv_model_free(ptr)
        keep, self.keep = self.keep, []
        maps = [k for k in keep if isinstance(k, mmap.mmap)]
        # Emptying the list drops the ctypes view exporting each mapping's
        # buffer (nothing else references it), so close() cannot fail.
        keep.clear()
        for mm in maps:
            mm.close()

    def __del__(self):
        try:
            self.free()
        except Exception:  # interpreter shutdown: modules already gone
            pass

    # -- building ---------------------------------------------------------
    def add(self, name, dtype, shape, ptr, nbytes):
        """wv_model_add(..., WV_DATA_BORROW); the caller keeps `ptr` alive."""
        nd = len(shape)
        shp = (ctypes.c_uint64 * max(nd, 1))(*shape)
        rc = _lib.lib().wv_model_add(self.ptr, _lib.enc(name), dtype_id(dtype),
                                     nd, shp, ptr if nbytes else None, nbytes,
                                     _lib.DATA_BORROW)
        check(rc, lambda: f"tensor {name!r}: {self.errmsg()}")

    def set_meta(self, key, value):
        rc = _lib.lib().wv_model_set_meta(self.ptr, _lib.enc(key),
                                          _lib.enc(value))
        check(rc, self.errmsg)

    # -- reading ----------------------------------------------------------
    def metadata(self):
        L = _lib.lib()
        k, v = ctypes.c_char_p(), ctypes.c_char_p()
        out = {}
        for i in range(L.wv_model_meta_count(self.ptr)):
            check(L.wv_model_meta(self.ptr, i, ctypes.byref(k),
                                  ctypes.byref(v)))
            out[_lib.dec(k.value)] = _lib.dec(v.value)
        return out

    def source_format(self):
        return _lib.dec(_lib.lib().wv_model_source_format(self.ptr))

    def tensors(self):
        """(name, dtype name, shape, data pointer, nbytes) for each tensor."""
        L = _lib.lib()
        for i in range(L.wv_model_count(self.ptr)):
            t = L.wv_model_tensor(self.ptr, i)
            nd = L.wv_tensor_ndim(t)
            shp = L.wv_tensor_shape(t)
            yield (_lib.dec(L.wv_tensor_name(t)), dtype_name(L.wv_tensor_dtype(t)),
                   tuple(shp[j] for j in range(nd)), L.wv_tensor_data(t),
                   L.wv_tensor_nbytes(t))


# -- Python objects -> a tensor set ---------------------------------------

def _torch():
    import torch  # imported lazily: the package works without torch
    return torch


def _is_torch_tensor(x):
    t = sys.modules.get("torch")  # no torch imported: not a torch tensor
    return t is not None and isinstance(x, t.Tensor)


_TORCH_NAMES = None


def _torch_dtype_names():
    global _TORCH_NAMES
    if _TORCH_NAMES is None:
        torch = _torch()
        _TORCH_NAMES = {
            torch.bool: "BOOL", torch.uint8: "U8", torch.int8: "I8",
            torch.int16: "I16", torch.int32: "I32", torch.int64: "I64",
            torch.float16: "F16", torch.bfloat16: "BF16",
            torch.float32: "F32", torch.float64: "F64",
            torch.complex64: "C64"}
    return _TORCH_NAMES


def state_dict_of(obj, caller="weightvault.save"):
    """The name -> tensor/array mapping of `obj` (to save, or to fill).

    An ``nn.Module`` (anything with a callable ``state_dict``) gives its
    state_dict; a mapping is taken as it is.
    """
    sd = getattr(obj, "state_dict", None)
    if callable(sd) and not isinstance(obj, dict):
        obj = sd()
    if not hasattr(obj, "items"):
        raise TypeError(f"{caller}: expected a state_dict, an nn.Module or "
                        f"a dict of arrays, not {type(obj).__name__}")
    return obj


def _as_recorded(dt, shape, stored):
    """The dtype and shape to store a value as, given the dtype `stored`
    that the set it came from recorded (:attr:`Tensors.dtypes`): a dtype
    NumPy or torch cannot hold comes as its raw bits (BF16 as uint16, FP8
    as uint8; block-quantised GGUF types as uint8 blocks with the innermost
    extent in bytes) and goes back as itself. A value whose dtype does not
    fit the recorded one (replaced since) keeps its own."""
    if stored is None or stored == dt:
        return dt, shape
    carrier = _NP_OF.get(stored)
    if carrier is not None:
        return (stored if _NAME_OF_NP.get(np.dtype(carrier).str[1:]) == dt
                else dt), shape
    if dt != "U8" or not shape:
        return dt, shape
    try:
        elems, bbytes = _block_bytes(stored)
    except Exception:  # not a dtype this library knows: keep the bytes
        return dt, shape
    if bbytes == 0 or shape[-1] % bbytes:
        return dt, shape
    return stored, tuple(shape[:-1]) + (shape[-1] // bbytes * elems,)


def add_value(model, name, value, stored=None):
    """Add one torch tensor or NumPy array to `model` without copying it
    when it is already contiguous, little-endian and on the CPU. `stored`:
    the dtype its set recorded, if any (:func:`_as_recorded`)."""
    if _is_torch_tensor(value):
        names = _torch_dtype_names()
        t = value.detach()
        dt = names.get(t.dtype)
        if dt is None:
            raise TypeError(f"weightvault.save: tensor {name!r} has dtype "
                            f"{t.dtype}, which the file formats cannot hold")
        if t.device.type != "cpu":
            t = t.cpu()
        if t.is_conj():
            t = t.resolve_conj()
        if t.is_neg():
            t = t.resolve_neg()
        if not t.is_contiguous():
            t = t.contiguous()
        model.keep.append(t)
        dt, shape = _as_recorded(dt, tuple(t.shape), stored)
        model.add(name, dt, shape, t.data_ptr(),
                  t.numel() * t.element_size())
        return
    if isinstance(value, (np.ndarray, np.generic)):
        a = np.asarray(value)
        dt = _NAME_OF_NP.get(a.dtype.str[1:])
        if dt is None:
            raise TypeError(f"weightvault.save: array {name!r} has dtype "
                            f"{a.dtype}, which the file formats cannot hold")
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        # (ascontiguousarray makes a 0-d array 1-d: keep the shape)
        a = np.ascontiguousarray(a).reshape(a.shape)
        model.keep.append(a)
        dt, shape = _as_recorded(dt, a.shape, stored)
        model.add(name, dt, shape, a.ctypes.data, a.nbytes)
        return
    raise TypeError(f"weightvault.save: {name!r} is a {type(value).__name__}, "
                    "not a torch tensor or a NumPy array")


def meta_str(v):
    """Metadata values are strings; anything else is stored as JSON."""
    return v if isinstance(v, str) else json.dumps(v)


def region_of(name, value):
    """(local tensor/array, global shape, offsets) if `value` is such a
    triple (a region of a global tensor), with the shapes as tuples of
    ints checked against the local tensor's ndim; None for anything else.
    ValueError names the tensor when the triple is malformed."""
    if not isinstance(value, tuple) or len(value) != 3 or not (
            _is_torch_tensor(value[0]) or
            isinstance(value[0], (np.ndarray, np.generic))):
        return None
    local, gshape, offs = value
    nd = len(local.shape)

    def ints(what, seq):
        try:
            out = tuple(int(x) for x in seq)
        except (TypeError, ValueError):
            raise ValueError(f"tensor {name!r}: {what} must be a sequence "
                             f"of ints, not {seq!r}") from None
        if len(out) != nd or any(x < 0 for x in out):
            raise ValueError(f"tensor {name!r}: {what} {list(out)} must "
                             f"have {nd} non-negative entries (the local "
                             f"tensor's shape is {list(local.shape)})")
        return out
    return local, ints("global shape", gshape), ints("offsets", offs)


def set_region(model, name, global_shape, offsets):
    """wv_model_set_region: tensor `name` of `model` (already added) is the
    region at `offsets` of a tensor of `global_shape`."""
    if not _lib.has("wv_model_set_region"):
        raise error(_lib.UNSUPPORTED, "this libweightvault has no "
                    "wv_model_set_region (regions of global tensors need "
                    "a library with multi-writer checkpoints)")
    nd = len(global_shape)
    g = (ctypes.c_uint64 * max(nd, 1))(*global_shape)
    o = (ctypes.c_uint64 * max(nd, 1))(*offsets)
    check(_lib.lib().wv_model_set_region(model.ptr, _lib.enc(name), g, o),
          lambda: f"tensor {name!r}: {model.errmsg()}")


def build_model(obj, metadata=None, regions=False):
    """A Model borrowing every tensor of `obj` (see :func:`state_dict_of`).
    With `regions`, a value may also be a (local tensor, global shape,
    offsets) triple (:func:`region_of`): a region of a global tensor."""
    m = Model.new()
    # a set weightvault.load made: the dtypes NumPy/torch hold as raw bits
    recorded = getattr(obj, "dtypes", None) or {}
    try:
        for name, value in state_dict_of(obj).items():
            name = str(name)
            reg = region_of(name, value) if regions else None
            if reg is None:
                add_value(m, name, value, recorded.get(name))
            else:
                add_value(m, name, reg[0], recorded.get(name))
                set_region(m, name, reg[1], reg[2])
        for k, v in (metadata or {}).items():
            m.set_meta(str(k), meta_str(v))
    except BaseException:
        m.free()
        raise
    return m


# -- a tensor set -> Python objects ---------------------------------------

def _view(model, ptr, nbytes):
    """A ctypes buffer at `ptr` that keeps `model` alive."""
    buf = (ctypes.c_char * nbytes).from_address(ptr)
    buf._wv_owner = model
    return buf


def _block_bytes(dtype):
    e, b = ctypes.c_size_t(), ctypes.c_size_t()
    check(_lib.lib().wv_dtype_block(dtype_id(dtype), ctypes.byref(e),
                                    ctypes.byref(b)))
    return e.value, b.value


def numpy_array(model, dtype, shape, ptr, nbytes, writable=True):
    """A NumPy array over a tensor's bytes, owning a reference to `model`.

    BF16 comes as uint16 and FP8 as uint8 (their raw bits: NumPy has no such
    types); a block-quantised tensor (GGUF Q4_0, Q8_0, ...) as its raw uint8
    blocks, with the innermost extent in bytes.
    """
    npdt = _NP_OF.get(dtype)
    if npdt is None:
        elems, bbytes = _block_bytes(dtype)
        npdt = np.uint8
        if shape:
            shape = shape[:-1] + (shape[-1] // elems * bbytes,)
    if nbytes == 0:
        return np.zeros(shape, npdt)
    a = np.frombuffer(_view(model, ptr, nbytes), dtype=npdt).reshape(shape)
    if not writable:
        a.flags.writeable = False
    return a


def torch_tensor(model, dtype, shape, ptr, nbytes, writable=True):
    """A torch tensor sharing the tensor's bytes (through torch.from_numpy).

    Exact types torch 1.13 lacks: U16 and U32 are widened to int32 and int64
    (a copy); U64 raises TypeError; FP8 and block types come as uint8 bits.
    """
    return array_to_torch(numpy_array(model, dtype, shape, ptr, nbytes,
                                      writable), dtype)


def array_to_torch(a, dtype):
    """The torch tensor of NumPy array `a` holding a tensor of `dtype` (as
    :func:`numpy_array` gives it): shared memory where torch has the type
    (BF16 reinterpreted from its uint16 bits), U16/U32 widened to int32 and
    int64 (a copy), U64 refused (TypeError); a read-only array is copied."""
    torch = _torch()
    if dtype == "BF16":
        return _from_numpy(torch, a.view(np.int16)).view(torch.bfloat16)
    if dtype == "U16":
        return torch.from_numpy(a.astype(np.int32))
    if dtype == "U32":
        return torch.from_numpy(a.astype(np.int64))
    if dtype == "U64":
        raise TypeError("torch has no uint64; load it with framework='numpy'")
    return _from_numpy(torch, a)


def numpy_to_torch(a, dtype):
    """torch.from_numpy(a), reinterpreting a BF16 tensor's uint16 bits."""
    torch = _torch()
    if dtype == "BF16":
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def _from_numpy(torch, a):
    if a.flags.writeable:
        return torch.from_numpy(a)
    # Only arrays over the library's read-only mapping get here; torch has no
    # read-only tensors, so copy rather than hand out one that would crash
    # on an in-place write.
    return torch.from_numpy(a.copy())


def to_dict(model, framework, writable=True, rename=None):
    """The tensors of `model` as a dict name -> array/tensor (zero copy);
    `rename` maps library names to the names to return. The library has
    already selected the tensors asked for (wv_load_opts.names,
    wv_checkout_opts.names)."""
    if framework == "numpy":
        conv = numpy_array
    elif framework == "torch":
        conv = torch_tensor
    else:
        raise ValueError(f"framework must be 'numpy' or 'torch', not "
                         f"{framework!r}")
    out = Tensors()
    out.dtypes = {}
    for name, dtype, shape, ptr, nbytes in model.tensors():
        if rename:
            name = rename.get(name, name)
        out[name] = conv(model, dtype, shape, ptr, nbytes, writable)
        out.dtypes[name] = dtype
    out.metadata = model.metadata()
    out.format = model.source_format()
    return out


def name_array(names):
    """`names` (None: all) as (C array, count) for the names/n_names of
    wv_load_opts or wv_checkout_opts; the array must outlive the call. An
    empty list selects nothing (names non-NULL, n_names 0)."""
    if names is None:
        return None, 0
    names = [_lib.enc(n) for n in names]
    return (ctypes.c_char_p * max(len(names), 1))(*names), len(names)


class Tensors(dict):
    """The dict :func:`weightvault.load` returns: name -> array or tensor.

    Attributes:
        metadata: dict of the file's or checkpoint's string metadata.
        format: the source format ("safetensors", "pth", ...), or None for a
            repository checkout.
        checkpoint: the checkpoint id for a repository checkout, else None.
        dtypes: name -> the stored dtype ("F32", "BF16", ...), which tells
            BF16 from U16 when NumPy holds both as uint16. Saving or
            committing the dict stores each array that still has its
            carrier dtype (uint16 for BF16, uint8 for FP8 and GGUF blocks)
            as the dtype recorded here.
    """

    dtypes = None
    metadata = None
    format = None
    checkpoint = None


# -- files ------------------------------------------------------------------

def _tf_bundle_input(path):
    """True for the ways of naming a TensorFlow bundle that need the
    library to find its other files: a directory (SavedModel), a
    ``checkpoint`` state file, a .index or .data-NNNNN-of-NNNNN file, or a
    prefix (no such file, but PREFIX.index exists)."""
    base = os.path.basename(path.rstrip(os.sep))
    return (os.path.isdir(path) or base == "checkpoint"
            or path.endswith(".index")
            or re.search(r"\.data-[0-9]{5}-of-[0-9]{5}$", path) is not None
            or (not os.path.exists(path)
                and os.path.isfile(path + ".index")))


def load_file(path, framework="numpy", names=None, objects=False,
              max_expand=None):
    """Load a weights file; safetensors and uncompressed data stay mapped.

    The file is mapped by Python copy-on-write (MAP_PRIVATE, readable and
    writable) and parsed with ``wv_model_load_mem``, so tensors the format
    stores plainly point into that mapping: nothing is read until touched,
    writing to an array changes private pages only (never the file), and
    torch gets writable tensors. A Hugging Face shard index (*.json) and a
    TensorFlow bundle (named by its prefix, .index, data file, checkpoint
    file or SavedModel directory) and an ONNX model (*.onnx, whose external
    data files lie beside it) are loaded by path with ``wv_model_load``;
    its NumPy arrays are then
    read-only views of the library's own read-only mapping (torch gets
    copies, since torch tensors cannot be read-only).

    max_expand: the library's amplification bound (wv_load_opts.max_expand,
    see weightvault.load); None or 0: $WV_MAX_EXPAND, else the default.
    """
    path = os.fspath(path)
    names = None if names is None else list(names)
    L = _lib.lib()
    if max_expand is not None and (isinstance(max_expand, bool) or
                                   not isinstance(max_expand, int) or
                                   not 0 <= max_expand < 1 << 64):
        raise ValueError("max_expand must be an int from 0 (the default) "
                         "to 2**64 - 1")
    eb = ctypes.create_string_buffer(_lib.ERRBUF_SIZE)
    opts = _lib.init_struct(_lib.LoadOpts, errbuf=ctypes.addressof(eb),
                            errbuf_size=_lib.ERRBUF_SIZE,
                            flags=_lib.LOAD_OBJECTS if objects else 0,
                            max_expand=max_expand or 0)
    out = ctypes.c_void_p()
    # ONNX by path too: its external data files are found beside it.
    if (path.endswith(".json") or path.endswith(".onnx")
            or _tf_bundle_input(path)):
        # A shard index reads only the shards holding the names asked for.
        arr, opts.n_names = name_array(names)
        opts.names = arr
        rc = L.wv_model_load(_lib.enc(path), ctypes.byref(opts),
                             ctypes.byref(out))
        check(rc, lambda: _lib.dec(eb.value))
        return to_dict(Model(out.value), framework, writable=False)
    try:
        f = open(path, "rb")
    except FileNotFoundError as e:
        raise error(_lib.NOTFOUND, f"{_lib.show(path)}: {e.strerror}") \
            from None
    except OSError as e:
        raise error(_lib.IO, f"{_lib.show(path)}: {e.strerror}") from None
    with f:
        addr, size, keep = _map_copy_on_write(f)
    rename = None
    if size >= len(_NPY_MAGIC) and \
            ctypes.string_at(addr, len(_NPY_MAGIC)) == _NPY_MAGIC:
        # Parsed from memory, the library names a .npy's tensor "array";
        # name it after the file as wv_model_load does ("w.npy" -> "w"),
        # and ask the library for "array" when the stem is asked for.
        base = os.path.basename(path)
        dot = base.rfind(".")
        stem = base[:dot] if dot > 0 else base
        if stem and stem != "array":
            rename = {"array": stem}
            if names is not None:
                if "array" in names:  # not a name this file has
                    Model(None, keep).free()
                    raise error(_lib.NOTFOUND, f"{_lib.show(path)}: no "
                                "tensor named 'array'")
                names = ["array" if n == stem else n for n in names]
    arr, opts.n_names = name_array(names)
    opts.names = arr
    rc = L.wv_model_load_mem(addr, size, ctypes.byref(opts), ctypes.byref(out))
    if rc != _lib.OK:
        Model(None, keep).free()
        # The library names the source "<memory>"; name the file instead.
        raise error(rc, _lib.dec(eb.value).replace("<memory>",
                                                   _lib.show(path)))
    return to_dict(Model(out.value, keep), framework, rename=rename)


def dest_of(name, value, caller="weightvault.load_into"):
    """(dtype name or None, shape, address, nbytes, numpy dtype or None) of
    an array or tensor that tensor `name` may be copied into in place."""
    what = f"{caller}: {name!r}"
    if _is_torch_tensor(value):
        t = value.detach()
        if (t.device.type != "cpu" or not t.is_contiguous() or t.is_conj()
                or t.is_neg()):
            raise TypeError(f"{what} must be a contiguous CPU tensor to be "
                            "filled in place")
        return (_torch_dtype_names().get(t.dtype), tuple(t.shape),
                t.data_ptr(), t.numel() * t.element_size(), None)
    if isinstance(value, np.ndarray):
        if (not value.flags.c_contiguous or not value.flags.writeable
                or value.dtype.byteorder == ">"):
            raise TypeError(f"{what} must be a writable, C-contiguous, "
                            "little-endian array to be filled in place")
        return (_NAME_OF_NP.get(value.dtype.str[1:]), tuple(value.shape),
                value.ctypes.data, value.nbytes, value.dtype)
    raise TypeError(f"{what} is a {type(value).__name__}, not a torch "
                    "tensor or a NumPy array")


def dest_holds(dtype, shape, tdt, tshape, npdt):
    """True if a destination as :func:`dest_of` describes it (dtype name
    `tdt`, shape `tshape`, NumPy dtype `npdt`) holds a tensor of `dtype`
    and `shape` as it is stored: the same dtype, or in NumPy the type that
    holds its bits (BF16 as uint16, FP8 as uint8)."""
    raw = _NP_OF.get(dtype)
    return tshape == shape and (tdt == dtype or (
        npdt is not None and raw is not None and npdt == np.dtype(raw)))


def load_file_into(path, target, strict=True):
    """Copy the tensors of a weights file into arrays/tensors in place.

    The file is mapped (``wv_model_load``) and ``wv_model_read_all`` copies
    every tensor into its destination on every core: one copy, nothing
    allocated. Returns {"tensors": n, "bytes": b} of what was copied.
    """
    path = os.fspath(path)
    target = state_dict_of(target, "weightvault.load_into")
    L = _lib.lib()
    if not _lib.has("wv_model_read_all"):
        raise error(_lib.MISUSE, "this libweightvault has no "
                    "wv_model_read_all")
    eb = ctypes.create_string_buffer(_lib.ERRBUF_SIZE)
    opts = _lib.init_struct(_lib.LoadOpts, errbuf=ctypes.addressof(eb),
                            errbuf_size=_lib.ERRBUF_SIZE)
    out = ctypes.c_void_p()
    rc = L.wv_model_load(_lib.enc(path), ctypes.byref(opts),
                         ctypes.byref(out))
    check(rc, lambda: _lib.dec(eb.value))
    m = Model(out.value)
    try:
        tensors = list(m.tensors())
        dst = (ctypes.c_void_p * max(1, len(tensors)))()
        done, nbytes_all = set(), 0
        for i, (name, dtype, shape, _, nbytes) in enumerate(tensors):
            if name not in target:
                if strict:
                    raise error(_lib.NOTFOUND, f"{_lib.show(path)}: "
                                f"tensor {name!r} "
                                "has no destination (strict=False skips it)")
                continue
            tdt, tshape, addr, tbytes, npdt = dest_of(name, target[name])
            fits = tbytes == nbytes and (
                dest_holds(dtype, shape, tdt, tshape, npdt) or
                # block-quantised (GGUF): raw uint8 bytes, any shape
                (_NP_OF.get(dtype) is None and tdt == "U8"))
            if not fits:
                raise ValueError(
                    f"weightvault.load_into: {name!r} is {dtype} "
                    f"{list(shape)} in {_lib.show(path)}, but the "
                    "destination is "
                    f"{tdt or 'of another dtype'} {list(tshape)}")
            if nbytes:
                dst[i] = addr
            done.add(name)
            nbytes_all += nbytes
        if strict:
            extra = [k for k in target if k not in done]
            if extra:
                raise error(_lib.NOTFOUND, f"{_lib.show(path)} has no "
                            "tensor named "
                            f"{extra[0]!r}" + (f" (and {len(extra) - 1} "
                                                f"more)" if len(extra) > 1
                                                else "") +
                            " (strict=False leaves it as it is)")
        check(L.wv_model_read_all(m.ptr, dst, len(tensors)), m.errmsg)
    finally:
        m.free()
    return {"tensors": len(done), "bytes": nbytes_all}


def _map_copy_on_write(f):
    """(address, size, [ctypes view, mmap]) of a private writable mapping of
    the open file `f` (address None for an empty file)."""
    size = os.fstat(f.fileno()).st_size
    if not size:
        return None, 0, []
    mm = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY)
    view = (ctypes.c_char * size).from_buffer(mm)
    return ctypes.addressof(view), size, [view, mm]


def save_file(model, path, format=None, cast=None, progress=None,
              template=None):
    """wv_model_save: durable and atomic (temp file, fsync, rename).
    progress(done, total): bytes written so far, of about how many (see
    wv_save_opts.progress); an exception it raises is re-raised after.
    template: the .onnx model an ONNX output replaces the initializers of,
    or the Keras file whose layout a .h5/.weights.h5 output fills."""
    L = _lib.lib()
    opts = _lib.init_struct(_lib.SaveOpts)
    prog = _lib.Progress(progress)
    prog.set(opts)
    if template is not None:
        opts.template_path = _lib.enc(os.fspath(template))
    if format is not None:
        f = ctypes.c_int()
        check(L.wv_format_from_name(_lib.enc(format), ctypes.byref(f)),
              f"unknown format {format!r}")
        opts.format = f.value
    if cast is not None:
        if _lib.has("wv_dtype_parse"):  # "bf16", "float16", "fp32" ...
            c = ctypes.c_int()
            check(L.wv_dtype_parse(_lib.enc(cast), ctypes.byref(c)),
                  f"unknown dtype {cast!r}")
            opts.cast = c.value
        else:
            opts.cast = dtype_id(cast)
    rc = L.wv_model_save(model.ptr, _lib.enc(os.fspath(path)),
                         ctypes.byref(opts))
    check(rc, model.errmsg)
    prog.reraise()
