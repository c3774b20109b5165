"""Checkpoint repositories (versioned, deduplicated; docs/repo-format.md).

A :class:`Repository` wraps one ``wv_repo *``::

    with weightvault.Repository("ckpts", create=True) as r:
        cid = r.commit(model, metadata={"step": 100}, message="epoch 1")
        sd = r.checkout("latest", framework="torch")   # zero-copy tensors
        r.prune(keep_last=3)
        r.gc()

A repository URI is a directory path, ``file:///path``, ``s3://BUCKET/PREFIX``,
``rados://POOL/PREFIX`` or ``mem://name`` (in-process, for tests): what
``wv_repo_open`` accepts.

Checkpoints move between repositories with :meth:`Repository.push`,
:meth:`Repository.pull`, :func:`clone` and :func:`sync` (``wv_repo_sync``,
what ``wv push``/``pull``/``clone`` run)::

    with weightvault.Repository("ckpts") as r:
        r.push("s3://team/run1")                  # every branch and tag
        r.pull("s3://team/run1", branch="main")   # fast-forward only
    weightvault.clone("s3://team/run1", "./mine")
"""

import ctypes
import os

from . import _lib
import numpy as np

from ._model import (_NP_OF, Model, array_to_torch, build_model,
                     dest_holds, dest_of, dtype_name, name_array, to_dict)
from .errors import ExistsError, NotFoundError, check, error


def split_target(target):
    """(uri, ref) if `target` names a repository, else None (a file).

    A target is a repository when it
      * has a URL scheme ("mem://run1", "file:///data/ckpts@best"), or
      * ends in "@REF" where REF has no '/' or ':' and is not a file name
        with a weights extension ("./ckpts@main"; "w@2.safetensors" stays a
        file), or
      * is an existing directory holding a ``config`` object.
    The "@REF" suffix is split off (ref None when absent), as ``wv`` does.
    """
    s = os.fspath(target)
    at = s.rfind("@")
    if at > 0 and at + 1 < len(s) and not any(c in s[at + 1:] for c in "/:"):
        ref = s[at + 1:]
        fmt = ctypes.c_int()
        if not (os.path.isfile(s) or _lib.lib().wv_format_from_path(
                _lib.enc(ref), ctypes.byref(fmt)) == _lib.OK):
            return s[:at], ref
    if "://" in s:
        return s, None
    if os.path.isdir(s) and os.path.exists(os.path.join(s, "config")):
        return s, None
    return None


def _split_branch(uri, branch):
    """(uri, branch) with a trailing "@BRANCH" of `uri` split off, as the
    CLI takes ``REMOTE@BRANCH``; ValueError if it names another branch
    than `branch`."""
    s = os.fspath(uri)
    at = s.rfind("@")
    if at > 0 and at + 1 < len(s) and not any(c in s[at + 1:] for c in "/:"):
        if branch is not None and branch != s[at + 1:]:
            raise ValueError(f"two branches given: {s[at + 1:]!r} in "
                             f"{s!r} and branch={branch!r}")
        return s[:at], s[at + 1:]
    return s, branch


def _no_distributed(fn):
    return error(_lib.UNSUPPORTED, f"this libweightvault has no {fn}: "
                 "multi-writer checkpoints need a newer library")


def _part_opts(txn, writer, n_writers, finish):
    """wv_part_opts, after checking the arguments' types and range (the
    library checks the txn name)."""
    if not isinstance(txn, str) or not txn:
        raise ValueError(f"txn must be a non-empty str, not {txn!r}")
    for what, v in (("writer", writer), ("n_writers", n_writers)):
        if isinstance(v, bool) or not isinstance(v, int) or \
                not 0 <= v < 1 << 32:
            raise ValueError(f"{what} must be an int from 0 to 2**32-1, "
                             f"not {v!r}")
    if n_writers < 1 or writer >= n_writers:
        raise ValueError(f"writer {writer} of {n_writers}: need "
                         "0 <= writer < n_writers")
    return _lib.init_struct(_lib.PartOpts, txn=_lib.enc(txn), writer=writer,
                            n_writers=n_writers, no_finish=int(not finish))


def _writers(fn, c, i):
    """wv_checkpoint_tensor_writers of tensor i as a list."""
    n = fn(c, i, None, 0)
    buf = (ctypes.c_uint32 * max(n, 1))()
    n = min(n, fn(c, i, buf, n))
    return list(buf[:n])


