"""Where the Parquet tables and the daily reports are published: a local folder or an S3-compatible
bucket, behind one small interface, :class:`Storage`, that every table and the report use.

A key is a relative, "/"-separated name such as ``order_events/date=2026-11-24/order_events.parquet``.
:meth:`Storage.put` publishes one whole object atomically, so a reader sees the old object or the new
one, never part of one:

- on local disk the bytes go to a hidden temporary file in the target's folder, then a rename;
- on S3 an object becomes visible only when its upload completes (a single PUT, or a multipart upload
  that S3 shows only once it is completed); an upload cut short leaves the previous object in place.

A daily partition is one object, so publishing a day is one atomic step: no manifest to keep in step.

S3 goes through ``pyarrow.fs``: credentials, region and endpoint come from the standard AWS variables
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_ENDPOINT_URL`` for a store that
is not AWS), which polars and DuckDB read too.
"""

from __future__ import annotations

import os
import uuid
from abc import ABC, abstractmethod
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.fs as pafs

OBJECT_SCHEMES = ("s3",)
"""URL schemes published to an object store; anything else is a local path."""


class Storage(ABC):
    """A root (local folder or ``s3://bucket/prefix``) holding objects by key. Naming an object
    (:meth:`url`) touches nothing; the file system is reached on the first read or write."""

    def __init__(self, url: str) -> None:
        self.root_url = url.rstrip("/")

    def url(self, key: str) -> str:
        """What a reader opens (polars, DuckDB, pyarrow): a path, or an ``s3://`` URL; globs allowed."""
        return f"{self.root_url}/{key}"

    @abstractmethod
    def _locate(self) -> tuple[pafs.FileSystem, str]:
        """The file system and the root's path on it."""

    @cached_property
    def _located(self) -> tuple[pafs.FileSystem, str]:
        fs, root = self._locate()
        return fs, root.rstrip("/")

    def _path(self, key: str) -> str:
        return f"{self._located[1]}/{key}"

    @abstractmethod
    def put(self, key: str, data: bytes) -> str:
        """Publish ``data`` at ``key`` atomically; returns its URL."""

    def exists(self, key: str) -> bool:
        fs, _ = self._located
        return fs.get_file_info(self._path(key)).type == pafs.FileType.File

    def keys(self, prefix: str) -> list[str]:
        """Every object's key under ``prefix`` (a folder), sorted; temporary files left out."""
        fs, root = self._located
        infos = fs.get_file_info(pafs.FileSelector(self._path(prefix), recursive=True, allow_not_found=True))
        keys = (i.path.removeprefix(root + "/") for i in infos if i.type == pafs.FileType.File)
        return sorted(k for k in keys if not k.rsplit("/", 1)[-1].startswith("."))


class LocalStorage(Storage):
    def _locate(self) -> tuple[pafs.FileSystem, str]:
        return pafs.LocalFileSystem(), os.path.abspath(self.root_url)

    def put(self, key: str, data: bytes) -> str:
        target = Path(self._path(key))
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return self.url(key)


class ObjectStorage(Storage):
    def _locate(self) -> tuple[pafs.FileSystem, str]:
        return pafs.FileSystem.from_uri(self.root_url)

    def put(self, key: str, data: bytes) -> str:
        fs, _ = self._located
        try:
            with fs.open_output_stream(self._path(key)) as out:
                out.write(data)
        except OSError as e:
            raise OSError(f"could not publish {self.url(key)} (the previous object, if any, is unchanged): {e}") from e
        return self.url(key)


def at(url: str) -> Storage:
    """The storage at ``url``: ``s3://bucket/prefix`` or a local folder."""
    if urlsplit(url).scheme in OBJECT_SCHEMES:
        return ObjectStorage(url)
    return LocalStorage(url)


def sibling(url: str, name: str) -> str:
    """``name`` beside the folder ``url`` (``s3://b/ow/parquet`` -> ``s3://b/ow/reports``)."""
    parts = urlsplit(url)
    if parts.scheme in OBJECT_SCHEMES and parts.path.strip("/") == "":
        raise ValueError(f"{url}: name a folder inside the bucket (e.g. {url.rstrip('/')}/orderwatch/parquet)")
    return f"{url.rstrip('/').rsplit('/', 1)[0]}/{name}" if "/" in url.rstrip("/") else name
