"""Checkpointer: periodic, resumable training checkpoints in a repository.

One checkpoint holds everything needed to continue a run bit for bit:

* the model's tensors, named ``model/<state_dict key>``;
* the optimizer's state_dict: its tensors as ``optim/<path>`` and the rest
  (param_groups with their hyper-parameters, integer ids, Python numbers)
  as JSON in the metadata;
* the RNG states: ``torch.get_rng_state()`` (tensor ``rng/torch``, and the
  CUDA generators when CUDA is available), NumPy's global ``np.random``
  state (tensor ``rng/numpy`` + JSON) and Python's ``random`` (JSON);
* metadata ``step``, each metric under its own key (so ``wv_repo_prune``
  can keep the best by it), and ``weightvault.checkpointer``: the JSON of
  the above.

Retention runs after each save: :meth:`Repository.prune` with ``keep_last``
/ ``keep_best`` on the checkpointer's branch, then :meth:`Repository.gc` if
anything was pruned. Branch heads and tags are never pruned. Prune and gc
need the repository's exclusive lock; if another process is committing at
that moment they report a conflict and retention is simply retried at the
next save.

Any commit restores, not only a Checkpointer's: one made by
``wv.save(model, "./ckpts@main")`` or ``wv commit`` gives its tensors to the
model by their own names (no optimizer or RNG state to restore; step 0, or
its integer ``step`` metadata).

Numpy-only training works the same way: ``model`` may be a dict of arrays
(updated in place on restore) and ``optimizer`` a dict of arrays/numbers or
None.
"""

import json
import random
import sys

import numpy as np

from . import _model
from . import distributed as _dist
from ._lib import CORRUPT
from .errors import ConflictError, CorruptError, NotFoundError
from .repo import Repository

_META_KEY = "weightvault.checkpointer"


class _Encoder:
    """Turns a nested structure into JSON plus named tensors.

    Tensors/arrays become {"__tensor__": name} (or "__ndarray__"), tuples
    {"__tuple__": [...]}, dicts with non-string keys (optimizer state is
    keyed by parameter index) {"__items__": [[k, v], ...]}. Other leaves
    must be JSON scalars (bool, int, float, str, None): floats are written
    with repr(), so they come back bit-identical.
    """

    def __init__(self, prefix):
        self.prefix = prefix
        self.tensors = {}

    def encode(self, x, path):
        if _model._is_torch_tensor(x):
            name = self.prefix + path
            self.tensors[name] = x
            return {"__tensor__": name}
        if isinstance(x, np.ndarray):
            name = self.prefix + path
            self.tensors[name] = x
            return {"__ndarray__": name}
        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, dict):
            if all(isinstance(k, str) for k in x):
                return {k: self.encode(v, f"{path}/{k}") for k, v in x.items()}
            return {"__items__": [[k, self.encode(v, f"{path}/{k}")]
                                  for k, v in x.items()]}
        if isinstance(x, tuple):
            return {"__tuple__": [self.encode(v, f"{path}/{i}")
                                  for i, v in enumerate(x)]}
        if isinstance(x, list):
            return [self.encode(v, f"{path}/{i}") for i, v in enumerate(x)]
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        raise TypeError(f"Checkpointer: cannot store {type(x).__name__} at "
                        f"{self.prefix + path!r} (tensors, arrays, dicts, "
                        "lists, "
                        "tuples and JSON scalars only)")


def _decode(x, tensors, torch_out):
    if isinstance(x, dict):
        if "__tensor__" in x:
            name = x["__tensor__"]
            t = tensors[name]
            return _model.numpy_to_torch(t, tensors.dtypes[name]) \
                if torch_out else t
        if "__ndarray__" in x:
            return tensors[x["__ndarray__"]]
        if "__tuple__" in x:
            return tuple(_decode(v, tensors, torch_out) for v in x["__tuple__"])
        if "__items__" in x:
            return {k: _decode(v, tensors, torch_out) for k, v in x["__items__"]}
        return {k: _decode(v, tensors, torch_out) for k, v in x.items()}
    if isinstance(x, list):
        return [_decode(v, tensors, torch_out) for v in x]
    return x


