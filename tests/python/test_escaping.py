"""Paths and names the user gives are escaped in the binding's own error
messages (wv_escape, as the library escapes them in its messages; repr()
for names), so a name holding a newline or a terminal escape sequence
cannot forge a line of output or drive the terminal."""
import numpy as np
import pytest

import weightvault as wv

EVIL = "x\n[wv] OK: all checks passed\x1b[2J"


def _clean(msg):
    assert "\n" not in msg and "\x1b" not in msg, repr(msg)


def test_missing_file_name_is_escaped(tmp_path):
    p = tmp_path / (EVIL + ".safetensors")
    with pytest.raises(wv.NotFoundError) as e:
        wv.load(p)
    _clean(str(e.value))
    assert "\\n[wv] OK" in e.value.message and "\\x1b[2J" in e.value.message


def test_damaged_file_name_is_escaped(tmp_path):
    p = tmp_path / (EVIL + ".safetensors")
    p.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    with pytest.raises(wv.WeightvaultError) as e:
        wv.load(p)
    _clean(str(e.value))
    assert "\\n[wv] OK" in e.value.message
    assert "<memory>" not in e.value.message


def test_load_into_names_are_escaped(tmp_path):
    p = tmp_path / (EVIL + ".safetensors")
    wv.save({"a": np.ones(2, np.float32)}, p)
    with pytest.raises(wv.NotFoundError) as e:
        wv.load_into(p, {EVIL: np.ones(2, np.float32),
                         "a": np.ones(2, np.float32)})
    _clean(str(e.value))
    with pytest.raises(ValueError) as e:
        wv.load_into(p, {"a": np.ones(3, np.float32)})
    _clean(str(e.value))


def test_checkpointer_key_is_escaped(tmp_path):
    ck = wv.Checkpointer(tmp_path / "r")
    with pytest.raises(TypeError) as e:
        ck.save(1, {"w": np.ones(2)}, optimizer={EVIL: object()})
    _clean(str(e.value))
    ck.close()


def test_branch_names_are_escaped(tmp_path):
    with wv.Repository(tmp_path / "r", create=True) as r:
        with pytest.raises(ValueError) as e:
            r.push(str(tmp_path / "d") + "@x\x1b[2J", branch="main")
        _clean(str(e.value))


def test_show():
    show = wv._lib.show
    assert show("plain/path.safetensors") == "plain/path.safetensors"
    assert show("a\nb") == '"a\\nb"'
    assert show("\x1b[2J") == '"\\x1b[2J"'
    assert show(b"bad\xff") == '"bad\\xff"'
