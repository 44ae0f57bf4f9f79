"""Find shard files under a corpus root and map them to partition keys and back.

A partition key is the shard's path relative to the corpus root, in POSIX form. Keys never
contain ``..`` or start with ``/``, so a key can never name a file outside the root.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath
from urllib.parse import quote

SHARD_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".parquet")


class UnsupportedShardError(ValueError):
    """A file under the corpus root whose extension no reader handles."""


class InvalidShardKeyError(ValueError):
    """A partition key that is not a safe relative path inside the corpus root."""


def shard_format(path: Path | str) -> str:
    """Return the reader format for a shard file name, or raise for an unknown extension."""
    name = str(path).lower()
    for suffix in sorted(SHARD_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix.lstrip(".")
    raise UnsupportedShardError(
        f"unsupported shard file {path}: the extension must be one of "
        f"{', '.join(SHARD_SUFFIXES)}; convert the file or move it out of the corpus root"
    )


def is_shard_file(path: Path) -> bool:
    """Return whether a path names a file with a supported shard extension."""
    return path.is_file() and str(path).lower().endswith(SHARD_SUFFIXES)


def list_shard_keys(
    corpus_root: Path, on_invalid: Callable[[Path, InvalidShardKeyError], None] | None = None
) -> list[str]:
    """List the partition keys of every shard file under the corpus root, sorted.

    Hidden files and folders (names starting with a dot) are skipped, because editors and
    atomic writers leave temporary files there. Files with other extensions are skipped too;
    `unsupported_files` lists them so callers can warn. A shard whose path cannot be a
    partition key raises `InvalidShardKeyError`, or, when ``on_invalid`` is given, is passed
    to it and skipped, so that a long-running sensor is not stopped by one bad file name.
    """
    keys = []
    for path in sorted(corpus_root.rglob("*")):
        relative = path.relative_to(corpus_root)
        if any(part.startswith(".") for part in relative.parts) or not is_shard_file(path):
            continue
        try:
            keys.append(shard_key(corpus_root, path))
        except InvalidShardKeyError as error:
            if on_invalid is None:
                raise
            on_invalid(path, error)
    return keys


def unsupported_files(corpus_root: Path) -> list[Path]:
    """List visible files under the corpus root that no shard reader handles."""
    found = []
    for path in sorted(corpus_root.rglob("*")):
        relative = path.relative_to(corpus_root)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if not is_shard_file(path):
            found.append(path)
    return found


def shard_key(corpus_root: Path, path: Path) -> str:
    """Return the partition key of a shard file: its POSIX path relative to the root."""
    return validate_shard_key(PurePosixPath(path.relative_to(corpus_root).as_posix()).as_posix())


def validate_shard_key(key: str) -> str:
    """Return the key unchanged if it is a safe relative path, else raise."""
    posix = PurePosixPath(key)
    if not key or posix.is_absolute() or ".." in posix.parts or "\\" in key:
        raise InvalidShardKeyError(
            f"invalid shard key {key!r}: a key must be a relative path inside the corpus root, "
            "without '..', a leading '/' or backslashes"
        )
    if any(ch in key for ch in "\n\r\t,[]*"):
        raise InvalidShardKeyError(
            f"invalid shard key {key!r}: rename the file so its path has no newline, tab, "
            "comma, bracket or '*' (Dagster partition keys cannot contain them)"
        )
    return key


def shard_path(corpus_root: Path, key: str) -> Path:
    """Return the file of a partition key, checking that it stays inside the corpus root."""
    validate_shard_key(key)
    path = (corpus_root / key).resolve()
    if not path.is_relative_to(corpus_root.resolve()):
        raise InvalidShardKeyError(f"shard key {key!r} resolves outside corpus root {corpus_root}")
    return path


def shard_storage_name(key: str) -> str:
    """Return the folder name that stores a shard's Parquet output (``shard=<quoted key>``)."""
    return "shard=" + quote(key, safe="")
