"""Resolve a corpus root given as a local folder or as an fsspec URL.

A local folder (or a ``file://`` URL) becomes an absolute ``pathlib.Path``. Any other URL,
such as ``s3://bucket/shards`` or ``gs://bucket/shards``, becomes a ``UPath`` from
universal-pathlib, which lists and opens files through fsspec with the same methods, so
shard discovery and reading work on both. The filesystem package of the URL's protocol
(s3fs, gcsfs, ...) must be installed for that protocol.
"""

from __future__ import annotations

import os
from pathlib import Path

from upath import UPath

LOCAL_PROTOCOLS = ("", "file", "local")


def corpus_location(root: str | os.PathLike) -> Path | UPath:
    """Return the corpus root as a local Path, or a UPath for a remote fsspec URL."""
    text = os.fspath(root)
    if "://" not in text:
        return Path(text).expanduser().resolve()
    location = UPath(text)
    if location.protocol in LOCAL_PROTOCOLS:
        return Path(os.fspath(location)).resolve()
    return location


def is_local(path: Path | UPath) -> bool:
    """Return whether a shard path is on the local filesystem."""
    return isinstance(path, Path)
