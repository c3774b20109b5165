"""objects=True reads whole-model pickles (torch.save(model)) through inert
placeholders with model.state_dict()'s names; without it they are refused
naming the option. TorchScript archives load as torch.jit.load(f)
.state_dict()."""
import importlib
import shutil
import sys

import numpy as np
import pytest

import weightvault as wv

torch = pytest.importorskip("torch")


def test_whole_model_needs_objects_and_matches_state_dict(tmp_path):
    mdir = tmp_path / "mods"
    mdir.mkdir()
    (mdir / "wv_pyobj_mod.py").write_text(
        "import torch, torch.nn as nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(s):\n"
        "        super().__init__()\n"
        "        s.a = nn.Linear(3, 2); s.b = nn.Sequential(nn.Linear(2, 2))\n"
        "        s.register_buffer('keep', torch.ones(2))\n"
        "        s.register_buffer('skip', torch.ones(2), persistent=False)\n")
    sys.path.insert(0, str(mdir))
    try:
        net = importlib.import_module("wv_pyobj_mod").Net()
    finally:
        sys.path.remove(str(mdir))
    path = tmp_path / "net.pt"
    torch.save(net, path)
    want = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    del sys.modules["wv_pyobj_mod"]
    shutil.rmtree(mdir)
    with pytest.raises(wv.WeightvaultError) as e:
        wv.load(path)
    assert "objects" in e.value.message
    got = wv.load(path, objects=True)
    assert list(got) == list(want)
    for k in want:
        assert np.array_equal(got[k], want[k])


def test_torchscript_archive(tmp_path):
    m = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    path = tmp_path / "s.pt"
    torch.jit.save(torch.jit.script(m), str(path))
    want = torch.jit.load(str(path)).state_dict()
    got = wv.load(path)
    assert list(got) == list(want)
    for k, v in want.items():
        assert np.array_equal(got[k], v.numpy())
