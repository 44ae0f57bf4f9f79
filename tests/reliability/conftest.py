"""Helpers for the reliability tests: a real Dagster instance, resources and catalog queries."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gem_dagster.assets import documents
from gem_dagster.partitions import shard_partitions
from gem_dagster.resources import ComputeResource, CorpusResource, EmbedderResource, WarehouseResource
from gem_dagster.settings import PROJECT_ROOT

# Environment for child processes that run the product's own commands. Models load offline,
# telemetry is off, and the project imports from any working folder.
CHILD_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DAGSTER_DISABLE_TELEMETRY": "1",
    "PYTHONPATH": str(PROJECT_ROOT),
}


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as test_instance:
        yield test_instance


def corpus_resources(corpus_root: Path, store: Path, **corpus_options) -> dict[str, dg.ConfigurableResource]:
    """Resources for the corpus assets; ``corpus_options`` override CorpusResource fields."""
    return {
        "corpus": CorpusResource(root=str(corpus_root), **corpus_options),
        "warehouse": WarehouseResource(storage_root=str(store)),
        "embedder": EmbedderResource(),
        "compute": ComputeResource(device="cpu"),
    }


def materialise_documents(
    instance: dg.DagsterInstance, resources: dict, key: str
) -> dg.ExecuteInProcessResult:
    """Register ``key`` as a shard partition if needed and materialise its documents."""
    if not instance.has_dynamic_partition(shard_partitions.name, key):
        instance.add_dynamic_partitions(shard_partitions.name, [key])
    return dg.materialize([documents], instance=instance, resources=resources, partition_key=key)


def query(warehouse: WarehouseResource, sql: str, parameters: list | None = None) -> list[tuple]:
    """Run one query against freshly refreshed catalog views."""
    catalog = warehouse.catalog
    with catalog.connect() as connection:
        catalog.refresh_views(connection)
        return connection.execute(sql, parameters or []).fetchall()


def table_checksum(table: pa.Table, sort_by: str = "id") -> str:
    """SHA-256 of every column of a table, rows sorted by ``sort_by``, in a stable text form."""
    rows = table.sort_by(sort_by).to_pylist()
    digest = hashlib.sha256()
    for row in rows:
        digest.update(repr(sorted(row.items())).encode("utf-8"))
    return digest.hexdigest()


def parquet_checksum(path: Path, sort_by: str = "id") -> str:
    return table_checksum(pq.read_table(path), sort_by)


def child_environment(**settings: str) -> dict[str, str]:
    """The current environment plus offline flags and the given GEM_* settings."""
    return {**os.environ, **CHILD_ENVIRONMENT, **settings}
