"""weightvault: save, load and version neural-network weights from Python.

A pure-Python binding (ctypes) of libweightvault's public C API::

    import weightvault as wv

    wv.save(model, "model.safetensors", metadata={"epoch": 3})  # nn.Module,
    sd = wv.load("model.safetensors", framework="torch")        # state_dict
    arrays = wv.load("model.npz")                               # or numpy
    cid = wv.save(model.state_dict(), "./ckpts@main")           # repository
    sd = wv.load("./ckpts@latest", framework="torch", names=["fc.weight"])
    wv.Repository("./ckpts").push("s3://team/run1")             # push, pull,
    wv.clone("s3://team/run1", "./mine")                        # clone

    ck = wv.Checkpointer("./ckpts", every=100, keep_last=3)
    start = ck.restore_latest(model, optimizer) or 0
    for step in range(start + 1, total + 1):
        ...
        ck.save(step, model, optimizer, {"loss": loss.item()})

No copies: saving borrows the tensors' memory (``WV_DATA_BORROW``); loading a
safetensors file maps it and returns arrays that point into the mapping;
loading a repository checkpoint returns arrays over the library's buffers.
An array keeps the memory it points into alive on its own: dropping the dict
(or anything else) never invalidates it.

The shared library is looked up as described in :mod:`weightvault._lib`
(``$WEIGHTVAULT_LIB`` first).
"""

import os

from . import _lib
from ._model import (Tensors, build_model, load_file, load_file_into,
                     save_file)
from .checkpoint import Checkpointer
from .errors import (AuthError, BusyError, ConflictError, CorruptError, ExistsError,
                     FormatError,
                     NotFoundError, UnsupportedError, UsageError,
                     WeightvaultError, WeightvaultIOError)
from .repo import Repository, clone, split_target, sync
from . import distributed  # noqa: E402,F401  (weightvault.distributed)

__all__ = ["save", "load", "load_into", "Checkpointer", "Repository",
           "Tensors", "WeightvaultError", "NotFoundError", "CorruptError", "FormatError",
           "ExistsError", "ConflictError", "WeightvaultIOError", "UsageError",
           "UnsupportedError", "AuthError", "BusyError", "library_version",
           "library_path", "clone", "sync"]

__version__ = "0.1.0"


def save(obj, target, *, metadata=None, format=None, cast=None,
         message=None, sign_key=None, progress=None, template=None):
    """Save tensors to a file or a repository.

    Args:
        obj: a torch state_dict (or any mapping name -> torch tensor), an
            ``nn.Module`` (its ``state_dict()``), or a dict of NumPy arrays.
            Contiguous CPU tensors/arrays are handed to the library without
            a copy; others are made contiguous on the CPU first. bfloat16 is
            kept as BF16.
        target: a file path (for TF.js a directory: ``"web/"`` or an
            existing directory holds model.json and its .bin shards, made
            if missing), or a repository: ``"./ckpts@main"`` (commit to
            branch main, creating the repository if missing), ``"mem://x"``,
            ``"file:///abs/ckpts@exp1"``, or an existing repository
            directory (branch main). See :func:`weightvault.repo.split_target`.
        metadata: dict of string metadata (non-strings are stored as JSON).
            The npy, npz and MXNet formats cannot hold any.
        format: file format name ("safetensors", "npz", "pth", "gguf", ...)
            when the extension does not tell it.
        cast: "F32", "F16" or "BF16" (any case; aliases such as "fp16",
            "bfloat16" or "float32" too): convert every floating-point
            tensor while writing (files only).
        message: the checkpoint's log message (repositories only).
        sign_key: sign the checkpoint with this Ed25519 secret key file
            (``wv keygen -o NAME`` writes NAME.key; repositories only). A
            repository that trusts keys (``wv trust add``) refuses unsigned
            commits.
        progress: ``progress(done, total)`` in bytes of tensor data, as
            the file is written or the checkpoint stored; an exception it
            raises is re-raised once the save is over.
        template: for an ONNX target (``.onnx``, required there): the model
            whose initializers the tensors replace by name, everything else
            of it kept (as ``wv convert --template``). For a Keras target
            (``.h5``, ``.weights.h5``): a Keras file of the model whose
            layout and metadata the file gets, filled with the tensors by
            name (the template's tensor names) or else by order and shape;
            a tensor that does not fit raises FormatError naming it.

    Returns:
        The checkpoint id (64 hex digits) for a repository, else the path.

    Files are written atomically and durably (temp file, fsync, rename).
    Raises WeightvaultError subclasses on failure (the file is untouched),
    TypeError for objects that are not tensors/arrays or have a dtype no
    format holds (complex128, object arrays).
    """
    repo = split_target(target)
    if repo is not None:
        uri, ref = repo
        if cast is not None or template is not None:
            raise ValueError("cast and template apply to files, not "
                             "repositories")
        with Repository(uri, create=True) as r:
            return r.commit(obj, ref, metadata=metadata, message=message,
                            sign_key=sign_key, progress=progress)
    if sign_key is not None:
        raise ValueError("sign_key applies to repositories, not files")
    m = build_model(obj, metadata)
    try:
        save_file(m, target, format=format, cast=cast, progress=progress,
                  template=template)
    finally:
        m.free()
    return os.fspath(target)


