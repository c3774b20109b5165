#!/usr/bin/env bash
# pth_objects.sh -- TorchScript archives and whole-model pickles are read
# without running anything, and agree with torch 1.13's own view.
#
# 1. TorchScript (torch.jit.save of scripted, traced and nested modules
#    with parameters, BatchNorm buffers, a non-persistent buffer, a plain
#    tensor attribute, a shared submodule): `wv inspect --json` lists
#    exactly torch.jit.load(f).state_dict(): names in order, shapes, sha256.
# 2. torch.save(model) of nn.Module subclasses from a module that is then
#    deleted (nested modules, tied parameters, persistent=False buffers,
#    plain tensor attributes), a Sequential, a checkpoint dict holding a
#    model, the legacy format: with --objects, exactly the state_dict()
#    of torch's own full load (taken before the module is deleted); an
#    optimizer state dict: its tensors by dotted path.
# 3. Without --objects the whole-model files are refused with one line
#    naming the option; hostile pickles (os.system, subprocess.Popen,
#    builtins.eval via REDUCE) are refused even with --objects and run
#    nothing; a module containing itself hits the depth bound. convert,
#    verify and commit take --objects too.
#
# Env: WV, PYTHON (/usr/bin/python3 with torch).
set -u
WV=${WV:?WV must name the wv binary}
PYTHON=${PYTHON:-/usr/bin/python3}
. "$(dirname "$0")/../harness/cli.sh"
failures=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
d=$tmp/f
mkdir -p "$d/mods"

# torch.jit.script reads the classes' source: the generator is a file.
cat >"$tmp/gen.py" <<'PY'
import sys, os, json, hashlib, pickle, importlib, shutil
import torch, torch.nn as nn
d = sys.argv[1]
torch.manual_seed(3)

def listing(sd):
    out = []
    for k, v in sd.items():
        t = v.detach().contiguous()
        out.append([k, list(t.shape), hashlib.sha256(t.numpy().tobytes()).hexdigest()])
    return out

def flat(o, p, out):
    if isinstance(o, torch.Tensor):
        out[p] = o
    elif isinstance(o, dict):
        for k, v in o.items():
            flat(v, f"{p}.{k}" if p else str(k), out)
    elif isinstance(o, (list, tuple)):
        for i, v in enumerate(o):
            flat(v, f"{p}.{i}" if p else str(i), out)
    return out

expect = {}
# ---- TorchScript
class M(nn.Module):
    def __init__(s):
        super().__init__()
        s.a = nn.Linear(3, 2)
        s.bn = nn.BatchNorm1d(2)
        s.register_buffer("np_buf", torch.ones(2), persistent=False)
        s.register_buffer("pb", torch.arange(3.0))
        s.t = torch.full((4,), 7.0)      # a plain tensor attribute
        s.inner = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        s.shared = s.inner[0]
    def forward(s, x):
        return s.inner(s.bn(s.a(x))) + s.np_buf.sum() + s.t.sum() + s.pb.sum()
m = M()
m.train(); m(torch.randn(5, 3)); m.eval()     # running stats move
torch.jit.save(torch.jit.script(m), f"{d}/ts_script.pt")
torch.jit.save(torch.jit.trace(m, torch.randn(4, 3)), f"{d}/ts_trace.pt")
nest = nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)),
                     nn.Flatten(), nn.Linear(8, 3, bias=False))
torch.jit.save(torch.jit.script(nest), f"{d}/ts_nested.pt")
for f in ("ts_script", "ts_trace", "ts_nested"):
    expect[f] = listing(torch.jit.load(f"{d}/{f}.pt").state_dict())

# ---- whole-model pickles of classes from a module deleted afterwards
mdir = f"{d}/mods"
open(f"{mdir}/wvtmp_models.py", "w").write('''
import torch, torch.nn as nn
class Block(nn.Module):
    def __init__(s):
        super().__init__()
        s.lin = nn.Linear(4, 4)
        s.register_buffer("scale", torch.tensor([2.0, 3.0]))
        s.register_buffer("cache", torch.zeros(3), persistent=False)
        s.note = "block"
class Net(nn.Module):
    def __init__(s):
        super().__init__()
        s.emb = nn.Embedding(5, 4)
        s.b1 = Block(); s.b2 = Block()
        s.head = nn.Linear(4, 5, bias=False)
        s.head.weight = s.emb.weight          # tied parameters
        s.again = s.b1                        # shared submodule
        s.plain = torch.ones(2)               # not in state_dict
        s.bn = nn.BatchNorm1d(4)
        s.depth = 2; s.rate = 0.5; s.name = "net"
''')
sys.path.insert(0, mdir)
mods = importlib.import_module("wvtmp_models")
net = mods.Net()
torch.save(net, f"{d}/obj_net.pt")
torch.save(net, f"{d}/obj_legacy.pt", _use_new_zipfile_serialization=False)
seq = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.BatchNorm1d(3), nn.Dropout())
torch.save(seq, f"{d}/obj_seq.pt")
torch.save({"model": net, "epoch": 7, "lr": 0.01}, f"{d}/obj_ckpt.pt")
opt = torch.optim.Adam(seq.parameters(), lr=1e-3)
seq(torch.randn(4, 3)).sum().backward(); opt.step()
torch.save(opt.state_dict(), f"{d}/optim.pt")
for f in ("obj_net", "obj_legacy", "obj_seq"):
    expect[f] = listing(torch.load(f"{d}/{f}.pt").state_dict())
