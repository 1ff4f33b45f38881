"""The object store: a directory and a real S3-compatible server, same rules."""

from __future__ import annotations

import uuid

import pytest

from lynx_common.objectstore import InvalidKey, NotFound, check_key, open_store


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path):
    if request.param == "file":
        return open_store(str(tmp_path / "store"))
    env = request.getfixturevalue("s3_env")
    bucket = env["make_bucket"](f"b-{uuid.uuid4().hex[:12]}")
    return open_store(f"s3://{bucket}/some/prefix")


def test_put_get_range_list_delete(store, tmp_path):
    store.put("jobs/a/summary.json", b'{"x": 1}')
    big = tmp_path / "big.bin"
    payload = bytes(range(256)) * 40_000  # ~10 MB, multipart on S3
    big.write_bytes(payload)
    store.put_file("jobs/a/big.bin", big)

    assert store.get("jobs/a/summary.json") == b'{"x": 1}'
    assert store.head("jobs/a/big.bin").size == len(payload)
    assert store.get_range("jobs/a/big.bin", 100, 200) == payload[100:200]
    assert b"".join(store.iter_range("jobs/a/big.bin", 5, 3_000_005, chunk=1 << 20)) == (payload[5:3_000_005])
    assert [o.key for o in store.list("jobs/a/")] == ["jobs/a/big.bin", "jobs/a/summary.json"]
    assert store.uri("jobs/a/big.bin").endswith("/jobs/a/big.bin")

    store.delete("jobs/a/big.bin")
    with pytest.raises(NotFound):
        store.head("jobs/a/big.bin")
    with pytest.raises(NotFound):
        store.get("nothing/here")


@pytest.mark.parametrize(
    "key",
    ["", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", "a\\..\\b", "a\x00b", "x" * 1000],
)
def test_keys_that_could_escape_are_refused(key, tmp_path):
    with pytest.raises(InvalidKey):
        check_key(key)
    store = open_store(str(tmp_path / "s"))
    with pytest.raises(InvalidKey):
        store.put(key, b"x")
    assert not (tmp_path / "x").exists()


def test_file_store_objects_stay_under_its_root(tmp_path):
    root = tmp_path / "root"
    store = open_store(f"file://{root}")
    store.put("a/b.txt", b"hi")
    assert (root / "a" / "b.txt").read_bytes() == b"hi"
    assert store.uri("a/b.txt") == (root / "a" / "b.txt").as_uri()
