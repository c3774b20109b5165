#!/usr/bin/env bash
# safe_output.sh -- no raw control character from a file or a repository
# reaches the terminal (issue 14, item 5: terminal injection).
#
# Hostile inputs are built here, in Python: a safetensors file whose tensor
# names and metadata hold ESC sequences, BEL, CR, DEL, a C1 control and a
# newline followed by a fake line; a GGUF file with such a key, string value
# and tensor name; an npz whose member name (newline, ESC) makes the load
# fail, so the error message embeds it; a repository with such a commit
# message, --meta entries, tensor names, a planted ref name, and a ref
# asked for on the command line; a file whose own name holds them.
#
# Every output (stdout and stderr) of inspect, verify, convert, commit, log,
# show, diff, tag/branch --list and of the errors must hold no C0 byte but
# newline, no DEL, no C1 control (UTF-8 C2 80..C2 9F), and no line may
# start with the text after an embedded newline. Plain text shows the
# escapes (\x1b, \a, \n, quoted names); every --json output parses and
# gives back the exact original strings. Errors stay one line. Commit
# refuses text that is not UTF-8 (the manifest could not be read back).
# Env: WV, PYTHON.
set -u
: "${PYTHON:=/usr/bin/python3}"
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT; echo "tmp=$tmp" >&2
export WV SAFE_TMP=$tmp

"$PYTHON" - <<'PY'
import json
import os
import re
import struct
import subprocess
import sys
import zipfile

WV = os.environ["WV"]
T = os.environ["SAFE_TMP"]
bad = []
checks = 0


def p(name):
    return os.path.join(T, name)


def fail(msg):
    bad.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


# Control bytes a terminal acts on; "\n" alone is allowed (line ends).
RAW = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]")


def wv(*args, ok=True, lines=None):
    """Run wv; check both streams are safe; return (rc, stdout, stderr)."""
    global checks
    r = subprocess.run([WV] + list(args), capture_output=True)
    what = "wv " + " ".join(a if isinstance(a, str) and a.isprintable()
                            else repr(a)
                            for a in args)
    checks += 1
    for name, out in (("stdout", r.stdout), ("stderr", r.stderr)):
        m = RAW.search(out)
        if m:
            fail("%s: raw control byte %r in %s: %r"
                 % (what, m.group(0), name, out[:400]))
        for line in out.split(b"\n"):
            if line.startswith(b"INJECTED"):
                fail("%s: a name started a line of %s: %r"
                     % (what, name, out[:400]))
    if ok is True and r.returncode != 0:
        fail("%s exited %d: %r" % (what, r.returncode, r.stderr))
    if ok is False and r.returncode == 0:
        fail("%s succeeded, expected a refusal" % what)
    if lines is not None and r.stderr.count(b"\n") != lines:
        fail("%s: stderr has %d lines, expected %d: %r"
             % (what, r.stderr.count(b"\n"), lines, r.stderr))
    return r.returncode, r.stdout.decode("utf-8"), r.stderr.decode("utf-8")


def has(text, needle, what):
    global checks
    checks += 1
    if needle not in text:
        fail("%s: %r not in output:\n%s" % (what, needle, text[:800]))


def same(got, want, what):
    global checks
    checks += 1
    if got != want:
        fail("%s: got %r, want %r" % (what, got, want))


def safetensors(path, tensors, meta):
    """tensors: {name: float}; one F32 element each."""
    hdr, data = {}, b""
    for name, v in tensors.items():
        hdr[name] = {"dtype": "F32", "shape": [1],
                     "data_offsets": [len(data), len(data) + 4]}
        data += struct.pack("<f", v)
    hdr["__metadata__"] = meta
    h = json.dumps(hdr).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


# ---- a hostile safetensors file ------------------------------------------
N_ESC = "evil\x1b[31mred\x07bell\rcr\nINJECTED fake line"
N_C1 = "c1\u009b31mx"
N_DEL = "del\x7fx"
N_Q = '"quoted\\back'
N_OK = "layer.0.weight"
N_UNI = "h\u00e9llo\u4e16"
META = {"k\x1b[2Jey": "v\x1b]0;title\x07al\nINJECTED value",
        "plain": "fine"}
A = {N_ESC: 1.0, N_C1: 2.0, N_DEL: 3.0, N_Q: 4.0, N_OK: 5.0, N_UNI: 6.0}
safetensors(p("a.safetensors"), A, META)

