"""One object-store client for artifacts and telemetry segments.

A store is named by a URL: a directory (``/abs/path`` or ``file:///abs/path``)
or an S3-compatible bucket with an optional prefix (``s3://bucket/prefix``).
S3 credentials and region come from the standard ``AWS_*`` environment
variables; the endpoint of an S3-compatible server from ``AWS_ENDPOINT_URL``
(or ``endpoint=``). Both kinds are served by obstore, so the local directory
and the bucket behave the same: keys are ``/``-separated, writes are atomic
(a reader never sees half an object) and reads can take a byte range.

Every key passes :func:`check_key` first: no empty segment, no ``.`` or
``..``, no absolute path, no backslash or control character. A key therefore
names an object under the store's own root and nothing outside it, whatever
a user put in a file name.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import obstore
from obstore.store import LocalStore, S3Store

__all__ = [
    "MAX_KEY_BYTES",
    "InvalidKey",
    "NotFound",
    "ObjectInfo",
    "ObjectStore",
    "check_key",
    "open_store",
]

# S3 allows 1,024 bytes of key; leave room for the store's prefix.
MAX_KEY_BYTES = 900
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")


class InvalidKey(ValueError):
    """A key that could name something outside its prefix, or no object."""


class NotFound(LookupError):
    """No object under that key."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key; raise InvalidKey."""
    if not isinstance(key, str) or not key:
        raise InvalidKey("key is empty")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidKey(f"key is longer than {MAX_KEY_BYTES} bytes")
    if _BAD_CHARS.search(key):
        raise InvalidKey("key contains a control character or a backslash")
    if key.startswith("/"):
        raise InvalidKey("key is absolute")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise InvalidKey(f"key has an empty, '.' or '..' segment: {key!r}")
    return key


def join_key(*parts: str) -> str:
    """Join checked segments with ``/``."""
    return check_key("/".join(p.strip("/") for p in parts if p))


class ObjectStore:
    """A directory or an S3 bucket (with prefix), addressed by checked keys."""

    def __init__(self, url: str, store, kind: str):
        self.url = url.rstrip("/")
        self.kind = kind
        self._store = store

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"

    def uri(self, key: str) -> str:
        """The URI a user sees for ``key`` (``file:///…`` or ``s3://…``)."""
        return f"{self.url}/{check_key(key)}"

    # --- writing ---------------------------------------------------------
    def put(self, key: str, data: bytes | Iterable[bytes]) -> None:
        obstore.put(self._store, check_key(key), data)

    def put_file(self, key: str, path: str | os.PathLike) -> None:
        """Upload a local file, streamed (multipart for large files on S3)."""
        obstore.put(self._store, check_key(key), Path(path))

    async def put_async(self, key: str, data: bytes) -> None:
        await obstore.put_async(self._store, check_key(key), data)

    def delete(self, key: str) -> None:
        try:
            obstore.delete(self._store, check_key(key))
        except FileNotFoundError:
            pass

    # --- reading ---------------------------------------------------------
    def head(self, key: str) -> ObjectInfo:
        try:
            meta = obstore.head(self._store, check_key(key))
        except FileNotFoundError as exc:
            raise NotFound(key) from exc
        return ObjectInfo(key=key, size=int(meta["size"]))

    async def head_async(self, key: str) -> ObjectInfo:
        try:
            meta = await obstore.head_async(self._store, check_key(key))
        except FileNotFoundError as exc:
            raise NotFound(key) from exc
        return ObjectInfo(key=key, size=int(meta["size"]))

    def get(self, key: str) -> bytes:
        try:
            return bytes(obstore.get(self._store, check_key(key)).bytes())
        except FileNotFoundError as exc:
            raise NotFound(key) from exc

    async def get_async(self, key: str) -> bytes:
        try:
            result = await obstore.get_async(self._store, check_key(key))
            return bytes(await result.bytes_async())
        except FileNotFoundError as exc:
            raise NotFound(key) from exc

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)``; ``end`` is clipped to the object's size."""
        if end <= start:
            return b""
        try:
            return bytes(obstore.get_range(self._store, check_key(key), start=start, end=end))
        except FileNotFoundError as exc:
            raise NotFound(key) from exc

    def iter_range(self, key: str, start: int = 0, end: int | None = None, chunk: int = 1 << 20) -> Iterator[bytes]:
        """Stream ``[start, end)`` in chunks of at most ``chunk`` bytes."""
        if end is None:
            end = self.head(key).size
        pos = start
        while pos < end:
            stop = min(end, pos + chunk)
            yield self.get_range(key, pos, stop)
            pos = stop

    async def aiter_range(
        self, key: str, start: int = 0, end: int | None = None, chunk: int = 1 << 20
    ) -> AsyncIterator[bytes]:
        if end is None:
            end = (await self.head_async(key)).size
        pos = start
        while pos < end:
            stop = min(end, pos + chunk)
            try:
                data = await obstore.get_range_async(self._store, check_key(key), start=pos, end=stop)
            except FileNotFoundError as exc:
                raise NotFound(key) from exc
            yield bytes(data)
            pos = stop

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object whose key starts with the directory ``prefix``."""
        if prefix:
            check_key(prefix.rstrip("/"))
        out: list[ObjectInfo] = []
        try:
            for batch in obstore.list(self._store, prefix=prefix or None):
                for meta in batch:
                    out.append(ObjectInfo(key=str(meta["path"]), size=int(meta["size"])))
        except FileNotFoundError:
            return []
        out.sort(key=lambda o: o.key)
        return out


def open_store(url: str, *, endpoint: str | None = None) -> ObjectStore:
    """Open ``url``: a directory path, ``file:///dir`` or ``s3://bucket/prefix``."""
    if not url:
        raise ValueError("object store URL is empty")
    parts = urlsplit(url)
    if parts.scheme in ("", "file"):
        path = Path(parts.path if parts.scheme else url).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return ObjectStore(path.as_uri(), LocalStore(prefix=path, mkdir=True), "file")
    if parts.scheme == "s3":
        bucket = parts.netloc
        if not bucket:
            raise ValueError(f"object store URL {url!r} names no bucket")
        prefix = parts.path.strip("/")
        if prefix:
            check_key(prefix)
        endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        config: dict = {}
        if endpoint:
            config["endpoint"] = endpoint
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        config["region"] = region or "us-east-1"
        client_options = {"allow_http": bool(endpoint and endpoint.startswith("http://"))}
        store = S3Store(
            bucket,
            prefix=prefix or None,
            config=config,
            client_options=client_options,
        )
        shown = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        return ObjectStore(shown, store, "s3")
    raise ValueError(f"object store URL {url!r}: use a directory, file:// or s3://")


def s3_url(bucket: str, prefix: str = "") -> str:
    """``s3://bucket/prefix`` from the tutorial's ``s3_bucket``/``s3_prefix``."""
    prefix = prefix.strip("/")
    return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
