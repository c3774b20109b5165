#!/usr/bin/env bash
# http_inspect.sh -- `wv inspect URL` (the table: no --json) reads only the
# index parts of a remote file, never the tensor data. A local HTTP server
# (Python, written below, with Range support) counts the requests it answers
# and the body bytes it sends. For a 200 MiB safetensors file, a 200 MiB
# GGUF file and a 64 MiB PyTorch zip, inspect over http:// prints the same
# table as the local inspect and fetches less than 1 % of the file; the
# safetensors header costs at most two ranged GETs. A server that ignores
# Range (200 with the whole body) is not read to the end: the transfer is
# aborted once the bytes asked for have come, and a read that needs a range
# past the start fails with a one-line error. --json still reads the data.
# (Named http_*, not remote_*: cmake/WvTests.cmake gives every cli.remote_*
# test the Ceph fixture, and this one needs no Ceph.)
# Env (from ctest): WV, PYTHON.
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
srv=""
trap '[ -n "$srv" ] && kill "$srv" 2>/dev/null; rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
mkdir www

# ---- the inputs --------------------------------------------------------------
# big.safetensors: 400 F32 tensors of 512 KiB (sparse zeros), 200 MiB;
# big.gguf: the same 400 tensors as GGUF v3 (sparse); big.pth: 128 tensors of
# 512 KiB from torch.save.
"$PYTHON" - <<'EOF' || fail "could not write the inputs"
import json, struct
n, rows, cols = 400, 128, 1024
nb = rows * cols * 4
hdr = {"__metadata__": {"note": "remote inspect"}}
for i in range(n):
    hdr["layer.%03d.weight" % i] = {"dtype": "F32", "shape": [rows, cols],
                                    "data_offsets": [i * nb, (i + 1) * nb]}
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
with open("www/big.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    f.truncate(8 + len(h) + n * nb)

def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b
g = b"GGUF" + struct.pack("<IQQ", 3, n, 1)
g += gstr("general.architecture") + struct.pack("<I", 8) + gstr("llama")
for i in range(n):  # ggml dims are innermost first; type 0 = F32
    g += gstr("layer.%03d.weight" % i) + struct.pack("<IQQIQ", 2, cols, rows,
                                                     0, i * nb)
g += b"\0" * (-len(g) % 32)
with open("www/big.gguf", "wb") as f:
    f.write(g)
    f.truncate(len(g) + n * nb)

import collections, torch
sd = collections.OrderedDict(
    ("block.%03d.weight" % i, torch.zeros(128, 1024)) for i in range(128))
torch.save(sd, "www/big.pth")
EOF

# ---- the server --------------------------------------------------------------
# GET/HEAD of /NAME serves www/NAME with Range; /norange/NAME ignores Range
# (200, whole body). /stats answers {"requests": N, "bytes": B} (body bytes
# the socket accepted, the stats request excluded) and resets the counts.
cat >server.py <<'EOF'
import http.server, json, os, re, sys, threading
lock = threading.Lock()
stats = {"requests": 0, "bytes": 0, "ranged": 0}
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def count(self, k, v):
        with lock:
            stats[k] += v
    def do_HEAD(self):
        self.serve(False)
    def do_GET(self):
        if self.path == "/stats":
            with lock:
                body = json.dumps(stats).encode()
                for k in stats:
                    stats[k] = 0
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.serve(True)
    def serve(self, body):
        self.count("requests", 1)
        path = self.path
        norange = path.startswith("/norange/")
        if norange:
            path = path[len("/norange"):]
        f = os.path.join("www", os.path.basename(path))
        if not os.path.isfile(f):
            self.send_error(404)
            return
        size = os.path.getsize(f)
        start, end = 0, size - 1
        m = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        if m and not norange:
            self.count("ranged", 1)
            start, end = int(m.group(1)), min(int(m.group(2)), size - 1)
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "none" if norange else "bytes")
        self.end_headers()
        if not body:
            return
        with open(f, "rb") as fh:
            fh.seek(start)
            left = end - start + 1
            try:
                while left > 0:
                    b = fh.read(min(left, 65536))
                    self.wfile.write(b)
                    self.count("bytes", len(b))
                    left -= len(b)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open("port", "w") as p:
    p.write(str(s.server_address[1]))
s.serve_forever()
EOF
"$PYTHON" server.py &
srv=$!
for _ in $(seq 100); do [ -s port ] && break; sleep 0.1; done
[ -s port ] || { fail "the test server did not start"; finish; }
url="http://127.0.0.1:$(cat port)"

# stats: prints "REQUESTS BYTES RANGED" since the last call, and resets them.
stats() {
    "$PYTHON" -c 'import json, sys, urllib.request
s = json.load(urllib.request.urlopen(sys.argv[1] + "/stats"))
print(s["requests"], s["bytes"], s["ranged"])' "$url"
}

# ---- inspect over http: the same table, under 1 % of the file -------------------
for f in big.safetensors big.gguf big.pth; do
    size=$(stat -c %s "www/$f")
    expect 0 "$WV" inspect "www/$f"
    tail -n +2 "$tmp/out" >local.txt
    stats >/dev/null
    expect 0 "$WV" inspect "$url/$f"
    tail -n +2 "$tmp/out" >remote.txt
    read -r reqs bytes ranged <<<"$(stats)"
    [ -s remote.txt ] && cmp -s local.txt remote.txt ||
        fail "$f: remote table differs from the local one: $(diff local.txt remote.txt | head -5)"
    [ "$(wc -l <remote.txt)" -gt 100 ] || fail "$f: table too short: $(head -3 remote.txt)"
    [ ! -s "$tmp/err" ] || fail "$f: stderr: $(cat "$tmp/err")"
    [ $((bytes * 100)) -lt "$size" ] ||
        fail "$f: fetched $bytes of $size bytes (not under 1 %)"
    echo "$f: $reqs requests ($ranged ranged), $bytes of $size bytes"
    if [ "$f" = big.safetensors ]; then
        [ "$ranged" -le 2 ] || fail "$f: $ranged ranged requests for the header, wanted at most 2"
    else
        [ "$ranged" -le 8 ] || fail "$f: $ranged ranged requests, wanted at most 8"
    fi
