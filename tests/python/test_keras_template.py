"""save(template=KERAS_FILE): a set that is not Keras written to .h5 /
.weights.h5 in the layout of a Keras file of the model (issue 18), filled
by name or by order and shape; a tensor that does not fit is refused with
FormatError naming it."""
import os

import numpy as np
import pytest

import weightvault as wv

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.environ.get("WV_FIXTURES",
                          os.path.join(ROOT, "tests", "fixtures"))
M3 = os.path.join(FIXTURES, "h5", "keras3-mnist-shreyansh")
h5py = pytest.importorskip("h5py")


def model_weights(path):
    """The template's model weights (no optimizer state), in its order."""
    t = wv.load(path)
    return [(k, np.asarray(v)) for k, v in t.items()
            if not k.startswith("optimizer/")]


@pytest.mark.parametrize("tpl", ["model.weights.h5", "model.h5"])
def test_torch_names_fill_by_order(tmp_path, tpl):
    tpl = os.path.join(M3, tpl)
    want = model_weights(tpl)
    src = {"net.%d.%s" % (i // 2, "weight" if i % 2 == 0 else "bias"): a
           for i, (_, a) in enumerate(want)}
    out = str(tmp_path / ("o" + (".weights.h5" if "weights" in tpl
                                 else ".h5")))
    wv.save(src, out, template=tpl)
    got = wv.load(out)
    assert [k for k in got] == [k for k, _ in want]
    for k, a in want:
        assert np.array_equal(np.asarray(got[k]), a), k
    with h5py.File(out, "r") as f:
        # the optimizer state the source lacks is left out
        assert "optimizer" not in f and "optimizer_weights" not in f


def test_by_name_and_refusal(tmp_path):
    tpl = os.path.join(M3, "model.weights.h5")
    want = model_weights(tpl)
    out = str(tmp_path / "n.weights.h5")
    wv.save(dict(want[::-1]), out, template=tpl)   # any order: by name
    got = wv.load(out)
    assert [k for k in got] == [k for k, _ in want]
    bad = {"a%d" % i: a for i, (_, a) in enumerate(want)}
    bad["a2"] = bad["a2"].T.copy()
    with pytest.raises(wv.FormatError, match="'a2'.*does not fit template "
                       "tensor 'layers/dense_1/vars/0'"):
        wv.save(bad, str(tmp_path / "b.weights.h5"), template=tpl)
    assert not os.path.exists(tmp_path / "b.weights.h5")
