"""Shard discovery and partition keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from gem_dagster.corpus import InvalidShardKeyError, list_shard_keys, shard_path, unsupported_files
from gem_dagster.corpus.shards import shard_storage_name, validate_shard_key


def test_lists_supported_files_recursively(corpus_root: Path) -> None:
    (corpus_root / "readme.txt").write_text("not a shard")
    (corpus_root / ".partial.jsonl").write_text("{}")

    keys = list_shard_keys(corpus_root)

    assert keys == ["a.jsonl", "b.jsonl.gz", "bad.jsonl", "c.jsonl.zst", "nested/d.parquet"]
    assert unsupported_files(corpus_root) == [corpus_root / "readme.txt"]


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs/path.jsonl", "a/../../b.jsonl", "", "a,b.jsonl"])
def test_unsafe_keys_are_rejected(key: str) -> None:
    with pytest.raises(InvalidShardKeyError, match="invalid shard key"):
        validate_shard_key(key)


def test_key_maps_back_to_file(corpus_root: Path) -> None:
    assert shard_path(corpus_root, "nested/d.parquet") == (corpus_root / "nested" / "d.parquet").resolve()


def test_storage_name_quotes_slashes() -> None:
    assert shard_storage_name("nested/d.parquet") == "shard=nested%2Fd.parquet"
