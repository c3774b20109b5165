"""Distributed checkpoints: many ranks write one checkpoint, any number read.

Each rank (process) of a training run holds part of the state: whole
tensors (replicated, e.g. biases under data parallelism) or a region of a
large tensor (row/column sharding of tensor or ZeRO/FSDP-style
parallelism). :func:`save` stores every rank's part in the repository and
the checkpoint appears, atomically, once all parts are durable; :func:`load`
reads it back whole or as regions, by any number of readers::

    import weightvault.distributed as wvd

    # every rank (torchrun, or an initialised torch.distributed group)
    w = full_weight[rows_of_this_rank]                 # a [r0:r1, :] slice
    sd = {"fc.weight": (w, full_weight.shape, (r0, 0)),   # a region
          "fc.bias": bias}                                # replicated
    cid = wvd.save(sd, "s3://bucket/run@main", step=1200)

    # later, with another number of ranks: this rank's rows of each tensor
    mine = wvd.load("s3://bucket/run@latest", regions="rows")
    # or exactly the regions asked for, or a template filled in place
    part = wvd.load("./ckpts@latest",
                    regions={"fc.weight": ((0, 0), (128, 512))})

Coordination goes through the store only (``wv_repo_commit_part``,
``wv_repo_finish``): ranks may run on different machines that see the same
``s3://``, ``rados://`` or shared directory. The writers of one checkpoint
agree on a transaction name, ``step-<step>`` by default.

Rank and world size: from ``torch.distributed`` when a process group is
initialised; else the ``rank``/``world_size`` arguments; else the ``RANK``
and ``WORLD_SIZE`` environment variables (what ``torchrun`` sets); else a
single writer (0 of 1).

Values: torch tensors, NumPy arrays, and ``(local_tensor, global_shape,
offsets)`` triples for a region. PyTorch's ``DTensor`` and
``ShardedTensor`` are not understood: pass their local shard as a triple.
"""

import os
import sys

import numpy as np

from . import _lib, _model
from .errors import error
from .repo import Repository, _split_branch, split_target

__all__ = ["save", "load", "read", "finish", "pending", "shard", "shard_rows",
           "rank_and_world"]


def _process_group():
    """torch.distributed if torch is imported and a default process group
    is initialised, else None (torch is never imported here)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    d = getattr(torch, "distributed", None)
    if d is None or not d.is_available() or not d.is_initialized():
        return None
    return d


def _int_arg(what, v):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{what} must be an int, not {v!r}")
    return int(v)


def rank_and_world(rank=None, world_size=None):
    """(rank, world_size) of this process: from an initialised
    torch.distributed process group (ValueError if `rank`/`world_size`
    contradict it); else the arguments (both or neither); else the
    environment's ``RANK`` and ``WORLD_SIZE`` (torchrun); else (0, 1)."""
    d = _process_group()
    if d is not None:
        r, w = d.get_rank(), d.get_world_size()
        if (rank is not None and rank != r) or \
                (world_size is not None and world_size != w):
            raise ValueError(f"rank={rank!r}, world_size={world_size!r} "
                             f"contradict the process group (rank {r} of "
                             f"{w})")
        return r, w
    if rank is not None or world_size is not None:
        if rank is None or world_size is None:
            raise ValueError("give both rank and world_size, or neither")
        r, w = _int_arg("rank", rank), _int_arg("world_size", world_size)
        where = "arguments"
    elif "RANK" in os.environ or "WORLD_SIZE" in os.environ:
        vals = []
        for k in ("RANK", "WORLD_SIZE"):
            v = os.environ.get(k)
            try:
                vals.append(int(v))
            except (TypeError, ValueError):
                raise ValueError(f"environment variable {k}={v!r} is not "
                                 "an int (torchrun sets RANK and "
                                 "WORLD_SIZE)") from None
        r, w = vals
        where = "environment RANK/WORLD_SIZE"
    else:
        return 0, 1
    if w < 1 or not 0 <= r < w:
        raise ValueError(f"rank {r} of world size {w} ({where}): need "
                         "0 <= rank < world_size")
    return r, w