done

# A header longer than the first 64 KiB fetch: still two ranged requests.
"$PYTHON" - <<'EOF' || fail "could not write long.safetensors"
import json, struct
hdr = {"t%05d.with.a.rather.long.name.to.fill.the.header" % i:
       {"dtype": "U8", "shape": [1024], "data_offsets": [i * 1024, (i + 1) * 1024]}
       for i in range(3000)}
h = json.dumps(hdr).encode()
with open("www/long.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    f.truncate(8 + len(h) + 3000 * 1024)
EOF
expect 0 "$WV" inspect www/long.safetensors
tail -n +2 "$tmp/out" >local.txt
stats >/dev/null
expect 0 "$WV" inspect "$url/long.safetensors"
tail -n +2 "$tmp/out" >remote.txt
read -r reqs bytes ranged <<<"$(stats)"
cmp -s local.txt remote.txt || fail "long.safetensors: remote table differs"
[ "$ranged" -le 2 ] || fail "long.safetensors: $ranged ranged requests, wanted at most 2"
echo "long.safetensors: $reqs requests ($ranged ranged), $bytes bytes"

# npy: the header only (remotely the array is named "array", locally after
# the file, so the rows are compared without the name).
"$PYTHON" -c 'import numpy as np
a = np.lib.format.open_memmap("www/big.npy", mode="w+", dtype="<f4", shape=(256, 1024, 200))
a.flush()' || fail "could not write big.npy"
size=$(stat -c %s www/big.npy)
expect 0 "$WV" inspect www/big.npy
tail -n 1 "$tmp/out" | awk '{$1=""; print}' >local.txt
stats >/dev/null
expect 0 "$WV" inspect "$url/big.npy"
tail -n 1 "$tmp/out" | awk '{$1=""; print}' >remote.txt
read -r reqs bytes ranged <<<"$(stats)"
cmp -s local.txt remote.txt || fail "big.npy: remote row differs: $(cat local.txt remote.txt)"
[ $((bytes * 100)) -lt "$size" ] || fail "big.npy: fetched $bytes of $size bytes"
echo "big.npy: $reqs requests ($ranged ranged), $bytes of $size bytes"

# npz cannot be listed by ranges: downloaded whole, and a note says so.
"$PYTHON" -c 'import numpy as np
np.savez("www/small.npz", a=np.zeros((4, 8), np.float32), b=np.ones(3, np.int64))' ||
    fail "could not write small.npz"
expect 0 "$WV" inspect www/small.npz
tail -n +2 "$tmp/out" >local.txt
expect 0 "$WV" inspect "$url/small.npz"
tail -n +2 "$tmp/out" | cmp -s - local.txt || fail "small.npz: remote table differs"
grep -q '^wv: note: .*small.npz: npz files cannot be listed by ranged reads' "$tmp/err" ||
    fail "small.npz: no note about the download: $(cat "$tmp/err")"
stats >/dev/null

# --tensor without --json: the table of that tensor, no data either.
expect 0 "$WV" inspect "$url/big.safetensors" --tensor layer.007.weight
read -r reqs bytes ranged <<<"$(stats)"
has 'layer.007.weight  F32'
[ "$bytes" -lt 1048576 ] || fail "--tensor table fetched $bytes bytes"

# --json hashes the data: it is read (the one tensor asked for, here).
expect 0 "$WV" inspect "$url/big.safetensors" --json --tensor layer.007.weight
read -r reqs bytes ranged <<<"$(stats)"
has '"sha256": "'
[ "$bytes" -ge 524288 ] || fail "--json fetched only $bytes bytes: it must read the tensor"

# ---- a server that ignores Range ---------------------------------------------------
# safetensors: the header lies in the first bytes of the whole body; wv
# takes what it asked for and aborts the transfer (the table is right).
size=$(stat -c %s www/big.safetensors)
expect 0 "$WV" inspect www/big.safetensors
tail -n +2 "$tmp/out" >local.txt
expect 0 "$WV" inspect "$url/norange/big.safetensors"
tail -n +2 "$tmp/out" >remote.txt
sleep 0.5 # the server notices the closed connection
read -r reqs bytes ranged <<<"$(stats)"
cmp -s local.txt remote.txt || fail "norange: remote table differs"
[ $((bytes * 10)) -lt "$size" ] ||
    fail "norange: the server sent $bytes of $size bytes (transfer not aborted)"
echo "norange big.safetensors: $reqs requests, $bytes of $size bytes sent"
# pth: the zip directory is at the end: a clear error, not a download.
size=$(stat -c %s www/big.pth)
expect 1 "$WV" inspect "$url/norange/big.pth"
one_line_error 'does not serve byte ranges'
sleep 0.5
read -r reqs bytes ranged <<<"$(stats)"
[ $((bytes * 2)) -lt "$size" ] ||
    fail "norange pth: the server sent $bytes of $size bytes"
echo "norange big.pth: $reqs requests, $bytes of $size bytes sent"

finish
