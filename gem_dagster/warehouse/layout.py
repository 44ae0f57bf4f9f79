"""Paths of every artefact under the storage root.

    warehouse.duckdb                               the DuckDB catalog
    documents/shard=<key>/part-0.parquet           validated documents of one shard
    rejects/shard=<key>/part-0.parquet             rejected records of one shard
    assignments/shard=<key>/part-0.parquet         student labels of one shard
    mixture/strategy=<name>/part-0.parquet         mixture weights of one strategy
    <asset>/<run id>/...                           unpartitioned artefacts, one folder per run

Partition keys may contain '/', so they are URL-quoted into one folder name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gem_dagster.corpus.shards import shard_storage_name

PART_FILE = "part-0.parquet"


@dataclass(frozen=True)
class StorageLayout:
    """Paths of the catalog and of every artefact under one storage root."""

    root: Path

    @property
    def catalog_path(self) -> Path:
        return self.root / "warehouse.duckdb"

    def documents_file(self, shard: str) -> Path:
        return self.root / "documents" / shard_storage_name(shard) / PART_FILE

    def rejects_file(self, shard: str) -> Path:
        return self.root / "rejects" / shard_storage_name(shard) / PART_FILE

    def assignments_file(self, shard: str) -> Path:
        return self.root / "assignments" / shard_storage_name(shard) / PART_FILE

    def placeholder_file(self, dataset: str, partition: str = "shard") -> Path:
        """Empty part file under the partition key "" that keeps a dataset's glob non-empty."""
        return self.root / dataset / f"{partition}=" / PART_FILE

    def mixture_file(self, strategy: str) -> Path:
        return self.root / "mixture" / f"strategy={strategy}" / PART_FILE

    def partition_glob(self, dataset: str, partition: str = "shard") -> str:
        """Glob over every partition's part file of a dataset (documents, rejects, ...)."""
        return str(self.root / dataset / f"{partition}=*" / PART_FILE)

    def run_folder(self, asset: str, run_id: str) -> Path:
        """Folder for the artefacts that one run of an unpartitioned asset writes."""
        folder = self.root / asset / run_id
        folder.mkdir(parents=True, exist_ok=True)
        return folder