def shard(shape, rank, world_size, dim=0):
    """(offsets, shape) of the even split of a tensor of `shape` along
    dimension `dim` for `rank` of `world_size`: the first
    ``shape[dim] % world_size`` ranks get one more index; ranks past the
    extent get an empty region. A 0-d tensor is whole on every rank."""
    shape = tuple(int(x) for x in shape)
    rank, world_size = int(rank), int(world_size)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} of world size {world_size}: need "
                         "0 <= rank < world_size")
    if not shape:
        return (), ()
    if not -len(shape) <= dim < len(shape):
        raise ValueError(f"dim {dim} of a {len(shape)}-d shape")
    dim %= len(shape)
    n = shape[dim]
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    count = base + (1 if rank < extra else 0)
    offs = tuple(start if i == dim else 0 for i in range(len(shape)))
    ext = tuple(count if i == dim else x for i, x in enumerate(shape))
    return offs, ext


def shard_rows(shape, rank, world_size):
    """:func:`shard` along the first dimension (rows)."""
    return shard(shape, rank, world_size, 0)


def _target(url, branch):
    """(repository uri, branch) of a save target "URI@BRANCH" or URI."""
    s = os.fspath(url)
    t = split_target(s)
    if t is None:  # a directory that is no repository yet
        uri, branch = _split_branch(s, branch)
        return uri, branch or "main"
    uri, ref = t
    if ref is not None and branch is not None and ref != branch:
        raise ValueError(f"two branches given: {ref!r} in {s!r} and "
                         f"branch={branch!r}")
    return uri, ref or branch or "main"


def _txn_of(step, txn):
    if txn is not None:
        return txn
    if step is None:
        raise ValueError("give step= (the transaction is then "
                         "'step-<step>') or txn=")
    return f"step-{_int_arg('step', step)}"


def _failure(e):
    """What every rank needs to know about rank's exception `e`."""
    if e is None:
        return None
    code = getattr(e, "code", None)
    return (code, type(e).__name__, getattr(e, "message", None) or str(e))


def _raise_for(failures, world):
    """Raise the error of the first rank that failed: failures are
    (rank, what _failure gave or None)."""
    for r, f in failures:
        if f is not None:
            code, kind, msg = f
            text = f"rank {r} of {world} failed: {msg}"
            if code is not None:
                raise error(code, text)
            raise RuntimeError(f"{text} ({kind})")


def save(state_dict, url, step=None, *, txn=None, rank=None,
         world_size=None, message=None, branch=None, metadata=None,
         sign_key=None, finish=True, passphrase=None, key_file=None,
         progress=None):
    """Store this rank's part of the checkpoint all ranks save together.

    Args:
        state_dict: name -> torch tensor, NumPy array, or
            ``(local_tensor, global_shape, offsets)``: this rank's region
            of a global tensor (its shape gives the extents). Regions of
            a name must tile its global tensor exactly over all ranks;
            a whole tensor saved by several ranks must be bit-identical
            in each (else the checkpoint is refused, naming the tensor
            and the writers). A tensor only one rank holds is saved by
            that rank alone.
        url: the repository and branch, ``"s3://bucket/run@main"``,
            ``"./ckpts@main"`` (created if missing; branch default
            "main", or `branch`).
        step: the training step: metadata ``step`` and the transaction
            name ``step-<step>`` (unless `txn`).
        txn: the name all ranks agree on ([A-Za-z0-9._-], 1..100).
        rank, world_size: see :func:`rank_and_world`.
        message, metadata, sign_key, progress: as for
            :meth:`Repository.commit`. The checkpoint's message is rank
            0's, and each metadata key the lowest rank's that has it.
        finish: False: never finish the checkpoint here (then
            :func:`finish` does).
        passphrase, key_file: an encrypted repository's secret (every
            rank needs it).

    Returns:
        The checkpoint id. With an initialised torch.distributed process
        group every rank waits for all the others (a collective call) and
        gets the id; an error on any rank is raised on every rank. Without
        one, the id if the checkpoint exists when this rank is done (it
        finished it, or another rank did), else None: the parts are
        durable and the last rank to be done finishes it.
    """
    # All that may fail runs in commit(): with a process group, a rank
    # raising before the collective would leave the others waiting in it.
    job = {}

    def commit():
        uri, br = _target(url, branch)
        name = _txn_of(step, txn)
        rk, world = rank_and_world(rank, world_size)
        meta = dict(metadata or {})
        if step is not None:
            meta.setdefault("step", str(_int_arg("step", step)))
        job.update(uri=uri, branch=br, txn=name, world=world)
        with Repository(uri, create=True, passphrase=passphrase,
                        key_file=key_file) as r:
            return name, r.commit_part(
                state_dict, br, txn=name, writer=rk, n_writers=world,
                finish=finish, metadata=meta, message=message,
                sign_key=sign_key, progress=progress)

    def finish_now():
        with Repository(job["uri"], passphrase=passphrase,
                        key_file=key_file) as r:
            return r.finish(job["txn"], job["world"], job["branch"],
                            message=message, sign_key=sign_key)
    return collective_commit(commit, finish_now, finish)