def _is_module(obj):
    return callable(getattr(obj, "state_dict", None)) and \
        callable(getattr(obj, "load_state_dict", None))


class _PendingPart:
    """A distributed Checkpointer's background part (save() with
    background=True): wait() waits for this rank's part, then agrees with
    the other ranks on the outcome (a collective with a process group, so
    every rank must call it: the Checkpointer does at its next save(),
    wait(), restore_latest() or close()); the checkpoint id, as save()
    gives without background. The outcome is kept: a second wait() returns
    it again."""

    def __init__(self, ck, txn, pending, err, finish_now):
        self._ck, self._txn, self._pending, self._err = ck, txn, pending, err
        self._finish_now, self._out = finish_now, None

    def done(self):
        """True once this rank's part is stored (or failed)."""
        return self._pending is None or self._pending.done()

    def wait(self):
        if self._out is None:
            def commit():
                if self._err is not None:
                    raise self._err
                return self._txn, self._pending.wait()
            try:
                cid = _dist.collective_commit(commit, self._finish_now)
                self._out = (cid, None)
                if self._ck.rank == 0 and cid is not None:
                    self._ck._retain()
            except Exception as e:
                self._out = (None, e)
            self._pending = self._err = None
        cid, err = self._out
        if err is not None:
            raise err
        return cid