rc, out, _ = wv("inspect", p("a.safetensors"))
has(out, '"evil\\x1b[31mred\\abell\\rcr\\nINJECTED fake line"',
    "inspect: escaped, quoted tensor name")
has(out, '"c1\\xc2\\x9b31mx"', "inspect: C1 control escaped")
has(out, '"del\\x7fx"', "inspect: DEL escaped")
has(out, N_OK + " ", "inspect: a plain name unchanged")
has(out, N_UNI + " ", "inspect: printable UTF-8 unchanged")
has(out, '"k\\x1b[2Jey" = v\\x1b]0;title\\aal\\nINJECTED value',
    "inspect: metadata key quoted, value escaped")
has(out, "plain = fine", "inspect: plain metadata unchanged")
rc, out, _ = wv("inspect", "--json", p("a.safetensors"))
j = json.loads(out)
same({t["name"] for t in j["tensors"]}, set(A), "inspect --json names")
same(j["metadata"], META, "inspect --json metadata")
wv("verify", p("a.safetensors"))
# a file name (as a directory listing gives it) is escaped too
F = p("f\x1b[31mile\nINJECTED.safetensors")
with open(p("a.safetensors"), "rb") as src, open(F, "wb") as dst:
    dst.write(src.read())
rc, out, _ = wv("inspect", F)
has(out, 'f\\x1b[31mile\\nINJECTED.safetensors"', "inspect: file name")
rc, out, _ = wv("verify", F)
has(out, 'f\\x1b[31mile\\nINJECTED.safetensors: safetensors',
    "verify: file name")
# names and metadata travel through a conversion unchanged
wv("convert", p("a.safetensors"), p("a.gguf"))
rc, out, _ = wv("inspect", "--json", p("a.gguf"))
same({t["name"] for t in json.loads(out)["tensors"]}, set(A),
     "safetensors -> gguf: names")
wv("inspect", p("a.gguf"))


# ---- a hostile GGUF file (layout as tests/data/malformed/gen_gguf.py) -----
def gstr(s):
    s = s.encode("utf-8")
    return struct.pack("<Q", len(s)) + s


G_KEY = "general.\x1b[31mevil\x07\nINJECTED key"
G_VAL = "val\x1b[0m\x07\r\nINJECTED"
G_T = "tok\x1b[1m\nINJECTED tensor"
head = b"GGUF" + struct.pack("<IQQ", 3, 1, 2)
head += gstr("general.architecture") + struct.pack("<I", 8) + gstr("llama")
head += gstr(G_KEY) + struct.pack("<I", 8) + gstr(G_VAL)
head += gstr(G_T) + struct.pack("<I", 1) + struct.pack("<Q", 2)
head += struct.pack("<IQ", 0, 0)  # F32 at offset 0
head += b"\0" * (-len(head) % 32)
with open(p("k.gguf"), "wb") as f:
    f.write(head + struct.pack("<2f", 1.5, -2.5))

rc, out, _ = wv("inspect", p("k.gguf"))
has(out, '"gguf.general.\\x1b[31mevil\\a\\nINJECTED key"', "gguf: key escaped")
has(out, '"tok\\x1b[1m\\nINJECTED tensor"', "gguf: tensor name escaped")
rc, out, _ = wv("inspect", "--json", p("k.gguf"))
j = json.loads(out)
same([t["name"] for t in j["tensors"]], [G_T], "gguf --json tensor name")
# GGUF KVs are metadata "gguf.KEY" = "str:" + the value as a JSON string
same(j["metadata"].get("gguf." + G_KEY), "str:" + json.dumps(G_VAL),
     "gguf --json key and value exact")
wv("verify", p("k.gguf"))

# ---- an error message that embeds a member name with a newline -----------
MEMBER = "x\nINJECTED: \x1b[31mfake error\x07.npy"
with zipfile.ZipFile(p("bad.npz"), "w") as z:
    z.writestr(MEMBER, b"this is not an npy file")
for cmd in (["inspect"], ["inspect", "--json"], ["verify"]):
    rc, _, err = wv(*cmd, p("bad.npz"), ok=False, lines=1)
    has(err, "x\\nINJECTED: \\x1b[31mfake error\\a.npy",
        "%s bad.npz: member name escaped in the error" % cmd[0])