def collective_commit(commit, finish_now, finish=True):
    """Run this rank's `commit()` (its transaction's name and its part's
    result: the id or None) and, with an initialised process group, agree
    on the outcome with every rank: all get the id, or all raise (the
    failing rank its own error, the others one naming it). `commit()`
    must do all of this rank's work that may fail, so that every rank
    reaches the collective. If every rank was done before it saw all the
    parts, rank 0 runs `finish_now()` (unless not `finish`) and shares
    its id. Without a process group: `commit()`'s id."""
    group = _process_group()
    txn, cid, err = None, None, None
    try:
        txn, cid = commit()
    except Exception as e:  # every rank must reach the collective below
        if group is None:
            raise
        err = e
    if group is None:
        return cid
    rank, world = group.get_rank(), group.get_world_size()
    results = [None] * world
    group.all_gather_object(results, (cid, _failure(err)))
    if err is not None:
        raise err
    _raise_for([(r, f) for r, (_, f) in enumerate(results)], world)
    ids = {c for c, _ in results if c}
    if len(ids) > 1:
        raise error(_lib.CORRUPT, f"txn {txn}: the ranks report different "
                    f"checkpoints: {sorted(ids)}")
    if ids or not finish:
        return ids.pop() if ids else None
    # Every rank was done before it saw all parts: all are durable now.
    out = [None]
    if rank == 0:
        try:
            out[0] = (finish_now(), None)
        except Exception as e:
            out[0] = (None, _failure(e))
    group.broadcast_object_list(out, src=0)
    cid, f = out[0]
    _raise_for([(0, f)], world)
    return cid


def finish(url, step=None, *, txn=None, world_size, branch=None,
           message=None, sign_key=None, passphrase=None, key_file=None):
    """Finish the checkpoint of `world_size` writers whose parts are all
    durable (``wv finish``): returns its id (the same whoever finishes;
    again for a finished one). BusyError names the missing writers."""
    uri, branch = _target(url, branch)
    with Repository(uri, passphrase=passphrase, key_file=key_file) as r:
        return r.finish(_txn_of(step, txn), world_size, branch,
                        message=message, sign_key=sign_key)


def pending(url, *, passphrase=None, key_file=None):
    """The unfinished transactions of repository `url`
    (:meth:`Repository.pending`)."""
    uri, _ = _target(url, None)
    with Repository(uri, passphrase=passphrase, key_file=key_file) as r:
        return r.pending()


def _template_entry(name, value):
    """(destination, offsets or None) of a template value: a tensor/array
    (the whole tensor), or a (local, global_shape, offsets) triple (its
    region); None if `value` is a plain region request."""
    if _model._is_torch_tensor(value) or isinstance(value, np.ndarray):
        return value, None, None
    reg = _model.region_of(name, value)
    if reg is not None:
        return reg
    return None


def _region_request(name, value):
    try:
        offs, shp = value
        offs = tuple(int(x) for x in offs)
        shp = tuple(int(x) for x in shp)
    except (TypeError, ValueError):
        raise ValueError(f"regions[{name!r}] must be (offsets, shape), a "
                         "tensor/array to fill, or a (local, global_shape, "
                         f"offsets) triple; not {value!r}") from None
    return offs, shp


def _fill(r, cid, name, info, dest, gshape, offs):
    """Read tensor `name`'s region into template value `dest`."""
    shape = tuple(dest.shape)
    if gshape is None:  # a whole tensor
        if shape != info["shape"]:
            raise ValueError(f"tensor {name!r} is {list(info['shape'])} in "
                             f"checkpoint {cid[:12]}, the template's is "
                             f"{list(shape)}")
        offs = (0,) * len(shape)
    elif tuple(gshape) != info["shape"]:
        raise ValueError(f"tensor {name!r} is {list(info['shape'])} in "
                         f"checkpoint {cid[:12]}, the template's global "
                         f"shape is {list(gshape)}")
    try:
        return r.read_region(cid, name, offs, shape, out=dest,
                             dtype=info["dtype"])
    except TypeError:  # not contiguous / not on the CPU: read, then copy
        pass
    is_torch = _model._is_torch_tensor(dest)
    tmp = r.read_region(cid, name, offs, shape, dtype=info["dtype"],
                        framework="torch" if is_torch else "numpy")
    if tmp.dtype != dest.dtype:  # as read_region refuses it in place
        raise ValueError(f"tensor {name!r} is {info['dtype']} in checkpoint "
                         f"{cid[:12]}, the template's dtype is {dest.dtype}")
    if is_torch:
        with _model._torch().no_grad():
            dest.copy_(tmp)
    else:
        dest[...] = tmp
    return dest


