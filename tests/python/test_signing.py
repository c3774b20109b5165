"""Signed checkpoints from Python: Repository.commit / commit_async,
weightvault.save and the Checkpointer take sign_key (wv_commit_opts.
sign_key); Repository.checkout, weightvault.load and the Checkpointer's
restore take verify_signer (wv_checkout_opts.verify_signer).

A repository that trusts a key (``wv trust add``) accepts a checkpoint
signed by it and refuses an unsigned one with an error that says to sign;
a checkout with verify_signer refuses a checkpoint signed by another key
or not signed at all. Keys and trust come from the build's `wv`."""
import os
import subprocess

import numpy as np
import pytest

import weightvault as wv


def _wv_binary():
    lib = os.environ.get("WEIGHTVAULT_LIB")
    path = os.path.join(os.path.dirname(lib), "wv") if lib else ""
    if not os.path.isfile(path):
        pytest.skip("no wv binary beside $WEIGHTVAULT_LIB")
    return path


def _wv(*args):
    # wv carries its own sanitizer runtime: not the one preloaded for Python.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    return subprocess.run([_wv_binary(), *map(str, args)], check=True,
                          capture_output=True, text=True, env=env)


@pytest.fixture
def keys(tmp_path):
    """{name: (secret key file, public key file, public key hex)} of two
    fresh key pairs, alice and bob."""
    out = {}
    for name in ("alice", "bob"):
        base = tmp_path / name
        _wv("keygen", "-o", base)
        pub = tmp_path / f"{name}.pub"
        out[name] = (tmp_path / f"{name}.key", pub,
                     pub.read_text().split()[1])
    return out


def w(v):
    return {"w": np.full(6, v, dtype=np.float32)}


@pytest.mark.crypto
def test_signed_commit_accepted_where_keys_are_trusted(tmp_path, keys):
    alice_key, alice_pub, alice_hex = keys["alice"]
    bob_key = keys["bob"][0]
    uri = str(tmp_path / "vault")
    with wv.Repository(uri, create=True) as r:
        r.commit(w(0), message="before trust")
    _wv("trust", "add", uri, alice_pub)
    with wv.Repository(uri) as r:
        with pytest.raises(wv.AuthError) as e:
            r.commit(w(1), message="unsigned")
        assert "sign the commit" in e.value.message
        assert "sign_key" in e.value.message
        cid = r.commit(w(2), message="signed", sign_key=alice_key)
        assert r.stat()["id"] == cid and r.stat()["signer"] == alice_hex
        with pytest.raises(wv.AuthError) as e:
            r.commit(w(3), sign_key=bob_key)
        assert "not one of the repository's 1 trusted keys" in \
            e.value.message
        # asynchronous: the key name is copied, the refusal comes at wait
        p = r.commit_async(w(4), sign_key=str(alice_key))
        cid4 = p.wait()
        assert r.stat(cid4)["signer"] == alice_hex
        with pytest.raises(wv.AuthError, match="sign the commit"):
            r.commit_async(w(5)).wait()
        assert r.resolve("main") == cid4
        got = r.checkout("main", verify_signer=alice_pub)
        assert got["w"].tolist() == [4.0] * 6
    # weightvault.save / load on "repo@branch"
    cid6 = wv.save(w(6), uri + "@main", sign_key=alice_key)
    with pytest.raises(wv.AuthError, match="sign the commit"):
        wv.save(w(7), uri + "@main")
    back = wv.load(uri + "@main", verify_signer=alice_pub)
    assert back.checkpoint == cid6 and back["w"][0] == 6.0


@pytest.mark.crypto
def test_checkout_verify_signer_refuses_another_key(tmp_path, keys):
    alice_pub = keys["alice"][1]
    bob_key, bob_pub, bob_hex = keys["bob"]
    uri = str(tmp_path / "plain")
    with wv.Repository(uri, create=True) as r:
        signed = r.commit(w(1), sign_key=bob_key)
        unsigned = r.commit(w(2))
        assert r.stat(signed)["signer"] == bob_hex
        with pytest.raises(wv.AuthError) as e:
            r.checkout(signed, verify_signer=alice_pub)
        assert f"signed by key {bob_hex[:16]}" in e.value.message
        with pytest.raises(wv.AuthError, match="is not signed"):
            r.checkout(unsigned, verify_signer=bob_pub)
        assert r.checkout(signed, verify_signer=bob_pub)["w"][0] == 1.0
        assert r.checkout(unsigned)["w"][0] == 2.0  # no policy: accepted
    with pytest.raises(wv.AuthError, match="signed by key"):
        wv.load(f"{uri}@{signed[:12]}", verify_signer=alice_pub)
    assert wv.load(f"{uri}@{signed[:12]}",
                   verify_signer=bob_pub)["w"][0] == 1.0


@pytest.mark.crypto
def test_checkpointer_signs(tmp_path, keys):
    alice_key, alice_pub, alice_hex = keys["alice"]
    bob_pub = keys["bob"][1]
    uri = str(tmp_path / "ck")
    wv.Repository.init(uri)
    _wv("trust", "add", uri, alice_pub)
    model = w(1)
    for background in (False, True):
        with wv.Checkpointer(uri, sign_key=alice_key,
                             background=background) as ck:
            ck.save(10, model)
            ck.wait()
            assert ck.repo.stat("main")["signer"] == alice_hex
    with wv.Checkpointer(uri) as ck:  # unsigned: refused by the trust
        with pytest.raises(wv.AuthError, match="sign the commit"):
            ck.save(20, model)
    with wv.Checkpointer(uri, verify_signer=bob_pub) as ck:
        with pytest.raises(wv.AuthError, match="signed by key"):
            ck.restore_latest(model)
    with wv.Checkpointer(uri, verify_signer=alice_pub) as ck:
        assert ck.restore_latest(model) == 10


def test_options_for_the_other_kind_of_target(tmp_path):
    f = tmp_path / "a.safetensors"
    with pytest.raises(ValueError, match="sign_key applies to repositories"):
        wv.save(w(1), f, sign_key=tmp_path / "k.key")
    assert not f.exists()
    wv.save(w(1), f)
    with pytest.raises(ValueError, match="verify_signer applies to"):
        wv.load(f, verify_signer=tmp_path / "k.pub")
    wv.save(w(1), str(tmp_path / "r") + "@main")
    with pytest.raises(ValueError, match="max_expand applies to files"):
        wv.load(str(tmp_path / "r") + "@main", max_expand=2)
