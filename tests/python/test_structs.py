"""The ctypes structs of weightvault._lib match include/weightvault.h:
every struct the header declares with a `struct_size` (the option structs)
and every other struct the binding mirrors has the header's fields, in the
header's order, at the offsets and with the sizes the C compiler gives
them; function-pointer fields are ctypes function types and pointer fields
pointers. A struct shorter than the header's still works (struct_size), so
only this test notices when the binding falls behind the header."""
import ctypes
import os
import re
import shutil
import subprocess

import pytest

from weightvault import _lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
HEADER = os.path.join(ROOT, "include", "weightvault.h")

# header typedef -> the binding's class
BOUND = {
    "wv_load_opts": "LoadOpts", "wv_save_opts": "SaveOpts",
    "wv_init_opts": "InitOpts", "wv_open_opts": "OpenOpts",
    "wv_commit_opts": "CommitOpts", "wv_checkout_opts": "CheckoutOpts",
    "wv_prune_opts": "PruneOpts", "wv_prune_decision": "PruneDecision",
    "wv_prune_stats": "PruneStats", "wv_gc_opts": "GcOpts",
    "wv_gc_stats": "GcStats", "wv_verify_problem": "VerifyProblem",
    "wv_verify_stats": "VerifyStats", "wv_sync_opts": "SyncOpts",
    "wv_sync_result": "SyncResult",
    "wv_checkpoint_storage": "CheckpointStorage",
    "wv_part_opts": "PartOpts",
}


def header_structs():
    """{typedef name: [(field, kind)]} of every `typedef struct` in the
    header; kind is "fn", "ptr", "array" or "scalar"."""
    text = open(HEADER, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    out = {}
    for m in re.finditer(r"typedef\s+struct\s+(\w+)\s*\{(.*?)\}\s*(\w+)\s*;",
                         text, flags=re.S):
        fields = []
        for decl in m.group(2).split(";"):
            decl = " ".join(decl.split())
            if not decl:
                continue
            fn = re.search(r"\(\s*\*\s*(\w+)\s*\)", decl)
            if fn:
                fields.append((fn.group(1), "fn"))
                continue
            first, *rest = decl.split(",")
            fm = re.match(r"(.*?[\s*])(\w+)\s*(\[[^\]]*\])?$", first)
            assert fm, f"cannot parse {decl!r} in {m.group(3)}"
            fields.append((fm.group(2), "array" if fm.group(3) else
                           "ptr" if "*" in fm.group(1) else "scalar"))
            for part in rest:  # "uint64_t kept, removed;"
                pm = re.match(r"(\**)\s*(\w+)\s*(\[[^\]]*\])?$",
                              part.strip())
                assert pm, f"cannot parse {decl!r} in {m.group(3)}"
                fields.append((pm.group(2), "array" if pm.group(3) else
                               "ptr" if pm.group(1) else "scalar"))
        out[m.group(3)] = fields
    return out


def test_header_parses():
    s = header_structs()
    assert [f for f, _ in s["wv_commit_opts"]][:2] == ["struct_size",
                                                       "message"]
    assert ("kept", "scalar") in s["wv_prune_stats"]
    assert ("removed", "scalar") in s["wv_prune_stats"]
    assert ("progress", "fn") in s["wv_sync_opts"]


def test_every_option_struct_is_bound():
    s = header_structs()
    opts = sorted(n for n, f in s.items() if f and f[0][0] == "struct_size")
    assert opts, "no option struct found in the header"
    missing = [n for n in opts if n not in BOUND]
    assert not missing, f"option structs without a binding: {missing}"


@pytest.mark.parametrize("cname", sorted(BOUND))
def test_fields_match_header(cname):
    s = header_structs()
    cls = getattr(_lib, BOUND[cname])
    want = [f for f, _ in s[cname]]
    have = [f for f, *_ in cls._fields_]
    assert have == want, f"{BOUND[cname]} fields {have} != {cname} {want}"
    for (name, kind), (_, ctype, *_) in zip(s[cname], cls._fields_):
        if kind == "fn":
            assert hasattr(ctype, "_argtypes_"), \
                f"{BOUND[cname]}.{name} is not a function pointer"
        elif kind == "ptr":
            assert ctype in (ctypes.c_char_p, ctypes.c_void_p) or \
                hasattr(ctype, "_type_") and issubclass(
                    ctype, ctypes._Pointer), \
                f"{BOUND[cname]}.{name} is not a pointer"
        elif kind == "array":
            assert issubclass(ctype, ctypes.Array), \
                f"{BOUND[cname]}.{name} is not an array"


def test_layout_matches_compiler(tmp_path):
    """offsetof and sizeof of every field, from the C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler to measure the header's structs")
    s = header_structs()
    lines = ["#include <stdio.h>", "#include <stddef.h>",
             '#include "weightvault.h"', "int main(void) {"]
    for cname in sorted(BOUND):
        lines.append(f'printf("{cname} . %zu %zu\\n", sizeof({cname}), '
                     f"_Alignof({cname}));")
        for f, _ in s[cname]:
            lines.append(f'printf("{cname} {f} %zu %zu\\n", '
                         f"offsetof({cname}, {f}), "
                         f"sizeof((({cname} *)0)->{f}));")
    lines += ["return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "layout"
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    subprocess.run([cc, "-std=c11", "-I", os.path.dirname(HEADER),
                    str(src), "-o", str(exe)], check=True, env=env)
    got = subprocess.run([str(exe)], check=True, capture_output=True,
                         text=True, env=env).stdout
    bad = []
    for line in got.splitlines():
        cname, field, a, b = line.split()
        cls = getattr(_lib, BOUND[cname])
        if field == ".":
            have = (ctypes.sizeof(cls), ctypes.alignment(cls))
        else:
            d = getattr(cls, field, None)
            have = (d.offset, d.size) if d is not None else None
        if have != (int(a), int(b)):
            bad.append(f"{BOUND[cname]}.{field}: ctypes {have}, "
                       f"C ({a}, {b})")
    assert not bad, "; ".join(bad)
