"""Push, pull and clone between repositories (wv_repo_sync): only what is
missing is copied, refs move forward only unless forced, the library's
messages reach the exceptions. Local directories; one round trip through
s3:// when the Ceph test environment is given ($AWS_ENDPOINT_URL)."""
import os
import subprocess

import numpy as np
import pytest

import weightvault as wv

from conftest import needs_s3, s3_bucket

WV = os.environ.get("WV")


def arrays(seed, n=3):
    rng = np.random.default_rng(seed)
    return {f"layer{i}.w": rng.standard_normal((64, 32)).astype(np.float32)
            for i in range(n)}


def same_checkpoint(a, b, ref="main"):
    """The two repositories name the same checkpoint with the same data."""
    assert a.resolve(ref) == b.resolve(ref)
    x, y = a.checkout(ref), b.checkout(ref)
    assert list(x) == list(y)
    for k in x:
        assert np.array_equal(x[k], y[k]), k


@pytest.fixture
def origin(tmp_path):
    r = wv.Repository(tmp_path / "origin", create=True)
    r.commit(arrays(1), message="one", metadata={"step": 1})
    r.commit(arrays(2), message="two", metadata={"step": 2})
    yield r
    r.close()


def test_push_creates_and_sends_only_what_is_missing(origin, tmp_path):
    dest = tmp_path / "dest"
    first = origin.push(dest)
    assert first["objects_copied"] == first["objects"] > 0
    assert first["bytes_copied"] > 0
    assert first["refs_updated"] == 1 and first["refs_unchanged"] == 0
    # requests and bytes counted by the store layer
    assert first["requests"] >= 2 * first["objects_copied"]
    assert first["bytes_received"] >= first["bytes_copied"]
    assert first["bytes_sent"] >= first["bytes_copied"]
    with wv.Repository(dest) as d:
        same_checkpoint(origin, d)
        log = [c["message"] for c in d.log()]
        assert log == ["two", "one"]
        assert d.stat()["metadata"] == {"step": "2"}
    again = origin.push(dest)
    assert again["objects_copied"] == 0 and again["bytes_copied"] == 0
    assert again["refs_updated"] == 0 and again["refs_unchanged"] == 1
    # One more commit: only its new objects travel.
    origin.commit({**arrays(2), "extra": np.ones(5, np.float32)})
    third = origin.push(os.fspath(dest))
    assert 0 < third["objects_copied"] < third["objects"]
    assert third["refs_updated"] == 1
    with wv.Repository(dest) as d:
        same_checkpoint(origin, d)


def test_pull_fast_forward_and_clone(origin, tmp_path):
    mine = tmp_path / "mine"
    res = wv.clone(origin.uri, mine)
    assert res["refs_updated"] == 1
    origin.commit(arrays(3), message="three")
    origin.tag("v3")
    with wv.Repository(mine) as m:
        old = m.resolve("main")
        got = m.pull(origin.uri)
        assert got["refs_updated"] == 2  # main moved, tag v3 created
        assert m.resolve("main") != old
        same_checkpoint(origin, m)
        assert m.tags() == origin.tags()
        assert m.pull(origin.uri)["refs_updated"] == 0
    # Clone again into the same place: resumes, copies nothing.
    again = wv.clone(origin.uri, mine)
    assert again["objects_copied"] == 0 and again["refs_unchanged"] == 2


