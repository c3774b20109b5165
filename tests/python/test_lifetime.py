"""Arrays outlive every handle they came from; the tensor set is freed with
the last array pointing into it, never before."""
import gc
import random
import weakref

import numpy as np
import torch

import weightvault as wv
from weightvault import _model


def _owner(a):
    """The _model.Model an array keeps alive (through its ctypes buffer)."""
    base = a
    while not hasattr(base, "_wv_owner"):
        base = base.base
    return base._wv_owner


def test_one_array_outlives_the_dict(tmp_path):
    path = tmp_path / "w.safetensors"
    ref = {f"t{i}": np.random.default_rng(i).standard_normal(1000)
           for i in range(8)}
    wv.save(ref, path)
    d = wv.load(path)
    keep = d["t5"]
    owner = weakref.ref(_owner(keep))
    del d
    gc.collect()
    assert owner() is not None  # still referenced by `keep`
    assert np.array_equal(keep, ref["t5"])
    del keep
    gc.collect()
    assert owner() is None  # freed with the last array


def test_torch_tensor_outlives_numpy_and_dict(tmp_path, mem_uri):
    wv.save({"w": torch.arange(64, dtype=torch.float32)}, mem_uri + "@main")
    t = wv.load(mem_uri, framework="torch")["w"]
    gc.collect()
    assert t.sum().item() == sum(range(64))
    r = wv.Repository(mem_uri)
    d = r.checkout()
    r.close()  # the checkout does not depend on the repository
    del r
    gc.collect()
    assert d["w"][63].item() == 63.0


def test_views_keep_memory_alive(tmp_path):
    wv.save({"m": np.arange(100, dtype=np.int64).reshape(10, 10)},
            tmp_path / "m.safetensors")
    v = wv.load(tmp_path / "m.safetensors")["m"][3:5, ::2].T
    gc.collect()
    assert v.tolist() == [[30, 40], [32, 42], [34, 44], [36, 46], [38, 48]]


def test_stress_drop_handles_and_touch_survivors(tmp_path, mem_uri):
    """Many loads; keep random survivors from each, drop everything else,
    collect, then read every survivor. A premature free reads unmapped or
    freed memory (a crash, or an ASan report in the sanitizer run)."""
    rng = random.Random(1234)
    path = tmp_path / "s.safetensors"
    sd = {f"t{i}": np.full(1024 + i, i, np.int32) for i in range(16)}
    wv.save(sd, path)
    wv.save(sd, mem_uri + "@main")
    survivors = []
    for it in range(150):
        src = path if it % 2 else mem_uri
        fw = "torch" if it % 3 == 0 else "numpy"
        d = wv.load(src, framework=fw)
        for k in rng.sample(sorted(d), 2):
            survivors.append((k, d[k]))
        del d
        if it % 10 == 0:
            gc.collect()
            rng.shuffle(survivors)
            del survivors[len(survivors) // 2:]
    gc.collect()
    for k, a in survivors:
        i = int(k[1:])
        assert a.shape[0] == 1024 + i and int(a.min()) == i == int(a.max())
    # Hand every survivor back to the library (borrowed, not copied), so the
    # sanitizer build's instrumented reads check the memory is still live:
    # NumPy's own reads above are not instrumented.
    out = {f"s{j}": a for j, (k, a) in enumerate(survivors)}
    wv.save(out, tmp_path / "survivors.safetensors")
    back = wv.load(tmp_path / "survivors.safetensors", framework="numpy")
    assert all(np.array_equal(np.asarray(back[k]), np.asarray(a))
               for k, a in out.items())


def test_model_freed_when_unreferenced(tmp_path):
    wv.save({"a": np.ones(3)}, tmp_path / "a.safetensors")
    d = wv.load(tmp_path / "a.safetensors")
    owner = weakref.ref(_owner(d["a"]))
    assert isinstance(owner(), _model.Model)
    del d
    gc.collect()
    assert owner() is None