def load(source, *, framework="numpy", names=None, objects=False,
         max_expand=None, verify_signer=None):
    """Load tensors from a file or a repository checkpoint.

    Args:
        source: a file (any format libweightvault reads, detected from the
            content; a Hugging Face ``*.index.json`` loads its shards), or a
            repository target ``"./ckpts@REF"`` (REF: a branch, ``latest``,
            a tag or an id prefix; default latest), ``"mem://x@REF"``, or a
            repository directory.
        framework: "numpy" (arrays) or "torch" (tensors).
        names: only these tensors (NotFoundError if one is missing). For a
            repository, only their chunks are read.
        objects: a .pth/.pt whole-model or object pickle
            (``torch.save(model)``) is read: classes weightvault does not
            know become inert placeholders (nothing is imported or run) and
            a module's tensors get the names of its ``state_dict()``.
            Without it such files are refused.
        max_expand: files only: the bound on what a load may make of a
            file: its tensors' bytes, and what a reader allocates beyond
            the file (inflated zip members, decoded tensors), are each at
            most this many times the file's size plus 1 MiB, else
            UsageError naming the file. Default: $WV_MAX_EXPAND, else 64.
        verify_signer: repositories only: a public key file (``wv keygen``'s
            NAME.pub); the checkpoint must carry a valid signature by that
            key, else AuthError.

    Returns:
        A :class:`Tensors` dict name -> array/tensor, in file order, with
        ``.metadata`` (dict), ``.format`` and ``.checkpoint`` attributes.

    Zero copy: for a safetensors file (and plainly stored tensors of other
    formats) the arrays point into a private copy-on-write mapping of the
    file (writes never reach the file); for a repository they point into
    the buffers the checkout filled. Each array keeps that memory alive as
    long as it (or a tensor made from it) lives.

    dtypes: BF16 is torch.bfloat16 (NumPy: its uint16 bits), FP8 and GGUF
    block types are raw uint8; torch has no U16/U32/U64: U16 and U32 are
    widened (copied) to int32/int64, U64 raises TypeError.
    """
    repo = split_target(source)
    if repo is not None:
        uri, ref = repo
        if max_expand is not None:
            raise ValueError("max_expand applies to files, not repositories")
        with Repository(uri) as r:
            return r.checkout(ref or "latest", framework=framework,
                              names=names, verify_signer=verify_signer)
    if verify_signer is not None:
        raise ValueError("verify_signer applies to repositories, not files")
    return load_file(source, framework=framework, names=names,
                     objects=objects, max_expand=max_expand)


def load_into(source, target, *, strict=True):
    """Copy the tensors of a weights file into arrays or tensors you have.

    The resume path that allocates nothing: the file is mapped and every
    tensor copied, on every core, straight into its destination (a
    model's parameters, a dict of preallocated arrays). The same copy in
    C (``wv_model_read_all``) measured 7.2x faster than ``torch.load`` on
    a 1 GiB set (bench_io).

    Args:
        source: a weights file in any format the library reads (a
            safetensors file is mapped; the others are read as ``load``
            reads them). Not a repository target: use
            ``Repository.checkout``.
        target: an ``nn.Module`` (its ``state_dict()``: parameters and
            buffers are written in place) or a dict name -> NumPy array /
            torch tensor. Each destination must be writable, contiguous,
            on the CPU, with the tensor's dtype and shape (NumPy: BF16 and
            FP8 into uint16/uint8 arrays of their bits).
        strict: every tensor of the file needs a destination and every
            destination a tensor (NotFoundError otherwise, before anything
            is written); False copies the names both have.

    Returns:
        ``{"tensors": n, "bytes": b}``: what was copied.

    Like ``load_state_dict``, call it outside a forward/backward pass: the
    bytes are written behind autograd's back.
    """
    if split_target(source) is not None:
        raise ValueError("weightvault.load_into reads a file; for a "
                         "repository use Repository.checkout")
    return load_file_into(source, target, strict=strict)


def library_version():
    """The version string of the loaded libweightvault ("0.1.0")."""
    return _lib.dec(_lib.lib().wv_version_string())


def library_path():
    """The path the shared library was loaded from."""
    return _lib.lib().path
