#!/usr/bin/env bash
# pth_interop.sh -- PyTorch (Debian's torch 1.13) and wv agree on torch.save
# files.
#
# 1. torch writes a variety of files (every torch 1.13 dtype, 0-d, empty,
#    views with storage offsets sharing one storage, transposed/Fortran
#    strides, nested checkpoints with int/float/str/bool leaves, lists,
#    Parameters, the legacy stream format, pickle protocol 4, a bare
#    tensor root, a deflated zip); `wv inspect --json` must describe each
#    exactly as tests/peer/peer_pth.py (torch.load) does.
# 2. wv writes .pth from each (flat, and --nest); torch.load(f,
#    weights_only=True) must give an OrderedDict whose tensors equal the
#    source's bitwise (flat: dotted names; --nest: the same dict tree).
# 3. Round trips: every fixture -> pth -> safetensors -> pth, and pth ->
#    safetensors / npz / npy (single tensor) -> pth keep every tensor
#    (names, dtypes, shapes, sha256).
#
# Env: WV, WV_FIXTURES, WV_SRC, PYTHON (/usr/bin/python3 with torch).
set -u
WV=${WV:?WV must name the wv binary}
PYTHON=${PYTHON:-/usr/bin/python3}
WV_SRC=${WV_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
WV_FIXTURES=${WV_FIXTURES:-$WV_SRC/tests/fixtures}
. "$(dirname "$0")/../harness/cli.sh"
need_file "$WV_FIXTURES"/pth/{test.pt,test_with_key.pt,fortran_tensor_3d.pth} \
    "$WV_FIXTURES"/pth/{boolean.pt,stianhanssen-mnist_cnn.pt} \
    "$WV_FIXTURES"/pth/tinygrad-mnist.{zip,legacy}.pt \
    "$WV_FIXTURES"/safetensors/tinygrad-mnist.safetensors
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$PYTHON" - "$tmp" <<'EOF' || exit 1
import sys, os, io, zipfile, collections
import torch
d = sys.argv[1] + "/src"
os.makedirs(d)
g = torch.Generator().manual_seed(7)
def rnd(shape, dt):
    if dt == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    if dt.is_complex:
        return torch.randn(shape, dtype=torch.complex64, generator=g)
    if dt.is_floating_point:
        t = (torch.randn(shape, generator=g) * 100).to(dt)
        if t.numel() > 3:
            f = t.view(-1)
            f[0], f[1], f[2] = float("inf"), float("-inf"), float("nan")
        return t
    info = torch.iinfo(dt)
    return torch.randint(max(info.min, -2**62), min(info.max, 2**62),
                         shape, generator=g, dtype=torch.int64).to(dt)
dts = [torch.float16, torch.bfloat16, torch.float32, torch.float64,
       torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64,
       torch.bool, torch.complex64]
sd = collections.OrderedDict()
for dt in dts:
    n = str(dt).split(".")[1]
    sd[n + ".scalar"] = rnd((), dt)
    sd[n + ".empty"] = rnd((3, 0, 2), dt)
    sd[n + ".vec"] = rnd((7,), dt)
    sd[n + ".mat"] = rnd((3, 4), dt)
    sd[n + ".t8"] = rnd((1, 2, 1, 2, 1, 2, 1, 2), dt)
torch.save(sd, d + "/all_dtypes.pt")
torch.save(sd, d + "/all_dtypes_legacy.pt",
           _use_new_zipfile_serialization=False)
base = torch.arange(60, dtype=torch.float32).reshape(3, 4, 5)
views = {"base": base, "row": base[1], "col": base[:, 2], "tr": base[0].t(),
         "perm": base.permute(2, 0, 1), "step": base[:, ::2, 1:],
         "fortran": torch.arange(24.).reshape(4, 3, 2).permute(2, 1, 0),
         "bcast": torch.arange(3.).expand(4, 3), "flat": base.view(-1)[7:19]}
torch.save(views, d + "/views.pt")
torch.save(views, d + "/views_legacy.pt",
           _use_new_zipfile_serialization=False)
model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3),
                            torch.nn.Linear(3, 2))
ck = {"model": model.state_dict(), "epoch": 3, "step": 2**40,
      "big": -2**70, "lr": 0.1, "eps": 1e-05, "name": "run-7",
      "flag": True, "off": False, "none": None,
      "hist": [torch.ones(2), torch.zeros(3, dtype=torch.int32)],
      "pair": (1.5, "x"), 5: torch.arange(4), "nested": {"a": {"b": 2.0}}}