def sync(src, dst, *, branch=None, force=False, jobs=4, create=True,
         progress=None):
    """Copy checkpoints from repository `src` to repository `dst`
    (``wv_repo_sync``; what ``wv push``, ``wv pull`` and ``wv clone`` do).

    Either side is any repository URI (a directory, ``file://``,
    ``s3://``, ``rados://``, ``mem://``). Only the objects `dst` lacks are
    copied, data first and refs last, each ref by compare-and-swap, so
    `dst` never names a checkpoint it does not hold in full; an
    interrupted transfer is resumed by calling this again.

    Args:
        branch: move only this branch (and copy what it needs); default:
            every branch and tag.
        force: move a destination branch that diverged from the source's
            (dropping the destination's own checkpoints from it) or a tag
            that points elsewhere. Without it such a ref is left as it was
            and ConflictError is raised (after the data was copied).
        jobs: objects transferred at once (1 to 32).
        create: create `dst` with the source's configuration (and key
            slots, if encrypted) when it is not a repository yet; with
            False, NotFoundError instead.
        progress: ``progress(done_bytes, total_bytes)``, called from the
            transfer threads (one at a time) after each object; the
            total covers the whole transfer (key slots, packs, indexes
            and manifests) and done grows up to it. An exception it
            raises does not stop the transfer; it is re-raised when it
            is over.

    Returns:
        A dict: ``objects`` (data objects the source has),
        ``objects_copied``, ``bytes_copied``, ``refs_updated``,
        ``refs_unchanged``, ``requests``, ``bytes_sent``,
        ``bytes_received``, ``chunks_verified`` (the keys of ``wv push
        --json``).

    Raises the library's error (ConflictError for a diverged or
    concurrently moved ref, NotFoundError, AuthError, ...) with its
    message; the exception's ``result`` attribute holds what was done
    before the failure. An encrypted repository is opened with
    ``$WV_PASSPHRASE`` or ``$WV_KEY_FILE`` (``wv_repo_sync`` takes no
    secret); a clone is encrypted with the same key.
    """
    if not _lib.has("wv_repo_sync"):
        raise error(_lib.UNSUPPORTED, "this libweightvault has no "
                    "wv_repo_sync")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or \
            not 1 <= jobs <= 32:
        raise ValueError("jobs must be an int from 1 to 32")
    eb = ctypes.create_string_buffer(_lib.ERRBUF_SIZE)
    o = _lib.init_struct(_lib.SyncOpts, branch=_lib.enc(branch), jobs=jobs,
                         force=int(bool(force)), no_create=int(not create),
                         errbuf=ctypes.addressof(eb),
                         errbuf_size=_lib.ERRBUF_SIZE)
    prog = _lib.Progress(progress)
    prog.set(o)
    res = _lib.SyncResult()
    rc = _lib.lib().wv_repo_sync(_lib.enc(os.fspath(src)),
                                 _lib.enc(os.fspath(dst)), ctypes.byref(o),
                                 ctypes.byref(res))
    out = {"objects": res.objects_total,
           "objects_copied": res.objects_copied,
           "bytes_copied": res.bytes_copied,
           "refs_updated": res.refs_updated,
           "refs_unchanged": res.refs_unchanged,
           "requests": res.requests,
           "bytes_sent": res.bytes_sent,
           "bytes_received": res.bytes_received,
           "chunks_verified": res.chunks_verified}
    if rc != _lib.OK:
        e = error(rc, _lib.dec(eb.value))
        e.result = out
        raise e
    prog.reraise()
    return out


def clone(src, dst, *, jobs=4, progress=None):
    """Make repository `dst` a copy of `src`: every branch, tag and
    checkpoint (``wv clone``). `dst` is created with the source's
    configuration; if it exists (an interrupted clone, or a repository
    the two share history with) only what it lacks is copied and its refs
    move forward. Returns :func:`sync`'s dict; raises as :func:`sync`."""
    return sync(src, dst, jobs=jobs, create=True, progress=progress)


