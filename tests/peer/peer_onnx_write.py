#!/usr/bin/env python3
"""peer_onnx_write.py -- ONNX written over a template (wv convert
--template), checked with Debian's python3-onnx.

    peer_onnx_write.py real DATA OUT   every model.onnx of libonnx-testdata
        with initializers that wv reads: converted to safetensors and
        written back over itself (onnx.checker.check_model passes, every
        initializer's numpy_helper.to_array equals the tensor written, and
        whether the bytes are the template's is counted); for the models
        with test inputs, a copy with one float initializer changed
        (times 2, plus 1) too, and OUT/ort.json listing template, same and
        changed models with their inputs (raw files) for peer_ort.js.
        Fails if fewer than 40 round trips hold or any fails.
    peer_onnx_write.py made OUT        models made with onnx.helper: a
        MatMul+Add model (OUT/lin: its changed weights' expected output
        by NumPy in expected.bin, for peer_ort.js), external data, If
        subgraphs, a float16 template (--dtype), and the refusals.
    peer_onnx_write.py ort DATA OUT    only what peer_ort.js runs (for
        tests/cli/onnx_ort.sh; onnx_write.sh runs real and made): real's
        models that have test inputs (their round trips checked the same
        way, no minimum count) and made's OUT/lin and OUT/ext.
    peer_onnx_write.py ortcheck OUT    peer_ort.js's outputs: same weights
        give the template's outputs bit for bit, changed ones differ, and
        OUT/lin's equal NumPy's; OUT/ext's output (X = 0) is the weights
        written to its external data file.
Env: WV (the wv binary); weightvault importable.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import weightvault as wv

WV = os.environ["WV"]
ORT_TYPES = {np.float32: "float32", np.float64: "float64", np.int64: "int64",
             np.int32: "int32", np.uint8: "uint8", np.int8: "int8",
             np.bool_: "bool", np.float16: "float16"}


def run(*args):
    # the sanitizer runtime preloaded for this Python (ASan builds) is not
    # the one the wv binary links
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    return subprocess.run([WV, *args], capture_output=True, text=True,
                          env=env)


def inits(model_path):
    m = onnx.load(model_path)
    base = os.path.dirname(model_path)
    return {t.name: numpy_helper.to_array(t, base) for t in m.graph.initializer}


def same_arrays(a, b):
    return (a.dtype == b.dtype and a.shape == b.shape and
            np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes())


def check_written(path, want):
    """check_model passes and every initializer equals want[name]."""
    onnx.checker.check_model(path)
    got = inits(path)
    assert sorted(got) == sorted(want), (path, sorted(got), sorted(want))
    for k in got:
        assert same_arrays(got[k], want[k]), (path, k)


def real(data, out, only_ort=False):
    os.makedirs(out, exist_ok=True)
    n_ok = n_same_bytes = n_skip = 0
    cases, failed = [], []
    for root, _dirs, files in sorted(os.walk(data)):
        if "model.onnx" not in files:
            continue
        src = os.path.join(root, "model.onnx")
        ds = os.path.join(root, "test_data_set_0")
        if only_ort and not os.path.isdir(ds):
            continue  # no test inputs: nothing for onnxruntime to run
        try:
            tm = onnx.load(src)
        except Exception:
            n_skip += 1
            continue
        if not tm.graph.initializer:
            continue
        rel = os.path.relpath(root, data).replace("/", "_")
        st = os.path.join(out, rel + ".safetensors")
        r = run("convert", "-q", src, st)
        if r.returncode != 0:  # a model the reader refuses: not a template
            n_skip += 1
            continue
        dst = os.path.join(out, rel + ".onnx")
        r = run("convert", "-q", st, dst, "--template", src)
        if r.returncode != 0:
            failed.append((rel, r.stderr.strip()))
            continue
        try:
            check_written(dst, inits(src))
        except Exception as e:  # noqa: BLE001 -- reported, counted
            failed.append((rel, repr(e)[:300]))
            continue
        n_ok += 1
        if open(src, "rb").read() == open(dst, "rb").read():
            n_same_bytes += 1
        # one float initializer changed, for onnxruntime
        if not os.path.isdir(ds):
            continue
        t = wv.load(st)
        names = [k for k in t if t[k].dtype == np.float32 and t[k].size > 1]
        if not names:
            continue
        k = max(names, key=lambda n: t[n].size)
        arrs = {n: np.array(t[n]) for n in t}
        arrs[k] = arrs[k] * 2 + 1
        st2 = os.path.join(out, rel + ".changed.safetensors")
        wv.save(arrs, st2)
        chg = os.path.join(out, rel + ".changed.onnx")
        r = run("convert", "-q", st2, chg, "--template", src)
        if r.returncode != 0:
            failed.append((rel + " (changed)", r.stderr.strip()))
            continue
        want = inits(src)
        want[k] = arrs[k]
        check_written(chg, want)
        init_names = {i.name for i in tm.graph.initializer}
        in_names = [i.name for i in tm.graph.input if i.name not in init_names]
        inputs = []
        for i, name in enumerate(in_names):
            pb = os.path.join(ds, "input_%d.pb" % i)
            if not os.path.exists(pb):
                break
            tp = onnx.TensorProto()
            tp.ParseFromString(open(pb, "rb").read())
            a = numpy_helper.to_array(tp)
            if a.dtype.type not in ORT_TYPES:
                break
            f = os.path.join(out, "%s.in%d.bin" % (rel, i))
            np.ascontiguousarray(a).tofile(f)
            inputs.append({"name": name, "type": ORT_TYPES[a.dtype.type],
                           "dims": list(a.shape), "file": f})
        if len(inputs) != len(in_names):
            continue
        cases.append({"name": rel, "template": src, "same": dst,
                      "changed": chg, "inputs": inputs,
                      "out": os.path.join(out, rel)})
    json.dump(cases, open(os.path.join(out, "ort.json"), "w"), indent=1)
    print("round trips: %d (byte-identical to the template: %d), not "
          "templates (refused by the reader or by onnx): %d, failed: %d, "
          "onnxruntime cases: %d"
          % (n_ok, n_same_bytes, n_skip, len(failed), len(cases)))
    for f in failed:
        print("FAILED", *f)
    return 0 if not failed and (only_ort or n_ok >= 40) else 1


def made(out, only_ort=False):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    ok = True

    def expect_fail(args, pattern):
        nonlocal ok
        r = run(*args)
        lines = r.stderr.strip().splitlines()
        if r.returncode == 0 or len(lines) != 1 or pattern not in lines[0]:
            print("FAIL: %s: want one line with %r, got rc %d %r"
                  % (" ".join(args[:3]), pattern, r.returncode, r.stderr))
            ok = False

    # 1. Y = X @ W + B, for onnxruntime: changed weights, expected output.
    d = os.path.join(out, "lin")
    os.makedirs(d, exist_ok=True)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["XW"]),
         helper.make_node("Add", ["XW", "B"], ["Y"])], "lin",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 3])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    onnx.save(m, os.path.join(d, "model.onnx"))
    x = rng.standard_normal((2, 4)).astype(np.float32)
    x.tofile(os.path.join(d, "x.bin"))
    w2 = (w * 3 - 1).astype(np.float32)
    b2 = (b + 0.5).astype(np.float32)
    wv.save({"W": w, "B": b}, os.path.join(d, "same.safetensors"))
    wv.save({"W": w2, "B": b2}, os.path.join(d, "changed.safetensors"))
    for k in ("same", "changed"):
        assert run("convert", "-q", os.path.join(d, k + ".safetensors"),
                   os.path.join(d, k + ".onnx"), "--template",
                   os.path.join(d, "model.onnx")).returncode == 0, k
    # float32 as onnxruntime computes it: a dot of 4 products, then + b
    (x @ w2 + b2).astype(np.float32).tofile(os.path.join(d, "expected.bin"))
    check_written(os.path.join(d, "changed.onnx"), {"W": w2, "B": b2})
    assert (open(os.path.join(d, "same.onnx"), "rb").read() ==
            open(os.path.join(d, "model.onnx"), "rb").read())

    if not only_ort:
        # 2. Typed fields (float_data, int64_data) become raw_data.
        g = helper.make_graph(
            [helper.make_node("Identity", ["A"], ["Y"])], "typed", [],
            [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [3])],
            [helper.make_tensor("A", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0]),
             helper.make_tensor("I", TensorProto.INT64, [2], [5, -6])])
        tpl = os.path.join(out, "typed.onnx")
        onnx.save(helper.make_model(g), tpl)
        a = np.array([7, 8, 9], np.float32)
        i = np.array([1, 2], np.int64)
        wv.save({"A": a, "I": i}, os.path.join(out, "typed.safetensors"))
        r = run("convert", "-q", os.path.join(out, "typed.safetensors"),
                os.path.join(out, "typed.out.onnx"), "--template", tpl)
        assert r.returncode == 0, r.stderr
        check_written(os.path.join(out, "typed.out.onnx"), {"A": a, "I": i})
        assert not onnx.load(os.path.join(out, "typed.out.onnx")).graph.initializer[0].float_data

    # 3. External data: the template's layout kept (a new OUT.data file).
    e = os.path.join(out, "ext")
    os.makedirs(e, exist_ok=True)
    big = rng.standard_normal((64, 64)).astype(np.float32)
    small = np.arange(3, dtype=np.float32)
    g = helper.make_graph(
        [helper.make_node("Add", ["X", "E"], ["Y"])], "ext",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [64, 64])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [64, 64])],
        [numpy_helper.from_array(big, "E"), numpy_helper.from_array(small, "S")])
    m = helper.make_model(g)
    onnx.save_model(m, os.path.join(e, "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin",
                    size_threshold=1024)
    big2 = big + 1
    wv.save({"E": big2, "S": small}, os.path.join(e, "w.safetensors"))
    r = run("convert", "-q", os.path.join(e, "w.safetensors"),
            os.path.join(e, "out.onnx"), "--template", os.path.join(e, "model.onnx"))
    assert r.returncode == 0, r.stderr
    assert os.path.getsize(os.path.join(e, "out.onnx.data")) >= big.nbytes
    check_written(os.path.join(e, "out.onnx"), {"E": big2, "S": small})
    ext = onnx.load(os.path.join(e, "out.onnx"), load_external_data=False)
    locs = {t.name: t.data_location for t in ext.graph.initializer}
    assert locs == {"E": TensorProto.EXTERNAL, "S": TensorProto.DEFAULT}, locs
    # and read back by wv itself
    t = wv.load(os.path.join(e, "out.onnx"))
    assert same_arrays(np.array(t["E"]), big2)

    if only_ort:
        return 0

    # 4. If subgraphs: scoped names.
    then_g = helper.make_graph(
        [helper.make_node("Identity", ["T"], ["o"])], "then", [],
        [helper.make_tensor_value_info("o", TensorProto.FLOAT, [2])],
        [numpy_helper.from_array(np.array([1, 2], np.float32), "T")])
    else_g = helper.make_graph(
        [helper.make_node("Identity", ["T"], ["o"])], "else", [],
        [helper.make_tensor_value_info("o", TensorProto.FLOAT, [2])],
        [numpy_helper.from_array(np.array([3, 4], np.float32), "T")])
    g = helper.make_graph(
        [helper.make_node("If", ["C"], ["Y"], name="pick",
                          then_branch=then_g, else_branch=else_g)], "sub",
        [], [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])],
        [numpy_helper.from_array(np.array(True), "C")])
    tpl = os.path.join(out, "sub.onnx")
    onnx.save(helper.make_model(g), tpl)
    subw = {"C": np.array(False), "pick/then_branch/T": np.array([5, 6], np.float32),
            "pick/else_branch/T": np.array([7, 8], np.float32)}
    wv.save(subw, os.path.join(out, "sub.safetensors"))
    r = run("convert", "-q", os.path.join(out, "sub.safetensors"),
            os.path.join(out, "sub.out.onnx"), "--template", tpl)
    assert r.returncode == 0, r.stderr
    sm = onnx.load(os.path.join(out, "sub.out.onnx"))
    onnx.checker.check_model(sm)
    br = {a.name: numpy_helper.to_array(a.g.initializer[0])
          for a in sm.graph.node[0].attribute}
    assert same_arrays(br["then_branch"], subw["pick/then_branch/T"])
    assert same_arrays(br["else_branch"], subw["pick/else_branch/T"])
    assert not numpy_helper.to_array(sm.graph.initializer[0])

    # 5. dtypes: a float16 template over float32 weights needs --dtype.
    h = np.array([1.5, -2.25], np.float16)
    g = helper.make_graph(
        [helper.make_node("Identity", ["H"], ["Y"])], "half", [],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT16, [2])],
        [numpy_helper.from_array(h, "H")])
    tpl = os.path.join(out, "half.onnx")
    onnx.save(helper.make_model(g), tpl)
    wv.save({"H": np.array([0.5, 3.0], np.float32)},
            os.path.join(out, "half32.safetensors"))
    expect_fail(["convert", "-q", os.path.join(out, "half32.safetensors"),
                 os.path.join(out, "half.out.onnx"), "--template", tpl],
                "tensor 'H' is F32, the template's initializer is FLOAT16 (F16); convert with --dtype F16")
    r = run("convert", "-q", os.path.join(out, "half32.safetensors"),
            os.path.join(out, "half.out.onnx"), "--template", tpl, "--dtype", "F16")
    assert r.returncode == 0, r.stderr
    check_written(os.path.join(out, "half.out.onnx"),
                  {"H": np.array([0.5, 3.0], np.float16)})

    # 6. Refusals, one line each; OUT is not written.
    lin = os.path.join(d, "model.onnx")
    bad = os.path.join(out, "bad")
    os.makedirs(bad, exist_ok=True)
    o = os.path.join(bad, "out.onnx")
    wv.save({"W": w}, os.path.join(bad, "missing.safetensors"))
    expect_fail(["convert", "-q", os.path.join(bad, "missing.safetensors"), o,
                 "--template", lin], "has the initializer 'B', which the set lacks")
    wv.save({"W": w, "B": b, "extra": b}, os.path.join(bad, "extra.safetensors"))
    expect_fail(["convert", "-q", os.path.join(bad, "extra.safetensors"), o,
                 "--template", lin], "tensor 'extra' is not an initializer of the template")
    wv.save({"W": w.T.copy(), "B": b}, os.path.join(bad, "shape.safetensors"))
    expect_fail(["convert", "-q", os.path.join(bad, "shape.safetensors"), o,
                 "--template", lin], "tensor 'W' has the shape [3, 4], the template's initializer [4, 3]")
    wv.save({"W": w.astype(np.float64), "B": b}, os.path.join(bad, "f64.safetensors"))
    expect_fail(["convert", "-q", os.path.join(bad, "f64.safetensors"), o,
                 "--template", lin], "tensor 'W' is F64, the template's initializer is FLOAT (F32)")
    wv.save({"W": w.astype(np.int32), "B": b}, os.path.join(bad, "i32.safetensors"))
    expect_fail(["convert", "-q", os.path.join(bad, "i32.safetensors"), o,
                 "--template", lin], "tensor 'W' is I32, the template's initializer is FLOAT (F32)")
    same = os.path.join(d, "same.safetensors")
    expect_fail(["convert", "-q", same, o], "ONNX needs a template model")
    expect_fail(["convert", "-q", same, o, "--template",
                 os.path.join(bad, "nope.onnx")], "nope.onnx: No such file")
    # malformed templates: the reader's bounds
    raw = open(lin, "rb").read()
    cut = os.path.join(bad, "cut.onnx")
    open(cut, "wb").write(raw[:-7])
    expect_fail(["convert", "-q", same, o, "--template", cut], "cut.onnx")
    two = os.path.join(bad, "twograph.onnx")
    gpos = raw.index(b"\x3a")  # the graph field's tag (7, LEN)
    open(two, "wb").write(raw + raw[gpos:])
    expect_fail(["convert", "-q", same, o, "--template", two], "two graph fields")
    nog = os.path.join(bad, "nograph.onnx")
    open(nog, "wb").write(raw[:gpos])
    expect_fail(["convert", "-q", same, o, "--template", nog], "without a graph")
    # an initializer whose length runs past its graph
    tm = onnx.load(lin)
    tb = tm.graph.initializer[0].SerializeToString()
    pos = raw.index(tb)
    badlen = bytearray(raw)
    badlen[pos - 1] = min(0x7f, badlen[pos - 1] + 40)  # its 1-byte length
    bl = os.path.join(bad, "badlen.onnx")
    open(bl, "wb").write(bytes(badlen))
    expect_fail(["convert", "-q", same, o, "--template", bl], "badlen.onnx")
    sp = os.path.join(bad, "sparse.onnx")
    vals = numpy_helper.from_array(np.array([1.0], np.float32), "SP")
    idx = numpy_helper.from_array(np.array([1], np.int64), "SP_i")
    g = helper.make_graph([helper.make_node("Identity", ["SP"], ["Y"])], "sp", [],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [3])],
                          sparse_initializer=[helper.make_sparse_tensor(vals, idx, [3])])
    onnx.save(helper.make_model(g), sp)
    wv.save({"SP": np.zeros(3, np.float32)}, os.path.join(bad, "sp.safetensors"))
    expect_fail(["convert", "-q", os.path.join(bad, "sp.safetensors"), o,
                 "--template", sp], "initializer 'SP' is sparse")
    if os.path.exists(o):
        print("FAIL: a refused write left", o)
        ok = False
    print("made: ok" if ok else "made: failures")
    return 0 if ok else 1


def ortcheck(out):
    bad = 0
    res = json.load(open(os.path.join(out, "ort-results.json")))
    n_same = n_changed = n_run = 0
    for c in res:
        if c.get("error"):
            continue  # onnxruntime cannot run the template itself
        n_run += 1
        t, s, ch = c["template"], c["same"], c["changed"]
        if t != s:
            print("FAIL: %s: same weights, other outputs" % c["name"])
            bad += 1
        else:
            n_same += 1
        if ch == t:
            print("FAIL: %s: changed weights, same outputs" % c["name"])
            bad += 1
        else:
            n_changed += 1
    print("onnxruntime: %d models run (%d the template cannot run): outputs "
          "equal with the same weights: %d, changed with changed weights: %d"
          % (n_run, len(res) - n_run, n_same, n_changed))
    d = os.path.join(out, "lin")
    got = np.fromfile(os.path.join(d, "changed.out.bin"), np.float32)
    want = np.fromfile(os.path.join(d, "expected.bin"), np.float32)
    if not np.allclose(got, want, rtol=1e-6, atol=1e-6):
        print("FAIL: lin: onnxruntime gives", got, "NumPy", want)
        bad += 1
    else:
        print("lin: onnxruntime's output with the changed weights equals "
              "NumPy's (max diff %g)" % float(np.max(np.abs(got - want))))
    e = os.path.join(out, "ext")
    got = np.fromfile(os.path.join(e, "ort.out.bin"), np.float32)
    want = np.ascontiguousarray(inits(os.path.join(e, "out.onnx"))["E"]).ravel()
    if got.tobytes() != want.tobytes():
        print("FAIL: ext: onnxruntime's output is not the external weights")
        bad += 1
    else:
        print("ext: onnxruntime reads the written external data file")
    if n_run < 5:
        print("FAIL: only %d models ran" % n_run)
        bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "real":
        sys.exit(real(sys.argv[2], sys.argv[3]))
    if mode == "made":
        sys.exit(made(sys.argv[2]))
    if mode == "ort":
        sys.exit(real(sys.argv[2], sys.argv[3], only_ort=True) or
                 made(sys.argv[3], only_ort=True))
    if mode == "ortcheck":
        sys.exit(ortcheck(sys.argv[2]))
    sys.exit("unknown mode " + mode)