rc, _, err = wv("convert", p("bad.npz"), p("out.safetensors"), ok=False,
                lines=1)
# a file name given on the command line, echoed by a library message
rc, _, err = wv("inspect", p("no\x1b[31msuch\nINJECTED.safetensors"),
                ok=False, lines=1)
has(err, "no\\x1b[31msuch\\nINJECTED", "missing file: name escaped")

# ---- a repository ---------------------------------------------------------
R = p("repo")
MSG = "msg \x1b[31mred\x07\r end\nINJECTED second line"
MK, MV = "note\x1b[2J", "v\x1b]0;t\x07\nINJECTED meta"
wv("init", R)
rc, id1, _ = wv("commit", R, p("a.safetensors"), "-m", MSG,
                "--meta", MK + "=" + MV)
id1 = id1.strip()
N_NEW = "new\x1b[1m\nINJECTED added"
B = dict(A)
B[N_ESC] = 9.0
del B[N_C1]
B[N_NEW] = 7.0
safetensors(p("b.safetensors"), B, META)
rc, id2, _ = wv("commit", R, p("b.safetensors"), "-m", "second")
id2 = id2.strip()
# text that is not UTF-8 is refused, not stored in an unreadable manifest
wv("commit", R, p("b.safetensors"), "-m", b"bad \xff",
   ok=False, lines=1)
wv("commit", R, p("b.safetensors"), "--meta", b"k=\xfe\xff",
   ok=False, lines=1)
# a ref name nobody could create with wv, planted in the store
with open(os.path.join(R, "refs", "heads", "main")) as f:
    head_id = f.read()
os.makedirs(os.path.join(R, "refs", "tags"), exist_ok=True)
with open(os.path.join(R, "refs", "tags", "t\x1b[31m\nINJECTED tag"),
          "w") as f:
    f.write(head_id)

rc, out, _ = wv("log", R, ok=None)
rc, out, _ = wv("log", R + "@" + id1)
has(out, "    msg \\x1b[31mred\\a\\r end", "log: message escaped")
has(out, "    INJECTED second line", "log: message lines indented")
rc, out, _ = wv("log", "--json", R + "@" + id1)
j = json.loads(out)
same(j[0]["message"], MSG, "log --json message")
same(j[0]["metadata"].get(MK), MV, "log --json --meta value")
same(j[0]["metadata"].get("k\x1b[2Jey"), META["k\x1b[2Jey"],
     "log --json file metadata")

rc, out, _ = wv("show", R + "@" + id1)
has(out, "message:    msg \\x1b[31mred\\a\\r end\\nINJECTED second line",
    "show: message on one line")
has(out, '"note\\x1b[2J" = v\\x1b]0;t\\a\\nINJECTED meta',
    "show: --meta escaped")
has(out, '"evil\\x1b[31mred\\abell\\rcr\\nINJECTED fake line"',
    "show: tensor name escaped")
rc, out, _ = wv("show", "--json", R + "@" + id1)
j = json.loads(out)
same(j["message"], MSG, "show --json message")
same({t["name"] for t in j["tensors"]}, set(A), "show --json names")
same(j["metadata"].get(MK), MV, "show --json --meta value")

rc, out, _ = wv("diff", R, id1, id2)
has(out, '"new\\x1b[1m\\nINJECTED added"', "diff: added name escaped")
has(out, '"c1\\xc2\\x9b31mx"', "diff: removed name escaped")
rc, out, _ = wv("diff", "--json", R, id1, id2)
j = json.loads(out)
names = {t["name"]: t["status"] for t in j["tensors"]}
same(names.get(N_NEW), "added", "diff --json added name")
same(names.get(N_C1), "removed", "diff --json removed name")
same(names.get(N_ESC), "changed", "diff --json changed name")

wv("tag", R, "--list", ok=None)
wv("branch", R, "--list", ok=None)
wv("verify", R, ok=None)
# a ref asked for on the command line ends up in an error message
rc, _, err = wv("show", R + "@nope\x1b[31m\nINJECTED ref", ok=False,
                lines=1)
rc, _, err = wv("checkout", R + "@nope\x1b[31m\nINJECTED ref", "-o",
                p("o.safetensors"), ok=False, lines=1)

print("%d passed, %d failed" % (checks - len(bad), len(bad)))
sys.exit(1 if bad else 0)
PY