def load(url_or_ref, regions=None, *, rank=None, world_size=None,
         framework="torch", passphrase=None, key_file=None):
    """Read a checkpoint (any checkpoint; one saved by :func:`save` has
    global tensors assembled from the ranks' regions).

    Args:
        url_or_ref: ``"s3://bucket/run@latest"``, ``"./ckpts@main"``, a
            tag or checkpoint id after the ``@`` (default latest).
        regions:
            * None: every tensor, whole;
            * ``"rows"``: this rank's even share of the rows of every
              tensor (:func:`shard_rows` with `rank`/`world_size`, see
              :func:`rank_and_world`);
            * a dict name -> ``(offsets, shape)``: those regions only;
            * a dict name -> tensor/array (a template, e.g. a
              state_dict): filled in place with the whole tensor (same
              shape and dtype), or name -> ``(local, global_shape,
              offsets)``: `local` filled with that region.
            Only the chunks overlapping what is asked for are read, and
            each is verified.
        framework: "torch" (tensors) or "numpy" (arrays) for what is not
            filled in place.

    Returns:
        A :class:`weightvault.Tensors` dict name -> tensor/array (template
        entries: the template's own tensor, filled), with ``.metadata``
        and ``.checkpoint``.
    """
    s = os.fspath(url_or_ref)
    t = split_target(s)
    if t is None:
        raise ValueError(f"{_lib.show(s)} names no repository (use "
                         "weightvault.load for files)")
    uri, ref = t
    if framework not in ("torch", "numpy"):
        raise ValueError(f"framework must be 'numpy' or 'torch', not "
                         f"{framework!r}")
    with Repository(uri, passphrase=passphrase, key_file=key_file) as r:
        return read(r, ref or "latest", regions, rank=rank,
                    world_size=world_size, framework=framework)


def read(repo, ref, regions=None, *, rank=None, world_size=None,
         framework="torch"):
    """:func:`load` from an open :class:`Repository` `repo`, checkpoint
    `ref`."""
    r = repo
    cid = r.resolve(ref)
    if regions is None:
        return r.checkout(cid, framework=framework)
    for fn in _lib.DISTRIBUTED[3:]:
        if not _lib.has(fn):
            raise error(_lib.UNSUPPORTED, f"this libweightvault has no "
                        f"{fn}: regions need a newer library")
    infos = r.tensors(cid)
    out = _model.Tensors()
    out.dtypes, out.checkpoint, out.format = {}, cid, None
    out.metadata = r.stat(cid)["metadata"]
    if isinstance(regions, str):
        if regions != "rows":
            raise ValueError(f"regions={regions!r}: None, 'rows' or a "
                             "dict")
        rk, world = rank_and_world(rank, world_size)
        for name, info in infos.items():
            offs, shp = shard_rows(info["shape"], rk, world)
            out[name] = r.read_region(cid, name, offs, shp,
                                      framework=framework,
                                      dtype=info["dtype"])
            out.dtypes[name] = info["dtype"]
        return out
    if not hasattr(regions, "items"):
        raise TypeError("regions must be None, 'rows' or a dict, not "
                        f"{type(regions).__name__}")
    for name, value in regions.items():
        info = infos.get(name)
        if info is None:
            raise error(_lib.NOTFOUND, f"{_lib.show(r.uri)}: checkpoint "
                        f"{cid[:12]} has no tensor {name!r}")
        tmpl = _template_entry(name, value)
        if tmpl is not None:
            out[name] = _fill(r, cid, name, info, *tmpl)
        else:
            offs, shp = _region_request(name, value)
            out[name] = r.read_region(cid, name, offs, shp,
                                      framework=framework,
                                      dtype=info["dtype"])
        out.dtypes[name] = info["dtype"]
    return out