ck = torch.load(f"{d}/obj_ckpt.pt")
expect["obj_ckpt"] = listing({"model." + k: v for k, v in ck["model"].state_dict().items()})
expect["optim"] = listing(flat(torch.load(f"{d}/optim.pt"), "", {}))

# ---- hostile pickles (never loaded by this script)
class Evil:
    def __init__(s, f, a): s.f, s.a = f, a
    def __reduce__(s): return (s.f, s.a)
import os as _os, subprocess, builtins
marker = f"{d}/PWNED"
for nm, fn, args in (("evil_os", _os.system, ("touch " + marker,)),
                     ("evil_popen", subprocess.Popen, (["touch", marker],)),
                     ("evil_eval", builtins.eval, ("open(%r,'w')" % marker,))):
    torch.save({"w": torch.ones(2), "x": Evil(fn, args)}, f"{d}/{nm}.pt")
# a module that contains itself: the depth bound holds through placeholders
import collections
class Loop: pass
lp = Loop()
lp.__dict__.update({"_parameters": collections.OrderedDict(w=torch.ones(1)),
                    "_buffers": {}, "_modules": collections.OrderedDict(x=lp)})
torch.save(lp, f"{d}/obj_cycle.pt")
json.dump(expect, open(f"{d}/expect.json", "w"))
# Make the module unimportable: wv must do without it, torch cannot.
shutil.rmtree(mdir)
PY
"$PYTHON" "$tmp/gen.py" "$d" || { echo "FAIL: cannot generate the files"; exit 1; }

cat >"$tmp/cmp.py" <<'PY'
import json, sys
exp = json.load(open(sys.argv[1]))[sys.argv[2]]
got = json.load(open(sys.argv[3]))
g = [[t["name"], t["shape"], t["sha256"]] for t in got["tensors"]]
if len(sys.argv) > 4:  # "sorted": the format keeps names sorted
    exp = sorted(exp)
    g = sorted(g)
if g != exp:
    print("expected:", exp, file=sys.stderr)
    print("got:     ", g, file=sys.stderr)
    sys.exit(1)
PY

# torch itself can no longer load the whole-model files
"$PYTHON" -c 'import torch,sys; torch.load(sys.argv[1])' "$d/obj_net.pt" \
    >/dev/null 2>&1 && fail "torch still imports the deleted module"

for f in ts_script ts_trace ts_nested; do
    expect 0 "$WV" inspect --json "$d/$f.pt"
    "$PYTHON" "$tmp/cmp.py" "$d/expect.json" "$f" "$tmp/out" ||
        fail "$f.pt differs from torch.jit.load(f).state_dict()"
done
# The plain tensor attribute and the traced constant are not parameters.
expect 0 "$WV" inspect "$d/ts_script.pt"
grep -q '^t ' "$tmp/out" && fail "ts_script.pt: plain tensor attribute t listed"

for f in obj_net obj_legacy obj_seq obj_ckpt; do
    expect 1 "$WV" inspect "$d/$f.pt"
    one_line_error "--objects"
    expect 0 "$WV" inspect --json --objects "$d/$f.pt"
    "$PYTHON" "$tmp/cmp.py" "$d/expect.json" "$f" "$tmp/out" ||
        fail "$f.pt --objects differs from torch's state_dict()"
done
expect 0 "$WV" inspect --json --objects "$d/obj_ckpt.pt"
pyjson 'd["metadata"].get("epoch") == "7" and d["metadata"].get("lr") == "0.01" and d["metadata"].get("model.name") == "net"'
expect 0 "$WV" inspect --json "$d/optim.pt"
"$PYTHON" "$tmp/cmp.py" "$d/expect.json" optim "$tmp/out" ||
    fail "optim.pt differs from torch.load's tensors"

for f in evil_os evil_popen evil_eval; do
    expect 1 "$WV" inspect "$d/$f.pt"
    one_line_error "refusing global"
    grep -q -- "--objects" "$tmp/err" && fail "$f.pt: the refusal suggests --objects"
    expect 1 "$WV" inspect --objects "$d/$f.pt"
    one_line_error "refusing global"
done
[ -e "$d/PWNED" ] && fail "a hostile pickle ran code"
expect 1 "$WV" inspect --objects "$d/obj_cycle.pt"
one_line_error "nested deeper than 100 levels"

# The other commands take --objects.
expect 0 "$WV" convert --objects "$d/obj_net.pt" "$tmp/net.safetensors"
expect 0 "$WV" inspect --json "$tmp/net.safetensors"
"$PYTHON" "$tmp/cmp.py" "$d/expect.json" obj_net "$tmp/out" sorted ||
    fail "obj_net.pt -> safetensors lost tensors"
expect 0 "$WV" convert "$d/ts_trace.pt" "$tmp/trace.pth"
expect 0 "$WV" verify --objects "$d/obj_seq.pt"
expect 1 "$WV" verify "$d/obj_seq.pt"
expect 0 "$WV" init "$tmp/repo"
expect 0 "$WV" commit "$tmp/repo" --objects "$d/obj_net.pt" -q
expect 1 "$WV" commit "$tmp/repo" "$d/obj_seq.pt" -q
one_line_error "--objects"
finish