torch.save(ck, d + "/checkpoint.pt")
torch.save(ck, d + "/checkpoint_legacy.pt",
           _use_new_zipfile_serialization=False)
torch.save({"w": torch.nn.Parameter(torch.randn(2, 3, generator=g))},
           d + "/parameter.pt")
torch.save(model.state_dict(), d + "/proto4.pt", pickle_protocol=4)
torch.save(torch.arange(10, dtype=torch.int16), d + "/bare_tensor.pt")
# The same archive re-packed with deflate by Python's zipfile.
buf = io.BytesIO()
with zipfile.ZipFile(d + "/all_dtypes.pt") as zi, \
        zipfile.ZipFile(d + "/deflated.pt", "w", zipfile.ZIP_DEFLATED) as zo:
    for i in zi.infolist():
        zo.writestr(i.filename, zi.read(i))
print("torch %s wrote %d files" % (torch.__version__, len(os.listdir(d))))
EOF

# 1. torch-written files read identically.
cmp_json() { # cmp_json FILE PEER_JSON: wv inspect --json FILE vs PEER_JSON
    "$WV" inspect --json "$1" >"$tmp/wv.json" 2>"$tmp/wv.err" ||
        { fail "$1: wv inspect failed: $(cat "$tmp/wv.err")"; return; }
    "$PYTHON" - "$2" "$tmp/wv.json" <<'PY' || fail "$1: differs from the peer"
import json, sys
p, o = (json.load(open(a)) for a in sys.argv[1:3])
key = lambda t: t["name"]
bad = []
if p["metadata"] != o["metadata"]:
    bad.append("metadata: peer %r wv %r" % (p["metadata"], o["metadata"]))
if sorted(p["tensors"], key=key) != sorted(o["tensors"], key=key):
    pt = {t["name"]: t for t in p["tensors"]}
    for t in o["tensors"]:
        if pt.get(t["name"]) != t:
            bad.append("tensor %r: peer %r wv %r" % (t["name"],
                       pt.get(t["name"]), t))
    if len(p["tensors"]) != len(o["tensors"]):
        bad.append("tensor count: peer %d wv %d" % (len(p["tensors"]),
                   len(o["tensors"])))
for b in bad[:10]:
    print(b)
sys.exit(1 if bad else 0)
PY
}
peer() { # peer FILE OUT_JSON
    "$PYTHON" -c 'import sys, json; sys.path.insert(0, sys.argv[1]);
import peer_pth; json.dump(peer_pth.dump(sys.argv[2]), open(sys.argv[3], "w"))' \
        "$WV_SRC/tests/peer" "$1" "$2" 2>"$tmp/peer.err" ||
        { fail "$1: peer failed: $(tail -1 "$tmp/peer.err")"; return 1; }
}
n=0
for f in "$tmp"/src/*.pt; do
    peer "$f" "$tmp/peer.json" && cmp_json "$f" "$tmp/peer.json"
    n=$((n + 1))
done
echo "read $n torch-written files"

# 2. wv-written files load in torch (weights_only=True) with equal values.
mkdir -p "$tmp/out"
for f in "$tmp"/src/*.pt; do
    b=$(basename "$f" .pt)
    "$WV" convert "$f" "$tmp/out/$b.pth" 2>"$tmp/err" ||
        { fail "convert $b: $(cat "$tmp/err")"; continue; }
    "$WV" convert "$f" "$tmp/out/$b.nest.pth" --nest 2>"$tmp/err" ||
        { fail "convert --nest $b: $(cat "$tmp/err")"; continue; }
done
"$PYTHON" - "$tmp" <<'EOF' || fail "torch.load of wv-written files"
import sys, os, glob, collections
import torch
d = sys.argv[1]
bad = 0
def flat(o, p, out):
    if isinstance(o, torch.Tensor):
        out[p or "tensor"] = o
    elif isinstance(o, dict):
        for k, v in o.items():
            flat(v, (p + "." if p else "") + str(k), out)
    elif isinstance(o, (list, tuple)):
        for i, v in enumerate(o):
            flat(v, (p + "." if p else "") + str(i), out)
    return out
def same(a, b):
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    a, b = a.contiguous(), b.contiguous()
    if a.dtype == torch.bool:
        return torch.equal(a, b)
    if a.element_size() == 0 or a.numel() == 0:
        return True
    return bytes(a.view(-1).view(torch.uint8).numpy()) == \
        bytes(b.view(-1).view(torch.uint8).numpy())
n = 0
for src in sorted(glob.glob(d + "/src/*.pt")):
    b = os.path.basename(src)[:-3]
    want = flat(torch.load(src, weights_only=False), "", {})
    for kind in ("", ".nest"):
        got = torch.load("%s/out/%s%s.pth" % (d, b, kind), weights_only=True)
        if type(got) is not collections.OrderedDict:
            print("%s%s: loads as %s" % (b, kind, type(got))); bad = 1
        if kind == "":
            if list(got) != list(want):
                print("%s: keys %s != %s" % (b, list(got)[:5], list(want)[:5]))
                bad = 1
            items = got.items()
        else:
            items = flat(got, "", {}).items()
        gotd = dict(items)
        for k, v in want.items():
            if k not in gotd or not isinstance(gotd[k], torch.Tensor) or \
                    not same(v, gotd[k]):
                print("%s%s: tensor %r differs" % (b, kind, k)); bad = 1
        n += 1
# The nested checkpoint comes back as the same tree (tensors and str
# leaves; non-tensor leaves are strings in the tensor set).
got = torch.load(d + "/out/checkpoint.nest.pth", weights_only=True)
if not (torch.equal(got["model"]["0.weight"] if "0.weight" in got["model"]
                    else got["model"]["0"]["weight"],
                    torch.load(d + "/src/checkpoint.pt")["model"]["0.weight"])
        and got["epoch"] == "3" and got["nested"]["a"]["b"] == "2.0"):
    print("checkpoint --nest tree differs: %r" % list(got)); bad = 1
print("torch.load(weights_only=True) checked %d wv-written files" % n)
sys.exit(bad)
EOF

# 3. Round trips through every writable format keep every tensor.
tensors_of() { # tensors_of FILE -> sorted tensor list JSON on stdout
    "$WV" inspect --json "$1" | "$PYTHON" -c 'import json, sys
d = json.load(sys.stdin); print(json.dumps(sorted(d["tensors"], key=lambda t: t["name"])))'
}
rt=0
for f in "$WV_FIXTURES"/pth/* "$tmp"/src/*.pt; do
    b=$(basename "$f")
    want=$(tensors_of "$f") || { fail "$b: inspect failed"; continue; }
    "$WV" convert "$f" "$tmp/a.pth" &&
        "$WV" convert "$tmp/a.pth" "$tmp/a.safetensors" &&
        "$WV" convert "$tmp/a.safetensors" "$tmp/b.pth" ||
        { fail "$b: fixture -> pth -> safetensors -> pth failed"; continue; }
    [ "$(tensors_of "$tmp/b.pth")" = "$want" ] ||
        fail "$b: pth -> safetensors -> pth changed tensors"
    case $want in
    *'"BF16"'*) ;; # numpy has no bfloat16: npz/npy cannot hold these
    *)
        "$WV" convert "$tmp/a.pth" "$tmp/a.npz" &&
            "$WV" convert "$tmp/a.npz" "$tmp/c.pth" ||
            { fail "$b: pth -> npz -> pth failed"; continue; }
        [ "$(tensors_of "$tmp/c.pth")" = "$want" ] ||
            fail "$b: pth -> npz -> pth changed tensors"
        ;;
    esac
    if [ "$("$WV" inspect --json "$f" | "$PYTHON" -c 'import json, sys
print(len(json.load(sys.stdin)["tensors"]))')" = 1 ]; then
        "$WV" convert "$tmp/a.pth" "$tmp/a.npy" &&
            "$WV" convert "$tmp/a.npy" "$tmp/d.pth" ||
            { fail "$b: pth -> npy -> pth failed"; continue; }
        [ "$("$WV" inspect --json "$tmp/d.pth" | "$PYTHON" -c 'import json, sys
t = json.load(sys.stdin)["tensors"][0]; print(t["sha256"], t["dtype"], t["shape"])')" = \
          "$("$WV" inspect --json "$f" | "$PYTHON" -c 'import json, sys
t = json.load(sys.stdin)["tensors"][0]; print(t["sha256"], t["dtype"], t["shape"])')" ] ||
            fail "$b: pth -> npy -> pth changed the tensor"
    fi
    rt=$((rt + 1))
done
echo "round-tripped $rt files"

# The three tinygrad files hold the same weights.
s1=$(tensors_of "$WV_FIXTURES/pth/tinygrad-mnist.zip.pt")
s2=$(tensors_of "$WV_FIXTURES/pth/tinygrad-mnist.legacy.pt")
s3=$(tensors_of "$WV_FIXTURES/safetensors/tinygrad-mnist.safetensors")
[ "$s1" = "$s2" ] && [ "$s1" = "$s3" ] ||
    fail "tinygrad-mnist: zip, legacy and safetensors tensors differ"

finish "pth interop: all passed"