class Repository:
    """An open checkpoint repository.

    Args:
        uri: directory path, ``file:///path`` or ``mem://name``.
        create: initialise the repository first if it does not exist
            (``compression``, ``level``, ``chunk_size``, ``pack_size`` are then
            used as in ``wv init``).

    An encrypted repository is opened with `passphrase` or `key_file` (a
    raw key file from ``wv keygen --secret``, or a file holding a
    passphrase), else ``$WV_PASSPHRASE`` or ``$WV_KEY_FILE``; AuthError
    if none is given or it is wrong ("wrong key"). With `create` and
    `encrypt`, a new repository is encrypted with that secret.

    Raises NotFoundError if there is no repository at `uri` (and not
    `create`). Close it with :meth:`close` or a ``with`` block; it is also
    closed when garbage-collected. Arrays returned by :meth:`checkout` do not
    depend on the repository staying open.
    """

    def __init__(self, uri, *, create=False, compression=None, level=None,
                 chunk_size=None, pack_size=None, passphrase=None,
                 key_file=None, encrypt=False, delta_keyframe=None):
        self.uri = os.fspath(uri)
        self._ptr = None
        self._secret = (passphrase, key_file)
        try:
            self._open()
        except NotFoundError:
            if not create:
                raise
            try:
                Repository.init(self.uri, compression=compression,
                                level=level, chunk_size=chunk_size,
                                pack_size=pack_size, encrypt=encrypt,
                                passphrase=passphrase, key_file=key_file,
                                delta_keyframe=delta_keyframe)
            except ExistsError:
                pass  # another process created it meanwhile
            self._open()

    def _open(self):
        eb = ctypes.create_string_buffer(_lib.ERRBUF_SIZE)
        p = ctypes.c_void_p()
        passphrase, key_file = self._secret
        if passphrase is None and key_file is None:
            rc = _lib.lib().wv_repo_open(_lib.enc(self.uri), eb,
                                         _lib.ERRBUF_SIZE, ctypes.byref(p))
        else:
            if not _lib.has("wv_repo_open_ex"):
                raise error(_lib.UNSUPPORTED, "this libweightvault cannot "
                            "open encrypted repositories")
            o = _lib.init_struct(_lib.OpenOpts,
                                 passphrase=_lib.enc(passphrase),
                                 key_file=_lib.enc(key_file and
                                                   os.fspath(key_file)),
                                 errbuf=ctypes.addressof(eb),
                                 errbuf_size=_lib.ERRBUF_SIZE)
            rc = _lib.lib().wv_repo_open_ex(_lib.enc(self.uri),
                                            ctypes.byref(o), ctypes.byref(p))
        check(rc, lambda: _lib.dec(eb.value))
        self._ptr = p.value

    @staticmethod
    def init(uri, *, compression=None, level=None, chunk_size=None,
             pack_size=None, encrypt=False, passphrase=None, key_file=None,
             delta_keyframe=None):
        """Create an empty repository (ExistsError if one is there);
        with `encrypt`, encrypted with `passphrase` or `key_file` (else
        $WV_PASSPHRASE / $WV_KEY_FILE). `delta_keyframe` K (2..65,
        EXPERIMENTAL) stores a changed chunk as its difference to its
        keyframe (the same chunk as last stored whole) when that is
        smaller, whole at least every K commits;
        None, 0 or 1: no deltas (as ``wv init --delta-keyframe``)."""
        eb = ctypes.create_string_buffer(_lib.ERRBUF_SIZE)
        o = _lib.init_struct(_lib.InitOpts, compression=b"zstd-bg", level=1,
                             chunk_size=4 << 20, pack_size=32 << 20,
                             errbuf=ctypes.addressof(eb),
                             errbuf_size=_lib.ERRBUF_SIZE,
                             encrypt=1 if encrypt else 0,
                             passphrase=_lib.enc(passphrase),
                             key_file=_lib.enc(key_file and
                                               os.fspath(key_file)))
        if compression is not None:
            o.compression = _lib.enc(compression)
        if level is not None:
            o.level = level
        if chunk_size is not None:
            o.chunk_size = chunk_size
        if pack_size is not None:
            o.pack_size = pack_size
        if delta_keyframe:
            o.delta_keyframe = delta_keyframe
        check(_lib.lib().wv_repo_init(_lib.enc(os.fspath(uri)),
                                      ctypes.byref(o)),
              lambda: _lib.dec(eb.value))

    @property
    def ptr(self):
        if not self._ptr:
            raise ValueError("the repository is closed")
        return self._ptr

    def _msg(self):
        return _lib.dec(_lib.lib().wv_repo_errmsg(self._ptr))

    def close(self):
        """Close the repository (waits for its background work); idempotent."""
        p, self._ptr = self._ptr, None
        if p:
            _lib.lib().wv_repo_close(p)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # -- writing -----------------------------------------------------------
    def commit(self, obj, branch=None, *, metadata=None, message=None,
               sign_key=None, progress=None):
        """Store `obj` (state_dict, nn.Module, dict of arrays) as a new
        checkpoint on `branch` (default "main"); return its id (64 hex).

        The tensors are borrowed, not copied, while the library chunks,
        hashes and writes them. Durable and atomic when this returns; a
        concurrent writer is handled by re-parenting (ConflictError if the
        branch keeps moving).

        sign_key: an Ed25519 secret key file (``wv keygen -o NAME`` writes
        NAME.key) to sign the checkpoint with (``wv commit --sign``). A
        repository that trusts keys (``wv trust add``) refuses an unsigned
        commit, or one signed by a key it does not trust, with AuthError.

        progress: ``progress(done, total)``, bytes of tensor data chunked
        and stored so far, of all; an exception it raises is re-raised
        once the commit is over (the commit itself is not stopped).
        """
        m = build_model(obj, metadata)
        try:
            return self._commit_model(m, branch, message, sign_key,
                                      progress)
        finally:
            m.free()

    @staticmethod
    def _commit_opts(message, sign_key):
        return _lib.init_struct(_lib.CommitOpts, message=_lib.enc(message),
                                max_retries=16,
                                sign_key=_lib.enc(sign_key and
                                                  os.fspath(sign_key)))

    def _commit_model(self, m, branch, message, sign_key=None,
                      progress=None):
        o = self._commit_opts(message, sign_key)
        prog = _lib.Progress(progress)
        prog.set(o)
        cid = ctypes.create_string_buffer(_lib.ID_HEX)
        rc = _lib.lib().wv_repo_commit(self.ptr, m.ptr, _lib.enc(branch),
                                       ctypes.byref(o), cid)
        check(rc, self._msg)
        prog.reraise()
        return _lib.dec(cid.value)

    def commit_async(self, obj, branch=None, *, metadata=None, message=None,
                     sign_key=None):
        """Start a commit in the repository's background thread and return
        a :class:`PendingCommit` at once (`sign_key` as for :meth:`commit`;
        the library copies its name, not the key, now: the file is read
        when the commit runs).

        The tensors are copied now (``WV_ASYNC_COPY``; bounded by the
        library's staging limit, 1 GiB by default: the call blocks while
        it is full), so `obj` may change as soon as this returns: a
        training loop can go on while chunking, compression and writing
        happen. Commits run one after the other in the order started;
        every other call on this repository waits for them first.
        """
        if not _lib.has("wv_repo_commit_async"):
            raise error(_lib.UNSUPPORTED, "this libweightvault has no "
                        "wv_repo_commit_async")
        m = build_model(obj, metadata)
        try:
            o = self._commit_opts(message, sign_key)
            h = ctypes.c_void_p()
            rc = _lib.lib().wv_repo_commit_async(
                self.ptr, m.ptr, _lib.enc(branch), ctypes.byref(o),
                _lib.ASYNC_COPY, ctypes.byref(h))
            check(rc, self._msg)
        finally:
            m.free()  # the library holds its own copy
        return PendingCommit(h.value, self)

    # -- multi-writer checkpoints (weightvault.distributed) -------------------
    def commit_part(self, obj, branch=None, *, txn, writer, n_writers,
                    finish=True, metadata=None, message=None, sign_key=None,
                    progress=None):
        """Store writer `writer`'s share of the checkpoint all `n_writers`
        writers of transaction `txn` make together
        (``wv_repo_commit_part``); durable when this returns.

        `obj` as for :meth:`commit`, and a value may also be a (local
        tensor, global shape, offsets) triple: the region of a global
        tensor this writer holds. A whole tensor given by several writers
        must be bit-identical in each.

        Returns the checkpoint id if the checkpoint exists now (finished
        here or by another writer), None while parts are missing (the
        last writer, or :meth:`finish`, completes it). With
        ``finish=False`` this writer never finishes it.
        """
        part = _part_opts(txn, writer, n_writers, finish)
        m = build_model(obj, metadata, regions=True)
        try:
            if not _lib.has("wv_repo_commit_part"):
                raise _no_distributed("wv_repo_commit_part")
            o = self._commit_opts(message, sign_key)
            prog = _lib.Progress(progress)
            prog.set(o)
            cid = ctypes.create_string_buffer(_lib.ID_HEX)
            rc = _lib.lib().wv_repo_commit_part(
                self.ptr, m.ptr, _lib.enc(branch), ctypes.byref(part),
                ctypes.byref(o), cid)
        finally:
            m.free()
        if rc == _lib.BUSY:
            prog.reraise()
            return None
        check(rc, self._msg)
        prog.reraise()
        return _lib.dec(cid.value)

    def commit_part_async(self, obj, branch=None, *, txn, writer,
                          n_writers, finish=True, metadata=None,
                          message=None, sign_key=None):
        """:meth:`commit_part` in the repository's background thread
        (``wv_repo_commit_part_async``): the tensors are copied now, as
        :meth:`commit_async` copies them, and a :class:`PendingCommit`
        returned at once. Its wait() gives what commit_part() would have
        returned (the checkpoint id, or None while other writers' parts
        are missing) or raises the part's error."""
        part = _part_opts(txn, writer, n_writers, finish)
        if not _lib.has("wv_repo_commit_part_async"):
            raise _no_distributed("wv_repo_commit_part_async")
        m = build_model(obj, metadata, regions=True)
        try:
            o = self._commit_opts(message, sign_key)
            h = ctypes.c_void_p()
            rc = _lib.lib().wv_repo_commit_part_async(
                self.ptr, m.ptr, _lib.enc(branch), ctypes.byref(part),
                ctypes.byref(o), _lib.ASYNC_COPY, ctypes.byref(h))
            check(rc, self._msg)
        finally:
            m.free()  # the library holds its own copy
        return PendingCommit(h.value, self, part=True)

    def finish(self, txn, n_writers, branch=None, *, message=None,
               sign_key=None):
        """Finish transaction `txn` of `n_writers` writers
        (``wv_repo_finish``): merge its parts into one checkpoint and move
        `branch` to it; return its id. The same id whoever finishes, and
        again for a finished one. BusyError (naming the missing writers)
        while parts are missing; CorruptError naming the tensor and the
        writers when the parts do not make one checkpoint (overlapping
        regions with different bytes, a gap, different parents, ...)."""
        if not _lib.has("wv_repo_finish"):
            raise _no_distributed("wv_repo_finish")
        _part_opts(txn, 0, n_writers, True)  # checks the arguments
        o = self._commit_opts(message, sign_key)
        cid = ctypes.create_string_buffer(_lib.ID_HEX)
        check(_lib.lib().wv_repo_finish(self.ptr, _lib.enc(branch),
                                        _lib.enc(txn), n_writers,
                                        ctypes.byref(o), cid), self._msg)
        return _lib.dec(cid.value)

    def pending(self):
        """The unfinished multi-writer transactions
        (``wv_repo_list_pending``): a list of dicts with branch, txn,
        writers (how many it needs), parts (how many are durable) and
        oldest_part_time (ISO 8601 UTC)."""
        if not _lib.has("wv_repo_list_pending"):
            raise _no_distributed("wv_repo_list_pending")
        out = []

        def cb(_arg, branch, txn, n_writers, n_parts, oldest):
            out.append({"branch": _lib.dec(branch), "txn": _lib.dec(txn),
                        "writers": n_writers, "parts": n_parts,
                        "oldest_part_time": _lib.dec(oldest)})
            return 0
        check(_lib.lib().wv_repo_list_pending(self.ptr, _lib.PENDING_CB(cb),
                                              None), self._msg)
        return out

    def tensors(self, ref="latest"):
        """{name: {"dtype", "shape", "nbytes", "shards", "writers"}} of
        checkpoint `ref`, from its manifest (no tensor data read): the
        dtype name ("F32", ...), the (global) shape as a tuple, how many
        stored regions make the tensor (1 for a whole one) and the indices
        of the writers that stored it (all of them for a replicated
        tensor; [] for a checkpoint of one writer); shards and writers
        are None from a library without multi-writer checkpoints."""
        L = _lib.lib()
        for fn in ("wv_repo_stat", "wv_checkpoint_tensor_dtype",
                   "wv_checkpoint_tensor_shape"):
            if not _lib.has(fn):
                raise error(_lib.UNSUPPORTED, f"this libweightvault has no "
                            f"{fn}")
        shards = getattr(L, "wv_checkpoint_tensor_shards", None)
        writers = getattr(L, "wv_checkpoint_tensor_writers", None)
        p = ctypes.c_void_p()
        check(L.wv_repo_stat(self.ptr, _lib.enc(ref), ctypes.byref(p)),
              self._msg)
        c = p.value
        try:
            out = {}
            for i in range(L.wv_checkpoint_tensor_count(c)):
                nd = L.wv_checkpoint_tensor_ndim(c, i)
                shp = L.wv_checkpoint_tensor_shape(c, i)
                out[_lib.dec(L.wv_checkpoint_tensor_name(c, i))] = {
                    "dtype": dtype_name(L.wv_checkpoint_tensor_dtype(c, i)),
                    "shape": tuple(shp[j] for j in range(nd)),
                    "nbytes": L.wv_checkpoint_tensor_nbytes(c, i),
                    "shards": (int(shards(c, i)) if shards is not None
                               else None),
                    "writers": (_writers(writers, c, i)
                                if writers is not None else None)}
            return out
        finally:
            L.wv_checkpoint_free(c)

    def read_region(self, ref, name, offset, shape, *, out=None,
                    framework="numpy", dtype=None):
        """The region [offset, offset + shape) of tensor `name` of
        checkpoint `ref` (a global tensor of a multi-writer checkpoint, or
        any whole tensor), row-major, reading only the chunks that overlap
        it, each verified as checkout verifies it
        (``wv_repo_read_region``).

        out: a contiguous CPU array/tensor of that shape and the stored
            dtype to read into (returned); else a new array (`framework`
            "numpy") or tensor ("torch").
        dtype: the stored dtype name if known (else read from the
            manifest).
        """
        if not _lib.has("wv_repo_read_region"):
            raise _no_distributed("wv_repo_read_region")
        offset = tuple(int(x) for x in offset)
        shape = tuple(int(x) for x in shape)
        if len(offset) != len(shape):
            raise ValueError(f"tensor {name!r}: offset {list(offset)} and "
                             f"shape {list(shape)} differ in length")
        if any(x < 0 for x in offset + shape):
            raise ValueError(f"tensor {name!r}: negative offset or extent")
        if dtype is None:
            info = self.tensors(ref).get(name)
            if info is None:
                raise error(_lib.NOTFOUND, f"{_lib.show(self.uri)}: "
                            f"checkpoint {ref!r} has no tensor {name!r}")
            dtype = info["dtype"]
        if out is None:
            npdt = _NP_OF.get(dtype)
            if npdt is None:
                raise TypeError(f"tensor {name!r} is {dtype}: block-"
                                "quantised tensors have no regions")
            a = np.empty(shape, npdt)
            self._read_region_into(ref, name, offset, shape, a.ctypes.data,
                                   a.nbytes)
            if framework == "torch":
                return array_to_torch(a, dtype)
            if framework != "numpy":
                raise ValueError(f"framework must be 'numpy' or 'torch', "
                                 f"not {framework!r}")
            return a
        tdt, tshape, addr, nbytes, npdt = dest_of(name, out,
                                                  "read_region: out for")
        if not dest_holds(dtype, shape, tdt, tshape, npdt):
            raise ValueError(f"tensor {name!r} is {dtype}: a region of "
                             f"shape {list(shape)} does not fit a "
                             f"destination {tdt or 'of another dtype'} "
                             f"{list(tshape)}")
        self._read_region_into(ref, name, offset, shape, addr, nbytes)
        return out

    def _read_region_into(self, ref, name, offset, shape, addr, nbytes):
        nd = len(shape)
        o = (ctypes.c_uint64 * max(nd, 1))(*offset)
        s = (ctypes.c_uint64 * max(nd, 1))(*shape)
        # an empty region still names the tensor and is checked
        dummy = ctypes.c_char()
        check(_lib.lib().wv_repo_read_region(
            self.ptr, _lib.enc(ref), _lib.enc(name), nd, o, s,
            addr if nbytes else ctypes.addressof(dummy), nbytes), self._msg)

    # -- push and pull ---------------------------------------------------------
    def _drain(self):
        """Wait for this handle's background commits (every wv_repo_* call
        does), so a push sends them; wv_repo_sync opens its own handles."""
        self.branches()

    def push(self, dest, branch=None, *, force=False, jobs=4,
             progress=None):
        """Send this repository's checkpoints to repository `dest` (a
        directory, ``s3://``, ``rados://``, ...; created if it is not a
        repository yet), as ``wv push``: only what `dest` lacks is copied.

        `branch` (or ``dest@BRANCH``) moves only that branch; otherwise
        every branch and tag. A branch only moves forward: if `dest`'s has
        checkpoints this one lacks, ConflictError (pull first, or
        ``force=True`` to overwrite it). Background commits started on
        this handle are waited for first. Returns :func:`sync`'s dict.
        """
        dest, branch = _split_branch(dest, branch)
        self._drain()
        return sync(self.uri, dest, branch=branch, force=force, jobs=jobs,
                    create=True, progress=progress)

    def pull(self, src, branch=None, *, force=False, jobs=4,
             progress=None):
        """Fetch repository `src`'s checkpoints into this one, as
        ``wv pull``: `branch` (or ``src@BRANCH``) only, else every branch
        and tag; fast-forward only unless `force` (ConflictError when a
        branch diverged). Returns :func:`sync`'s dict."""
        src, branch = _split_branch(src, branch)
        self._drain()
        return sync(src, self.uri, branch=branch, force=force, jobs=jobs,
                    create=False, progress=progress)

    # -- reading -------------------------------------------------------------
    def resolve(self, ref="latest"):
        """The full id of `ref` (branch, "latest", tag or id prefix)."""
        cid = ctypes.create_string_buffer(_lib.ID_HEX)
        check(_lib.lib().wv_repo_resolve(self.ptr, _lib.enc(ref), cid),
              self._msg)
        return _lib.dec(cid.value)

    def checkout(self, ref="latest", *, framework="numpy", names=None,
                 verify_signer=None, progress=None):
        """The tensors of checkpoint `ref` as a dict (see weightvault.load).

        Every chunk is verified against its hash. With `names`, only those
        tensors are read. The arrays point into the memory the library
        allocated for the checkout (no copy) and keep it alive.

        verify_signer: a public key file (``wv keygen``'s NAME.pub): the
        checkpoint must carry a valid signature by that key, else
        AuthError (``wv checkout --verify-signer``). Without it, a
        repository that trusts keys still requires a signature by one of
        them.

        progress: ``progress(done, total)``, bytes of tensor data read so
        far, of all wanted; an exception it raises is re-raised once the
        checkout is over.
        """
        o = _lib.init_struct(_lib.CheckoutOpts,
                             verify_signer=_lib.enc(
                                 verify_signer and os.fspath(verify_signer)))
        # names NULL: all; an empty list: none
        arr, o.n_names = name_array(None if names is None else list(names))
        o.names = arr
        prog = _lib.Progress(progress)
        prog.set(o)
        cid = self.resolve(ref)
        p = ctypes.c_void_p()
        rc = _lib.lib().wv_repo_checkout(self.ptr, _lib.enc(cid),
                                         ctypes.byref(o), ctypes.byref(p))
        check(rc, self._msg)
        m = Model(p.value)
        prog.reraise()
        out = to_dict(m, framework)
        out.format, out.checkpoint = None, cid
        return out

    def _tensor_nbytes(self, ref, name):
        """(checkpoint id, bytes of tensor `name`) from `ref`'s manifest
        (no tensor data read); NotFoundError if it has no such tensor."""
        L = _lib.lib()
        p = ctypes.c_void_p()
        check(L.wv_repo_stat(self.ptr, _lib.enc(ref), ctypes.byref(p)),
              self._msg)
        c = p.value
        try:
            cid = _lib.dec(L.wv_checkpoint_id(c))
            want = _lib.enc(name)
            for i in range(L.wv_checkpoint_tensor_count(c)):
                if L.wv_checkpoint_tensor_name(c, i) == want:
                    return cid, L.wv_checkpoint_tensor_nbytes(c, i)
        finally:
            L.wv_checkpoint_free(c)
        raise error(_lib.NOTFOUND, f"{_lib.show(self.uri)}: checkpoint "
                    f"{cid[:12]} has no tensor {name!r}")

    def read_tensor(self, ref, name, offset, length):
        """Bytes [offset, offset + length) of tensor `name` of checkpoint
        `ref`, reading only the chunks that overlap them (each verified as
        checkout verifies it).

        The range is checked against the tensor's size (from the
        checkpoint's manifest) before anything is allocated: a range past
        its end raises UsageError (a ValueError) naming the tensor and its
        size, and only `length` bytes are ever allocated for a range that
        fits."""
        if not _lib.has("wv_repo_read_tensor"):
            raise error(_lib.UNSUPPORTED, "this libweightvault has no "
                        "wv_repo_read_tensor")
        offset, length = int(offset), int(length)
        if offset < 0 or length < 0:
            raise ValueError("offset and length must be >= 0")
        cid, size = self._tensor_nbytes(ref, name)
        if offset > size or length > size - offset:
            raise error(_lib.RANGE, f"{_lib.show(self.uri)}: bytes {offset}"
                        f"..+{length} are past the end of tensor "
                        f"{name!r} ({size} bytes) of checkpoint "
                        f"{cid[:12]}")
        buf = ctypes.create_string_buffer(max(length, 1))
        check(_lib.lib().wv_repo_read_tensor(self.ptr, _lib.enc(cid),
                                             _lib.enc(name), offset, length,
                                             buf),
              self._msg)
        return buf.raw[:length]

    def stat(self, ref="latest"):
        """Describe checkpoint `ref` without reading tensor data: a dict with
        id, parent (None for a first checkpoint), branch, time, message,
        metadata (dict), tensors (names), total_bytes, signer (the public
        key, 64 hex digits, whose valid signature it carries; None if it
        is unsigned or the signature does not verify)."""
        L = _lib.lib()
        if not _lib.has("wv_repo_stat"):
            raise error(_lib.UNSUPPORTED, "this libweightvault has no "
                        "wv_repo_stat")
        p = ctypes.c_void_p()
        check(L.wv_repo_stat(self.ptr, _lib.enc(ref), ctypes.byref(p)),
              self._msg)
        c = p.value
        try:
            k, v = ctypes.c_char_p(), ctypes.c_char_p()
            meta = {}
            for i in range(L.wv_checkpoint_meta_count(c)):
                check(L.wv_checkpoint_meta(c, i, ctypes.byref(k),
                                           ctypes.byref(v)))
                meta[_lib.dec(k.value)] = _lib.dec(v.value)
            return {
                "id": _lib.dec(L.wv_checkpoint_id(c)),
                "parent": _lib.dec(L.wv_checkpoint_parent(c)) or None,
                "branch": _lib.dec(L.wv_checkpoint_branch(c)),
                "time": _lib.dec(L.wv_checkpoint_time(c)),
                "message": _lib.dec(L.wv_checkpoint_message(c)),
                "metadata": meta,
                "tensors": [_lib.dec(L.wv_checkpoint_tensor_name(c, i))
                            for i in range(L.wv_checkpoint_tensor_count(c))],
                "total_bytes": L.wv_checkpoint_total_bytes(c),
                "signer": (_lib.dec(L.wv_checkpoint_signer(c)) or None
                           if _lib.has("wv_checkpoint_signer") else None),
            }
        finally:
            L.wv_checkpoint_free(c)

    def storage(self, ref="latest"):
        """What checkpoint `ref` takes in the store, from its manifest and
        the chunk index (no data is read): a dict with chunks,
        stored_bytes, raw_bytes (each distinct chunk once); new_chunks,
        new_stored_bytes, new_raw_bytes (the chunks its parent does not
        list: what committing it added); new_by_codec and
        new_stored_by_codec ({codec name: count or bytes}, codecs "none",
        "zstd", "bg-zstd", "xor-bg-zstd" (deltas)); max_chain (the
        longest delta chain among its chunks, 0 for none)."""
        if not _lib.has("wv_repo_storage"):
            raise error(_lib.UNSUPPORTED, "this libweightvault has no "
                        "wv_repo_storage")
        st = _lib.init_struct(_lib.CheckpointStorage)
        check(_lib.lib().wv_repo_storage(self.ptr, _lib.enc(ref),
                                         ctypes.byref(st)), self._msg)
        codecs = ("none", "zstd", "bg-zstd", "xor-bg-zstd")
        out = {k: getattr(st, k) for k in (
            "chunks", "stored_bytes", "raw_bytes", "new_chunks",
            "new_stored_bytes", "new_raw_bytes", "max_chain")}
        out["new_by_codec"] = dict(zip(codecs, st.new_by_codec))
        out["new_stored_by_codec"] = dict(zip(codecs, st.new_stored_by_codec))
        return out

    def log(self, ref="main"):
        """Yield stat() dicts from `ref` back through its parents, newest
        first, until a first checkpoint or a pruned parent."""
        cur = ref
        while cur:
            try:
                s = self.stat(cur)
            except NotFoundError:
                if cur is ref:
                    raise
                return
            yield s
            cur = s["parent"]

    def _refs(self, fn):
        out = {}

        def cb(_arg, name, cid):
            out[_lib.dec(name)] = _lib.dec(cid)
            return 0
        check(fn(self.ptr, _lib.REF_CB(cb), None), self._msg)
        return out

    def branches(self):
        """{branch name: checkpoint id}, sorted by name."""
        return self._refs(_lib.lib().wv_repo_list_branches)

    def tags(self):
        """{tag name: checkpoint id}, sorted by name."""
        return self._refs(_lib.lib().wv_repo_list_tags)

    def tag(self, name, ref="latest"):
        """Create tag `name` at `ref` (tags never move: ExistsError)."""
        check(_lib.lib().wv_repo_tag(self.ptr, _lib.enc(name), _lib.enc(ref)),
              self._msg)

    def branch(self, name, ref="latest"):
        """Create branch `name` at `ref` (ExistsError if it exists)."""
        check(_lib.lib().wv_repo_branch(self.ptr, _lib.enc(name),
                                        _lib.enc(ref)), self._msg)

    # -- retention -------------------------------------------------------------
    def prune(self, *, keep_last=None, keep_best=None, metric=None,
              mode="min", branch=None, dry_run=False):
        """Delete the manifests of checkpoints no rule keeps (wv_repo_prune).

        Branch heads and tags are always kept. `keep_last` N most recent and
        `keep_best` K best by metadata `metric` (`mode` "min" for a loss,
        "max" for an accuracy), per branch (only `branch` if given). Data is
        freed by a following :meth:`gc`. Returns the decisions, newest first
        per branch: dicts with id, branch, time, step, metric, keep, reason.
        """
        if not _lib.has("wv_repo_prune"):
            raise error(_lib.UNSUPPORTED, "this libweightvault has no "
                        "wv_repo_prune")
        if mode not in ("min", "max"):
            raise ValueError("mode must be 'min' or 'max'")
        o = _lib.init_struct(
            _lib.PruneOpts,
            keep_last=-1 if keep_last is None else keep_last,
            keep_best=-1 if keep_best is None else keep_best,
            metric=_lib.enc(metric),
            mode=_lib.PRUNE_MIN if mode == "min" else _lib.PRUNE_MAX,
            branch=_lib.enc(branch), dry_run=int(bool(dry_run)))
        decisions = []

        def cb(_arg, d):
            d = d.contents
            decisions.append({f: (_lib.dec(getattr(d, f)) if f != "keep"
                                  else bool(d.keep))
                              for f, _ in _lib.PruneDecision._fields_})
            return 0
        st = _lib.PruneStats()
        check(_lib.lib().wv_repo_prune(self.ptr, ctypes.byref(o),
                                       _lib.PRUNE_CB(cb), None,
                                       ctypes.byref(st)), self._msg)
        return decisions

    def gc(self, *, dry_run=False, repack_percent=30, tmp_age=3600,
           pending_timeout=None):
        """Delete the data no checkpoint references (wv_repo_gc); returns
        its statistics as a dict (bytes_freed, packs_deleted, ...).

        pending_timeout: seconds after which the parts of an unfinished
        multi-writer checkpoint (whose newest part is older) are removed
        with their chunks (default 86400); younger ones are kept."""
        if not _lib.has("wv_repo_gc"):
            raise error(_lib.UNSUPPORTED, "this libweightvault has no "
                        "wv_repo_gc")
        if pending_timeout is not None and (
                isinstance(pending_timeout, bool) or
                not isinstance(pending_timeout, int) or
                not 1 <= pending_timeout < 1 << 32):
            raise ValueError("pending_timeout must be an int from 1 to "
                             "2**32-1 (seconds)")
        o = _lib.init_struct(_lib.GcOpts, dry_run=int(bool(dry_run)),
                             repack_percent=repack_percent,
                             tmp_age=tmp_age,
                             pending_timeout=pending_timeout or 0)
        st = _lib.GcStats()
        check(_lib.lib().wv_repo_gc(self.ptr, ctypes.byref(o),
                                    ctypes.byref(st)), self._msg)
        return {f: getattr(st, f) for f, _ in _lib.GcStats._fields_}

    def verify(self):
        """Check the whole repository (wv_repo_verify): every ref, manifest,
        index, pack and chunk. Returns a dict with ``ok``, ``problems`` (a
        list of dicts: object, checkpoint, branch, tensor, message) and the
        counts (checkpoints, refs, indexes, packs, chunks, bytes). Damage is
        reported, not raised; other failures (I/O, a gc holding the lock)
        raise."""
        if not _lib.has("wv_repo_verify"):
            raise error(_lib.UNSUPPORTED, "this libweightvault has no "
                        "wv_repo_verify")
        problems = []

        def cb(_arg, p):
            p = p.contents
            problems.append({f: _lib.dec(getattr(p, f))
                             for f, _ in _lib.VerifyProblem._fields_})
        st = _lib.VerifyStats()
        rc = _lib.lib().wv_repo_verify(self.ptr, _lib.VERIFY_CB(cb), None,
                                       ctypes.byref(st))
        if rc != _lib.CORRUPT:
            check(rc, self._msg)
        out = {f: getattr(st, f) for f, _ in _lib.VerifyStats._fields_}
        # "" normally, else why the check ran without its lock
        out["unlocked"] = _lib.dec(st.unlocked) or ""
        out.update(ok=rc == _lib.OK, problems=problems)
        return out