class Checkpointer:
    """Save training state every `every` steps; resume from the newest.

    Args:
        repo: a repository URI (directory, ``file://``, ``mem://``), created
            if missing, or an open :class:`Repository`.
        every: :meth:`save` writes when ``step % every == 0``.
        keep_last: keep the N most recent checkpoints of the branch (None:
            no such rule).
        keep_best: keep the K best by `metric` (None: no such rule).
        metric: the metrics key keep_best ranks by (e.g. "val_loss").
        mode: "min" (lower is better: a loss) or "max" (an accuracy).
        branch: the branch to commit to and resume from (default "main").
        background: commit asynchronously (``wv_repo_commit_async``): save()
            copies the state and returns at once while the library chunks,
            compresses and writes in its own thread. The previous commit is
            waited for (and retention applied) at the next save(), wait(),
            restore_latest() or close().
        sign_key: sign every checkpoint with this Ed25519 secret key file
            (``wv keygen -o NAME`` writes NAME.key), as a repository that
            trusts keys (``wv trust add``) requires.
        verify_signer: restore_latest() accepts only a checkpoint with a
            valid signature by this public key file (NAME.pub), else
            AuthError.
        distributed: every rank of a run saves its part of one checkpoint
            (:mod:`weightvault.distributed`; rank and world size from the
            torch.distributed process group, else `rank`/`world_size`,
            else $RANK/$WORLD_SIZE). Model values may be ``(local,
            global_shape, offsets)`` triples (regions); the optimizer and
            RNG states are per rank. With `background`, every rank's part
            is committed in the background (``wv_repo_commit_part_async``)
            and the ranks agree on the outcome when they next call save(),
            wait(), restore_latest() or close() (all ranks must: it is a
            collective with a process group). Not with `verify_signer`.

    Checkpoints that neither rule keeps are pruned after each save; with
    neither rule, all are kept.
    """

    def __init__(self, repo, every=1, keep_last=None, keep_best=None,
                 metric=None, mode="min", branch="main", background=False,
                 sign_key=None, verify_signer=None, distributed=False,
                 rank=None, world_size=None):
        if every < 1:
            raise ValueError("every must be >= 1")
        if keep_best is not None and not metric:
            raise ValueError("keep_best needs metric=")
        if mode not in ("min", "max"):
            raise ValueError("mode must be 'min' or 'max'")
        if distributed and verify_signer:
            raise ValueError("distributed=True works without "
                             "verify_signer")
        self.distributed = bool(distributed)
        if distributed:
            self.rank, self.world_size = _dist.rank_and_world(rank,
                                                              world_size)
        self.repo = repo if isinstance(repo, Repository) else \
            Repository(repo, create=True)
        self.every, self.keep_last, self.keep_best = every, keep_last, keep_best
        self.metric, self.mode, self.branch = metric, mode, branch
        self.background = background
        self.sign_key, self.verify_signer = sign_key, verify_signer
        self._pending = None

    def wait(self):
        """Wait for a background commit; return its id (None if none was
        pending). Raises the commit's error, if it failed."""
        p, self._pending = self._pending, None
        if p is None:
            return None
        if isinstance(p, _PendingPart):
            return p.wait()  # retention is its (rank 0's)
        cid = p.wait()
        self._retain()
        return cid

    def close(self):
        """Wait for a background commit, then close the repository."""
        try:
            self.wait()
        finally:
            self.repo.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- saving ------------------------------------------------------------
    def save(self, step, model, optimizer=None, metrics=None, *, force=False,
             message=None):
        """Checkpoint the training state if `step` is a multiple of `every`
        (or `force`). Returns the checkpoint id, or None when skipped; with
        background=True, a PendingCommit (its wait() gives the id).

        model: an nn.Module, a state_dict, or a dict of NumPy arrays.
        optimizer: a torch optimizer (anything with state_dict()), a dict
            of arrays/numbers (a NumPy optimizer's state), or None.
        metrics: dict name -> number, stored in the metadata (each key its
            own entry, so keep_best can rank by it).
        """
        if not force and step % self.every:
            return None
        if self.distributed:
            return self._save_distributed(step, model, optimizer, metrics,
                                          message)
        metrics = dict(metrics or {})
        state = {"version": 1, "step": int(step), "metrics": metrics}
        tensors = self._tensors(model, optimizer, state)
        meta = self._metadata(step, metrics, state)
        if self.background:
            self.wait()
            self._pending = self.repo.commit_async(
                tensors, self.branch, metadata=meta,
                message=message or f"step {int(step)}",
                sign_key=self.sign_key)
            return self._pending
        cid = self.repo.commit(tensors, self.branch, metadata=meta,
                               message=message or f"step {int(step)}",
                               sign_key=self.sign_key)
        self._retain()
        return cid

    @classmethod
    def _tensors(cls, model, optimizer, state, part=""):
        """The tensors of a checkpoint: model/<key>, and the optimizer's
        and RNGs' as optim<part>/... and rng<part>/..., whose JSON goes
        into `state` (its "optimizer", "optimizer_kind" and "rng")."""
        tensors = {"model/" + k: v
                   for k, v in _model.state_dict_of(model).items()}
        enc = _Encoder("optim" + part)
        if optimizer is not None:
            osd = optimizer.state_dict() if _is_module(optimizer) else optimizer
            state["optimizer"] = enc.encode(osd, "")
            state["optimizer_kind"] = "torch" if _is_module(optimizer) \
                else "dict"
        tensors.update(enc.tensors)
        state["rng"] = cls._rng_state(tensors, f"rng{part}/")
        return tensors

    @staticmethod
    def _metadata(step, metrics, state):
        meta = {"step": str(int(step))}
        for k, v in metrics.items():
            meta[str(k)] = repr(float(v)) if isinstance(v, (int, float)) \
                else _model.meta_str(v)
        meta[_META_KEY] = json.dumps(state, allow_nan=True)
        return meta

    def _save_distributed(self, step, model, optimizer, metrics, message):
        """This rank's part: model/<key> (tensors or regions), and its own
        optim/rankR/..., rng/rankR/... and state/rankR (the JSON of its
        optimizer and RNG states, as bytes). The checkpoint's metadata
        (step, metrics, world size) and message are rank 0's (the library
        takes each key from the first writer that has it)."""
        rank, world = self.rank, self.world_size
        msg = message or f"step {int(step)}"
        txn = f"step-{int(step)}"

        def part():
            own = {}
            tensors = self._tensors(model, optimizer, own, f"/rank{rank}")
            tensors[f"state/rank{rank}"] = np.frombuffer(
                json.dumps(own, allow_nan=True).encode(), np.uint8)
            mets = dict(metrics or {})
            state = {"version": 1, "step": int(step), "metrics": mets,
                     "world_size": world}
            return dict(obj=tensors, branch=self.branch, txn=txn,
                        writer=rank, n_writers=world,
                        metadata=self._metadata(step, mets, state),
                        message=msg, sign_key=self.sign_key)

        def finish_now():
            return self.repo.finish(txn, world, self.branch, message=msg,
                                    sign_key=self.sign_key)

        if self.background:
            self.wait()
            try:  # staged now; every error waits for the collective
                pending, err = self.repo.commit_part_async(**part()), None
            except Exception as e:
                pending, err = None, e
            self._pending = _PendingPart(self, txn, pending, err,
                                         finish_now)
            return self._pending
        # commit(): all that may fail (see collective_commit)
        cid = _dist.collective_commit(
            lambda: (txn, self.repo.commit_part(**part())), finish_now)
        if rank == 0 and cid is not None:
            self._retain()
        return cid

    def _restore_distributed(self, model, optimizer, rng):
        """restore_latest() of a distributed Checkpointer: the model's
        tensors (whole, or the regions its triples name: any world size),
        then this rank's optimizer and RNG states (the same world size
        only)."""
        try:
            cid = self.repo.resolve(self.branch)
        except NotFoundError:
            return None
        st = self.repo.stat(cid)
        try:
            state = json.loads(st["metadata"].get(_META_KEY, "{}"))
        except ValueError as e:
            raise CorruptError(CORRUPT, f"checkpoint {cid[:12]}: metadata "
                               f"{_META_KEY} is not JSON ({e})") from None
        if "world_size" not in state:
            raise CorruptError(CORRUPT, f"checkpoint {cid[:12]} was not "
                               "written by a distributed Checkpointer")
        if model is not None:
            sd = _model.state_dict_of(model, "Checkpointer.restore_latest")
            _dist.read(self.repo, cid, {"model/" + k: v
                                        for k, v in sd.items()})
        if optimizer is None and not rng:
            return state["step"]
        rank, world = self.rank, self.world_size
        if state["world_size"] != world:
            raise ValueError(f"checkpoint {cid[:12]} was saved by "
                             f"{state['world_size']} ranks, this run has "
                             f"{world}: its optimizer and RNG states are "
                             "per rank (restore_latest(model, rng=False) "
                             "restores the model alone)")
        mine = (f"optim/rank{rank}/", f"rng/rank{rank}/")
        names = [n for n in st["tensors"]
                 if n.startswith(mine) or n == f"state/rank{rank}"]
        ck = self.repo.checkout(cid, framework="numpy", names=names)
        own = json.loads(ck[f"state/rank{rank}"].tobytes())
        self._restore_state(own, ck, optimizer, rng, f"/rank{rank}")
        return state["step"]

    @staticmethod
    def _rng_state(tensors, prefix):
        rng = {}
        ver, mt, gauss = random.getstate()
        rng["python"] = [ver, list(mt), gauss]
        name, keys, pos, has_gauss, cached = np.random.get_state()
        tensors[prefix + "numpy"] = np.asarray(keys)
        rng["numpy"] = [name, int(pos), int(has_gauss), float(cached)]
        torch = sys.modules.get("torch")  # torch's RNG only if torch is used
        if torch is not None:
            tensors[prefix + "torch"] = torch.get_rng_state()
            rng["torch"] = True
            if torch.cuda.is_available():
                states = torch.cuda.get_rng_state_all()
                for i, s in enumerate(states):
                    tensors[f"{prefix}cuda/{i}"] = s
                rng["cuda"] = len(states)
        return rng

    def _retain(self):
        if self.keep_last is None and self.keep_best is None:
            return
        try:
            decisions = self.repo.prune(
                keep_last=self.keep_last, keep_best=self.keep_best,
                metric=self.metric, mode=self.mode, branch=self.branch)
            if any(not d["keep"] for d in decisions):
                self.repo.gc()
        except ConflictError:
            pass  # a concurrent commit holds the lock: retry next save

    # -- restoring ---------------------------------------------------------
    def restore_latest(self, model=None, optimizer=None, *, rng=True):
        """Restore the newest checkpoint of the branch into `model`,
        `optimizer` and (if `rng`) the RNGs; return its step, or None if
        the branch has no checkpoint yet (so ``restore_latest(...) or 0``
        is the step to continue after).

        model: an nn.Module (load_state_dict, strict), a dict of torch
            tensors (copied into in place) or a dict of NumPy arrays
            (assigned in place when shape and dtype match, else replaced).
        optimizer: a torch optimizer (load_state_dict: param_groups with
            their hyper-parameters and per-parameter state), or a dict
            (cleared and refilled).

        Any checkpoint restores, also one not written by a Checkpointer
        (``wv.save(model, "./ckpts@main")``, ``wv commit``): its tensors go
        into `model` by name (all of them: strict for an nn.Module), the
        optimizer and the RNGs are left as they are, and the step returned
        is its ``step`` metadata if that is an integer, else 0.
        """
        self.wait()
        if self.distributed:
            return self._restore_distributed(model, optimizer, rng)
        try:
            cid = self.repo.resolve(self.branch)
        except NotFoundError:
            return None
        ck = self.repo.checkout(cid, framework="numpy",
                                verify_signer=self.verify_signer)
        if _META_KEY not in ck.metadata:
            return self._restore_plain(ck, cid, model)
        try:
            state = json.loads(ck.metadata[_META_KEY])
        except ValueError as e:
            raise CorruptError(CORRUPT, f"checkpoint {cid[:12]}: metadata "
                               f"{_META_KEY} is not JSON ({e})") from None
        if model is not None:
            self._restore_model(model, {k[6:]: (v, ck.dtypes[k])
                                        for k, v in ck.items()
                                        if k.startswith("model/")})
        self._restore_state(state, ck, optimizer, rng)
        return state["step"]

    @classmethod
    def _restore_state(cls, state, ck, optimizer, rng, part=""):
        """The optimizer's and (if `rng`) the RNGs' state that
        :meth:`_tensors` put into `state` and the tensors of checkout
        `ck`."""
        if optimizer is not None and "optimizer" in state:
            osd = _decode(state["optimizer"], ck,
                          state.get("optimizer_kind") == "torch")
            if _is_module(optimizer):
                optimizer.load_state_dict(osd)
            else:
                optimizer.clear()
                optimizer.update(osd)
        if rng:
            cls._restore_rng(state["rng"], ck, f"rng{part}/")

    def _restore_plain(self, ck, cid, model):
        """A checkpoint not written by a Checkpointer (``wv.save(model,
        "./ckpts@main")``, ``wv commit``): its tensors, by their own names,
        are the model's; there is no optimizer or RNG state to restore. The
        step is its ``step`` metadata when that is an integer, else 0."""
        if model is not None:
            self._restore_model(model, {k: (v, ck.dtypes[k])
                                        for k, v in ck.items()})
        try:
            return int(ck.metadata.get("step", "0"))
        except ValueError:
            return 0

    @staticmethod
    def _restore_model(model, arrays):
        """arrays: key -> (NumPy array over the checkout, stored dtype)."""
        if _is_module(model):
            model.load_state_dict({k: _model.numpy_to_torch(a, dt)
                                   for k, (a, dt) in arrays.items()})
            return
        for k, (a, dt) in arrays.items():
            cur = model.get(k)
            if _model._is_torch_tensor(cur):
                torch = _model._torch()
                with torch.no_grad():
                    cur.copy_(_model.numpy_to_torch(a, dt).reshape(cur.shape))
            elif isinstance(cur, np.ndarray) and cur.shape == a.shape and \
                    cur.dtype == a.dtype and cur.flags.writeable:
                cur[...] = a
            else:
                model[k] = a

    @staticmethod
    def _restore_rng(rng, ck, prefix):
        if "python" in rng:
            ver, mt, gauss = rng["python"]
            random.setstate((ver, tuple(mt), gauss))
        if "numpy" in rng:
            name, pos, has_gauss, cached = rng["numpy"]
            np.random.set_state((name, np.array(ck[prefix + "numpy"]), pos,
                                 has_gauss, cached))
        if rng.get("torch"):
            torch = _model._torch()
            torch.set_rng_state(torch.from_numpy(np.array(ck[prefix + "torch"])))
            n = rng.get("cuda", 0)
            if n and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(
                    [torch.from_numpy(np.array(ck[f"{prefix}cuda/{i}"]))
                     for i in range(n)])
