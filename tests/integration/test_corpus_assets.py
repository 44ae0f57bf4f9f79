"""The documents and seed_sample assets on a real Dagster instance and real DuckDB file."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from gem_dagster.assets import documents, seed_sample
from gem_dagster.corpus import list_shard_keys
from gem_dagster.partitions import shard_partitions
from gem_dagster.resources import WarehouseResource
from tests.conftest import BAD_LINES


def ingest_all(instance: dg.DagsterInstance, resources: dict, keys: list[str]) -> None:
    instance.add_dynamic_partitions(shard_partitions.name, keys)
    for key in keys:
        result = dg.materialize([documents], instance=instance, resources=resources, partition_key=key)
        assert result.success


def input_records(path: Path) -> int:
    if path.suffix == ".parquet":
        return pq.ParquetFile(path).metadata.num_rows
    import gzip

    import zstandard

    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    elif path.name.endswith(".zst"):
        raw = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    return raw.count(b"\n")


def test_documents_plus_rejects_equal_input_records(
    instance: dg.DagsterInstance, resources: dict, corpus_root: Path
) -> None:
    keys = list_shard_keys(corpus_root)
    ingest_all(instance, resources, keys)
    result = dg.materialize(
        [seed_sample],
        instance=instance,
        resources=resources,
        run_config={"ops": {"seed_sample": {"config": {"documents": 40}}}},
    )
    assert result.success

    warehouse: WarehouseResource = resources["warehouse"]
    with warehouse.catalog.connect(read_only=True) as connection:
        stored = dict(
            connection.execute(
                """
                SELECT shard, sum(n) FROM (
                    SELECT shard, count(*) AS n FROM documents GROUP BY shard
                    UNION ALL
                    SELECT shard, count(*) AS n FROM rejected_documents GROUP BY shard
                ) GROUP BY shard
                """
            ).fetchall()
        )
        bad_reasons = dict(
            connection.execute(
                "SELECT reason, count(*) FROM rejected_documents WHERE shard = 'bad.jsonl' GROUP BY reason"
            ).fetchall()
        )
        seed_count = connection.execute("SELECT count(*) FROM seed_documents").fetchone()[0]

    for key in keys:
        assert stored[key] == input_records(corpus_root / key), key
    assert sum(bad_reasons.values()) == sum(1 for _, reason in BAD_LINES if reason)
    assert seed_count == 40


def test_reconciliation_check_passes(instance: dg.DagsterInstance, resources: dict) -> None:
    instance.add_dynamic_partitions(shard_partitions.name, ["bad.jsonl"])

    result = dg.materialize([documents], instance=instance, resources=resources, partition_key="bad.jsonl")
    evaluations = result.get_asset_check_evaluations()

    assert [evaluation.check_name for evaluation in evaluations] == ["records_reconciled"]
    assert evaluations[0].passed
    assert evaluations[0].metadata["records"].value == 20 + len(BAD_LINES)


def test_rematerialising_partition_leaves_no_duplicates(
    instance: dg.DagsterInstance, resources: dict
) -> None:
    ingest_all(instance, resources, ["a.jsonl"])
    result = dg.materialize([documents], instance=instance, resources=resources, partition_key="a.jsonl")
    assert result.success

    warehouse: WarehouseResource = resources["warehouse"]
    table = pq.read_table(warehouse.layout.documents_file("a.jsonl"))
    assert table.num_rows == 30
    assert len(set(table["id"].to_pylist())) == 30


def test_seed_sample_without_documents_fails_clearly(
    instance: dg.DagsterInstance, resources: dict
) -> None:
    with pytest.raises(RuntimeError, match="documents view is empty"):
        dg.materialize([seed_sample], instance=instance, resources=resources)


def test_vanished_shard_fails_with_its_name(
    instance: dg.DagsterInstance, resources: dict, corpus_root: Path
) -> None:
    instance.add_dynamic_partitions(shard_partitions.name, ["a.jsonl"])
    (corpus_root / "a.jsonl").unlink()

    with pytest.raises(FileNotFoundError, match="a.jsonl.*moved or deleted"):
        dg.materialize([documents], instance=instance, resources=resources, partition_key="a.jsonl")