class PendingCommit:
    """A commit running in the background (from Repository.commit_async,
    or commit_part_async).

    :meth:`wait` blocks and returns the checkpoint id (a part: None while
    other writers' parts are missing), or raises the commit's error;
    :meth:`done` polls. The handle is freed by wait() or when this object
    dies (which waits for the commit to finish).
    """

    def __init__(self, ptr, repo, part=False):
        self._ptr, self._repo, self._result = ptr, repo, None
        self._part = part  # a part: None while other parts are missing

    def done(self):
        """True once the commit has finished (successfully or not)."""
        if self._ptr is None:
            return True
        return _lib.lib().wv_commit_poll(self._ptr) != _lib.BUSY

    def wait(self):
        """Block until the commit is durable; return its checkpoint id."""
        if self._ptr is not None:
            L = _lib.lib()
            cid = ctypes.create_string_buffer(_lib.ID_HEX)
            rc = L.wv_commit_wait(self._ptr, cid)
            msg = _lib.dec(L.wv_commit_errmsg(self._ptr))
            L.wv_commit_free(self._ptr)
            self._ptr = None
            self._result = (rc, _lib.dec(cid.value), msg)
        rc, cid, msg = self._result
        if self._part and rc == _lib.BUSY:
            return None
        check(rc, msg)
        return cid

    def __del__(self):
        try:
            if self._ptr is not None:
                _lib.lib().wv_commit_free(self._ptr)
        except Exception:
            pass
