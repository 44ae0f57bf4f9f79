"""Corpus resource: where the shard files are and how their records are read."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from upath import UPath

from gem_dagster.corpus import ReaderOptions, list_shard_keys, shard_path
from gem_dagster.corpus.location import corpus_location


class CorpusResource(dg.ConfigurableResource):
    """Corpus root (a local folder or an fsspec URL) and the fields and limits used to read
    its shards."""

    root: str
    text_field: str = "text"
    id_field: str = "id"
    metadata_fields: list[str] = ["source", "label"]
    read_batch_rows: int = 2048
    max_record_bytes: int = 8 * 1024 * 1024

    @property
    def root_path(self) -> Path | UPath:
        path = corpus_location(self.root)
        if not path.is_dir():
            raise FileNotFoundError(
                f"corpus root {path} does not exist or is not a folder: set GEM_CORPUS_ROOT to "
                "the folder that holds your shard files"
            )
        return path

    def reader_options(self) -> ReaderOptions:
        return ReaderOptions(
            text_field=self.text_field,
            id_field=self.id_field,
            metadata_fields=tuple(self.metadata_fields),
            batch_rows=self.read_batch_rows,
            max_record_bytes=self.max_record_bytes,
        )

    def shard_keys(self, on_invalid=None) -> list[str]:
        """List the partition keys of every shard file now under the root.

        ``on_invalid(path, error)`` receives shards whose path cannot be a partition key;
        without it such a shard raises (see `list_shard_keys`).
        """
        return list_shard_keys(self.root_path, on_invalid)

    def shard_file(self, key: str) -> Path | UPath:
        return shard_path(self.root_path, key)
