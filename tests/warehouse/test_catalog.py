"""Atomic Parquet writes and the DuckDB catalog, on real files."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gem_dagster.warehouse import AtomicParquetWriter, Catalog, StorageLayout, write_table_atomically
from gem_dagster.warehouse.schemas import documents_schema


def test_failed_write_leaves_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "part-0.parquet"
    write_table_atomically(target, pa.table({"x": [1, 2, 3]}))

    with pytest.raises(RuntimeError, match="interrupted"):
        with AtomicParquetWriter(target, pa.schema([("x", pa.int64())])) as writer:
            writer.write(pa.table({"x": [9]}))
            raise RuntimeError("interrupted")

    assert pq.read_table(target)["x"].to_pylist() == [1, 2, 3]
    assert [path.name for path in tmp_path.iterdir()] == ["part-0.parquet"]


def test_publish_removes_abandoned_temporaries(tmp_path: Path) -> None:
    # Files that killed writers of this target and of another one left behind, unlocked.
    abandoned = tmp_path / ".part-0.parquet.0123abcd.tmp"
    abandoned.write_bytes(b"partial")
    other_target = tmp_path / ".part-1.parquet.0123abcd.tmp"
    other_target.write_bytes(b"partial")

    write_table_atomically(tmp_path / "part-0.parquet", pa.table({"x": [1]}))

    assert not abandoned.exists()
    assert other_target.exists()
    assert pq.read_table(tmp_path / "part-0.parquet")["x"].to_pylist() == [1]


def test_publish_keeps_live_writers_temporary(tmp_path: Path) -> None:
    target = tmp_path / "part-0.parquet"
    schema = pa.schema([("x", pa.int64())])

    with AtomicParquetWriter(target, schema) as slow_writer:
        slow_writer.write(pa.table({"x": [1]}))
        write_table_atomically(target, pa.table({"x": [2]}))

        # The slow writer holds the lock on its temporary file, so the publish left it alone.
        assert len(list(tmp_path.glob(".part-0.parquet.*.tmp"))) == 1
        assert pq.read_table(target)["x"].to_pylist() == [2]

    assert pq.read_table(target)["x"].to_pylist() == [1]
    assert [path.name for path in tmp_path.iterdir()] == ["part-0.parquet"]


def test_views_are_empty_before_any_shard(tmp_path: Path) -> None:
    catalog = Catalog(StorageLayout(tmp_path))

    with catalog.connect() as connection:
        catalog.refresh_views(connection)
        documents = connection.execute("SELECT count(*) FROM documents").fetchone()[0]
        rejects = connection.execute("SELECT count(*) FROM rejected_documents").fetchone()[0]
        columns = [row[0] for row in connection.execute("DESCRIBE documents").fetchall()]

    assert documents == 0
    assert rejects == 0
    assert columns == documents_schema(("source", "label")).names


def test_views_cover_every_shard_file(tmp_path: Path) -> None:
    layout = StorageLayout(tmp_path)
    schema = documents_schema(("source", "label"))
    for shard, count in [("a.jsonl", 3), ("nested/b.jsonl", 2)]:
        rows = {name: [None] * count for name in schema.names}
        rows.update(id=[f"{shard}-{i}" for i in range(count)], shard=[shard] * count,
                    line=list(range(1, count + 1)), text=["t"] * count,
                    n_chars=[1] * count, n_tokens=[1] * count, sha1=["0"] * count)
        write_table_atomically(layout.documents_file(shard), pa.table(rows, schema=schema))
    catalog = Catalog(layout)

    with catalog.connect() as connection:
        catalog.refresh_views(connection)
        counts = connection.execute(
            "SELECT shard, count(*) FROM documents GROUP BY shard ORDER BY shard"
        ).pl()

    assert counts.rows() == [("a.jsonl", 3), ("nested/b.jsonl", 2)]


def test_replace_table_swaps_rows(tmp_path: Path) -> None:
    catalog = Catalog(StorageLayout(tmp_path))
    first, second = tmp_path / "first.parquet", tmp_path / "second.parquet"
    pq.write_table(pa.table({"id": ["a", "b"]}), first)
    pq.write_table(pa.table({"id": ["c"]}), second)

    with catalog.connect() as connection:
        assert catalog.replace_table(connection, "seed_documents", first) == 2
        assert catalog.replace_table(connection, "seed_documents", second) == 1
        ids = connection.execute("SELECT id FROM seed_documents").fetchall()

    assert ids == [("c",)]


def test_read_only_connect_without_catalog_is_clear(tmp_path: Path) -> None:
    catalog = Catalog(StorageLayout(tmp_path / "empty"))

    with pytest.raises(FileNotFoundError, match="materialise seed_sample first"):
        with catalog.connect(read_only=True):
            pass


def test_assignments_view_drops_the_copy_rejected_across_shards(tmp_path: Path) -> None:
    from gem_dagster.warehouse.schemas import ASSIGNMENTS_SCHEMA

    layout = StorageLayout(tmp_path)
    schema = documents_schema(())
    for shard, ids in [("a.jsonl", ["x", "shared"]), ("b.jsonl", ["shared", "y"])]:
        count = len(ids)
        rows = dict(id=ids, shard=[shard] * count, line=list(range(1, count + 1)), text=["t"] * count,
                    n_chars=[1] * count, n_tokens=[1] * count, sha1=["0"] * count)
        write_table_atomically(layout.documents_file(shard), pa.table(rows, schema=schema))
        labels = dict(id=ids, shard=[shard] * count, cluster_id=[0] * count, probability=[1.0] * count)
        write_table_atomically(layout.assignments_file(shard), pa.table(labels, schema=ASSIGNMENTS_SCHEMA))
    catalog = Catalog(layout, metadata_fields=())

    with catalog.connect() as connection:
        catalog.refresh_views(connection)
        labelled = connection.execute("SELECT shard, id FROM cluster_assignments ORDER BY shard, id").fetchall()
        raw = connection.execute("SELECT count(*) FROM ingested_assignments").fetchone()[0]

    # The copy in a.jsonl (first shard key) is kept; b.jsonl's copy is a duplicate_id reject.
    assert labelled == [("a.jsonl", "shared"), ("a.jsonl", "x"), ("b.jsonl", "y")]
    assert raw == 4