def test_pull_needs_an_existing_repository(origin, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(wv.NotFoundError) as e:
        wv.sync(origin.uri, tmp_path / "empty", create=False)
    assert "not a weightvault repository" in e.value.message
    assert not (tmp_path / "empty" / "config").exists()
    with pytest.raises(wv.NotFoundError) as e:
        origin.pull(tmp_path / "nowhere")
    assert "nowhere" in e.value.message


def test_non_fast_forward_is_refused_then_forced(origin, tmp_path):
    other = tmp_path / "other"
    wv.clone(origin.uri, other)
    with wv.Repository(other) as o:
        theirs = o.commit(arrays(20), message="theirs")
        ours = origin.commit(arrays(10), message="ours")
        # The histories diverged: nothing moves, in either direction.
        with pytest.raises(wv.ConflictError) as e:
            origin.push(other)
        assert e.value.code == 8
        assert "branch 'main'" in e.value.message
        assert "the histories diverged" in e.value.message
        assert e.value.result["objects_copied"] > 0  # data went anyway
        assert e.value.result["refs_updated"] == 0
        assert o.resolve("main") == theirs
        with pytest.raises(wv.ConflictError):
            origin.pull(other)
        assert origin.resolve("main") == ours
        # force: the destination's branch is overwritten (its own
        # checkpoint stays stored, no longer on the branch).
        res = origin.push(other, force=True)
        assert res["refs_updated"] == 1
        assert o.resolve("main") == ours
        assert o.stat(theirs)["message"] == "theirs"
        assert [c["message"] for c in o.log()] == ["ours", "two", "one"]
        # Now other is behind nothing: a plain pull is a no-op.
        assert origin.pull(other)["refs_updated"] == 0


def test_pull_force_and_tags_never_move(origin, tmp_path):
    other = tmp_path / "other"
    wv.clone(origin.uri, other)
    with wv.Repository(other) as o:
        o.tag("release", "main")
        origin.commit(arrays(30))
        origin.tag("release", "main")  # same name, another checkpoint
        with pytest.raises(wv.ConflictError) as e:
            o.pull(origin.uri)
        assert "tag 'release'" in e.value.message
        assert "tags never move" in e.value.message
        assert o.tags()["release"] != origin.tags()["release"]
        o.pull(origin.uri, force=True)
        assert o.tags() == origin.tags()
        same_checkpoint(origin, o)


def test_one_branch(origin, tmp_path):
    origin.branch("exp")
    origin.commit(arrays(5), "exp", message="on exp")
    dest = tmp_path / "dest"
    # REMOTE@BRANCH as in `wv push LOCAL REMOTE@BRANCH`.
    res = origin.push(f"{dest}@exp")
    assert res["refs_updated"] == 1
    with wv.Repository(dest) as d:
        assert d.branches() == {"exp": origin.resolve("exp")}
        same_checkpoint(origin, d, "exp")
        with pytest.raises(wv.NotFoundError):
            d.resolve("main")
    origin.push(dest, branch="main")
    with wv.Repository(dest) as d:
        assert d.branches() == origin.branches()
    with pytest.raises(ValueError, match="two branches"):
        origin.push(f"{dest}@exp", branch="main")
    with pytest.raises(wv.NotFoundError):
        origin.push(dest, branch="nosuch")
    with pytest.raises(wv.UsageError, match="not a valid branch name"):
        origin.push(dest, branch="bad name")


def test_arguments_and_progress(origin, tmp_path):
    for bad in (0, 33, 2.0, True, None):
        with pytest.raises(ValueError, match="jobs"):
            origin.push(tmp_path / "x", jobs=bad)
    assert not (tmp_path / "x").exists()
    seen = []
    res = origin.push(tmp_path / "p", jobs=1,
                      progress=lambda d, t: seen.append((d, t)))
    assert len(seen) == res["objects_copied"]
    assert all(0 < d <= t for d, t in seen)
    # One total for the whole transfer (packs, indexes, manifests), known
    # before the first object moves: done only grows and ends on it.
    assert {t for _, t in seen} == {res["bytes_copied"]}
    assert all(a[0] < b[0] for a, b in zip(seen, seen[1:]))
    assert seen[-1][0] == seen[-1][1]

    def boom(done, total):
        raise RuntimeError("stop here")
    with pytest.raises(RuntimeError, match="stop here"):
        origin.push(tmp_path / "q", progress=boom)
    # The transfer itself went through (a progress callback cannot
    # cancel it): the destination is complete.
    with wv.Repository(tmp_path / "q") as q:
        same_checkpoint(origin, q)


def test_mem_repositories(mem_uri):
    with wv.Repository(mem_uri + "_a", create=True) as a:
        a.commit(arrays(7))
        a.push(mem_uri + "_b")
        with wv.Repository(mem_uri + "_b") as b:
            same_checkpoint(a, b)


def test_background_commit_is_pushed(origin, tmp_path):
    pending = origin.commit_async(arrays(40), message="async")
    origin.push(tmp_path / "d")  # waits for the commit first
    with wv.Repository(tmp_path / "d") as d:
        assert d.stat()["message"] == "async"
    assert pending.wait() == origin.resolve("main")


@pytest.mark.crypto
def test_encrypted_repository_syncs_with_the_env_secret(tmp_path,
                                                        monkeypatch):
    monkeypatch.delenv("WV_PASSPHRASE", raising=False)
    monkeypatch.delenv("WV_KEY_FILE", raising=False)
    secret = "correct horse battery staple"
    src = tmp_path / "vault"
    with wv.Repository(src, create=True, encrypt=True,
                       passphrase=secret) as r:
        r.commit(arrays(8), message="sealed")
        with pytest.raises(wv.AuthError) as e:
            r.push(tmp_path / "copy")
        assert "give a passphrase" in e.value.message
        monkeypatch.setenv("WV_PASSPHRASE", secret)
        r.push(tmp_path / "copy")
        monkeypatch.delenv("WV_PASSPHRASE")
        # The clone is encrypted with the same key.
        with pytest.raises(wv.AuthError):
            wv.Repository(tmp_path / "copy")
        with wv.Repository(tmp_path / "copy", passphrase=secret) as c:
            same_checkpoint(r, c)
    # A plain repository and an encrypted one do not mix.
    with wv.Repository(tmp_path / "plain", create=True) as p:
        p.commit(arrays(9))
        monkeypatch.setenv("WV_PASSPHRASE", secret)
        with pytest.raises(wv.UsageError, match="one is encrypted"):
            p.push(src)


def _wv(*args):
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    return subprocess.run([WV, *map(str, args)], capture_output=True,
                          text=True, env=env, check=True)


@pytest.mark.crypto
@pytest.mark.skipif(not WV, reason="needs $WV (wv keygen, wv commit --sign)")
def test_signer_travels(tmp_path):
    """A signed checkpoint keeps its signer through a push; stat() tells
    it (None when unsigned)."""
    src, dst = tmp_path / "s", tmp_path / "d"
    np.save(tmp_path / "w.npy", np.arange(6, dtype=np.float32))
    _wv("keygen", "-o", tmp_path / "alice")
    _wv("init", src)
    _wv("commit", src, tmp_path / "w.npy", "--sign", tmp_path / "alice.key")
    key = (tmp_path / "alice.pub").read_text().split()[1]
    with wv.Repository(src) as r:
        assert r.stat()["signer"] == key
        r.commit(arrays(1))
        assert r.stat()["signer"] is None
        assert r.stat(r.stat()["parent"])["signer"] == key
        r.push(dst)
    with wv.Repository(dst) as d:
        assert d.stat(d.stat()["parent"])["signer"] == key


@needs_s3
def test_s3_round_trip(origin, tmp_path):
    with s3_bucket("wv-h2-pysync") as bucket:
        _s3_round_trip(origin, f"s3://{bucket}/run", tmp_path)


def _s3_round_trip(origin, remote, tmp_path):
    res = origin.push(remote)
    assert res["refs_updated"] == 1
    back = tmp_path / "back"
    assert wv.clone(remote, back)["objects_copied"] == res["objects"]
    with wv.Repository(back) as b:
        same_checkpoint(origin, b)
        b.commit(arrays(50), message="from the clone")
        b.push(remote)
    origin.commit(arrays(51), message="diverged")
    with pytest.raises(wv.ConflictError):
        origin.push(remote)
    origin.pull(remote, force=True)
    assert origin.stat()["message"] == "from the clone"
