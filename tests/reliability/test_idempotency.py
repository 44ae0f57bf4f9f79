"""Re-materialising corpus assets replaces their output and never adds rows.

The cluster_assignments partitions, domain_stats and mixture_weights are re-materialised in
test_pipeline_reruns.py, which builds the whole model first.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from gem_dagster.assets import seed_sample
from gem_dagster.corpus import list_shard_keys
from gem_dagster.resources import WarehouseResource
from tests.conftest import BAD_LINES, write_corpus

from .conftest import corpus_resources, materialise_documents, parquet_checksum, query

BAD_SHARD_RECORDS = 20 + len(BAD_LINES)
BAD_SHARD_REJECTS = sum(1 for _, reason in BAD_LINES if reason)


def partition_state(warehouse: WarehouseResource, key: str) -> dict:
    """Row counts in the views and checksums of the Parquet files of one shard."""
    layout = warehouse.layout
    documents, distinct = query(
        warehouse, "SELECT count(*), count(DISTINCT id) FROM documents WHERE shard = ?", [key]
    )[0]
    rejects = query(warehouse, "SELECT count(*) FROM rejected_documents WHERE shard = ?", [key])[0][0]
    return {
        "documents": documents,
        "distinct_ids": distinct,
        "rejects": rejects,
        "documents_file": parquet_checksum(layout.documents_file(key)),
        "rejects_file": parquet_checksum(layout.rejects_file(key), sort_by="line"),
        "files": sorted(path.name for path in layout.documents_file(key).parent.iterdir()),
    }


def test_documents_rerun_changes_nothing(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    corpus_root = write_corpus(tmp_path / "corpus")
    resources = corpus_resources(corpus_root, tmp_path / "store")
    warehouse: WarehouseResource = resources["warehouse"]
    assert materialise_documents(instance, resources, "bad.jsonl").success
    first = partition_state(warehouse, "bad.jsonl")

    for _ in range(2):
        assert materialise_documents(instance, resources, "bad.jsonl").success

    again = partition_state(warehouse, "bad.jsonl")
    assert again == first
    assert first["documents"] == first["distinct_ids"] == BAD_SHARD_RECORDS - BAD_SHARD_REJECTS
    assert first["rejects"] == BAD_SHARD_REJECTS
    assert first["files"] == ["part-0.parquet"]


def test_seed_sample_rerun_replaces_table(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    corpus_root = write_corpus(tmp_path / "corpus")
    resources = corpus_resources(corpus_root, tmp_path / "store")
    for key in list_shard_keys(corpus_root):
        assert materialise_documents(instance, resources, key).success
    run_config = {"ops": {"seed_sample": {"config": {"documents": 40}}}}

    samples = []
    for _ in range(2):
        result = dg.materialize([seed_sample], instance=instance, resources=resources, run_config=run_config)
        assert result.success
        seed_file = result.asset_materializations_for_node("seed_sample")[0].metadata["path"].value
        warehouse = resources["warehouse"]
        rows, distinct = query(warehouse, "SELECT count(*), count(DISTINCT id) FROM seed_documents")[0]
        ids = [row[0] for row in query(warehouse, "SELECT id FROM seed_documents ORDER BY id")]
        file_rows = pq.read_table(seed_file).num_rows
        samples.append({"rows": rows, "distinct": distinct, "ids": ids, "file_rows": file_rows})

    assert samples[0]["rows"] == samples[0]["distinct"] == 40
    assert samples[1]["rows"] == samples[1]["distinct"] == 40
    assert samples[1]["file_rows"] == 40
    assert samples[1]["ids"] == samples[0]["ids"]
