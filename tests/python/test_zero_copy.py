"""Zero copy, measured: loading 1 GiB of safetensors adds no anonymous
memory (only file-backed pages of the mapping), and every array's data lies
inside the mapping of that file in /proc/self/maps."""
import gc
import os

import numpy as np
import torch

import weightvault as wv

GIB = 1 << 30
N_TENSORS = 40
PER = GIB // N_TENSORS // 4  # float32 elements per tensor


def status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def mappings_of(path):
    """[(start, end)] of the mappings of `path` in this process."""
    real = os.path.realpath(path)
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].strip() == real:
                lo, hi = parts[0].split("-")
                out.append((int(lo, 16), int(hi, 16)))
    return out


def make_big_file(path):
    """1 GiB of F32 in 40 tensors, written one tensor at a time (so this
    process never holds more than one tensor's worth)."""
    arrays = {}
    for i in range(N_TENSORS):
        a = np.empty(PER, np.float32)
        a[:] = i
        arrays[f"layer{i:02d}.weight"] = a
    wv.save(arrays, path)
    del arrays
    gc.collect()


def test_1gib_load_adds_no_anonymous_memory(tmp_path):
    path = tmp_path / "big.safetensors"
    make_big_file(path)
    assert os.path.getsize(path) > GIB - (1 << 20)
    anon0, file0 = status_kib("RssAnon"), status_kib("RssFile")
    d = wv.load(path, framework="torch")
    total = 0.0
    for t in d.values():
        # One element per 4 KiB page: every page is faulted in, nothing is
        # allocated (a strided view, summed in place).
        total += float(t[::1024].sum())
    anon1, file1 = status_kib("RssAnon"), status_kib("RssFile")
    expect = sum(i * ((PER + 1023) // 1024) for i in range(N_TENSORS))
    assert total == expect
    # A second copy would add ~1048576 KiB of anonymous memory.
    assert anon1 - anon0 < 64 * 1024, (anon0, anon1)
    # The pages are there, but as file-backed pages of the mapping.
    assert file1 - file0 > 900 * 1024, (file0, file1)
    maps = mappings_of(path)
    assert maps, "the file is not mapped"
    for name, t in d.items():
        p = t.data_ptr()
        end = p + t.numel() * t.element_size()
        assert any(lo <= p and end <= hi for lo, hi in maps), name
    del d, t
    gc.collect()
    assert not mappings_of(path), "the mapping outlived the tensors"


def test_array_pointer_is_inside_the_file_mapping_numpy(tmp_path):
    path = tmp_path / "small.safetensors"
    wv.save({"a": np.arange(10000, dtype=np.float64),
             "b": torch.ones(3, 3, dtype=torch.bfloat16)}, path)
    d = wv.load(path)
    (lo, hi), = mappings_of(path)
    size = os.path.getsize(path)
    assert hi - lo >= size
    for a in d.values():
        p = a.ctypes.data
        assert lo <= p and p + a.nbytes <= lo + size
    # Each array is the file's own bytes at that offset of the mapping.
    raw = path.read_bytes()
    for a in d.values():
        off = a.ctypes.data - lo
        assert raw[off:off + a.nbytes] == a.tobytes()
