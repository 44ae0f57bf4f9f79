"""The shard reader: every record ends as a document or a reject with a reason."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from gem_dagster.corpus import (
    ReaderOptions,
    ShardReader,
    ShardSchemaError,
    UnsupportedShardError,
)
from tests.conftest import BAD_LINES, good_records, jsonl_lines, write_bad_shard, write_shard


def read_all(path: Path, shard: str = "shard", **options) -> tuple[list, list, ShardReader]:
    reader = ShardReader(path, shard, ReaderOptions(**options))
    ids, rejects = [], []
    for batch in reader.iter_batches():
        ids.extend(batch.ids)
        rejects.extend(batch.rejects)
    return ids, rejects, reader


@pytest.mark.parametrize("name", ["s.jsonl", "s.jsonl.gz", "s.jsonl.zst", "s.parquet"])
def test_every_format_reads_same_documents(tmp_path: Path, name: str) -> None:
    records = good_records("x", 50)
    write_shard(tmp_path / name, records)

    ids, rejects, reader = read_all(tmp_path / name)

    assert ids == [record["id"] for record in records]
    assert rejects == []
    assert reader.summary.records == 50


def test_bad_records_get_reasons(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    expected = write_bad_shard(path, good_count=20)

    ids, rejects, reader = read_all(path)

    reasons: dict[str, int] = {}
    for reject in rejects:
        reasons[reject.reason.value] = reasons.get(reject.reason.value, 0) + 1
    assert reasons == expected
    assert len(ids) == 22
    assert reader.summary.records == 20 + len(BAD_LINES)
    assert reader.summary.documents + reader.summary.rejects == reader.summary.records


def test_bom_and_crlf_do_not_reach_documents(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    write_bad_shard(path)

    reader = ShardReader(path, "bad.jsonl", ReaderOptions())
    first = next(reader.iter_batches())

    assert first.ids[0] == "good-0"
    assert not any(text.endswith("\r") for text in first.texts)


def test_reject_names_line_and_excerpt(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    write_bad_shard(path, good_count=20)

    _, rejects, _ = read_all(path)
    invalid_json = next(reject for reject in rejects if reject.reason.value == "invalid_json")

    assert invalid_json.line == 21
    assert "unterminated" in invalid_json.excerpt
    assert "invalid JSON" in invalid_json.detail


def test_missing_id_is_derived_from_shard_and_line(tmp_path: Path) -> None:
    path = tmp_path / "ids.jsonl"
    path.write_text(
        json.dumps({"text": "no id field"}) + "\n" + json.dumps({"id": 7, "text": "int id"}) + "\n"
    )

    ids, _, _ = read_all(path, shard="part/ids.jsonl")

    assert ids == ["part/ids.jsonl:1", "7"]


def test_configurable_text_and_id_fields(tmp_path: Path) -> None:
    path = tmp_path / "custom.jsonl"
    path.write_text(json.dumps({"doc_id": "k1", "content": "custom fields work"}) + "\n")

    reader = ShardReader(path, "custom", ReaderOptions(text_field="content", id_field="doc_id"))
    batch = next(reader.iter_batches())

    assert batch.ids == ["k1"]
    assert batch.texts == ["custom fields work"]


def test_oversized_record_rejected_without_loading(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    huge = json.dumps({"id": "huge", "text": "x" * 50_000})
    path.write_text(huge + "\n" + json.dumps({"id": "small", "text": "fits"}) + "\n")

    ids, rejects, _ = read_all(path, max_record_bytes=4096)

    assert ids == ["small"]
    assert [reject.reason.value for reject in rejects] == ["record_too_large"]
    assert rejects[0].line == 1
    assert "50" in rejects[0].detail


def test_batches_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    write_shard(path, good_records("m", 1000))

    reader = ShardReader(path, "many", ReaderOptions(batch_rows=64))
    sizes = [len(batch) for batch in reader.iter_batches()]

    assert max(sizes) <= 64
    assert sum(sizes) == 1000


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst"])
def test_truncated_stream_keeps_earlier_records(tmp_path: Path, suffix: str) -> None:
    body = jsonl_lines(good_records("t", 2000))
    compressed = gzip.compress(body) if suffix.endswith("gz") else zstandard.ZstdCompressor().compress(body)
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(compressed[: len(compressed) // 2])

    ids, rejects, reader = read_all(path)

    assert 0 < len(ids) < 2000
    assert rejects[-1].reason.value == "unreadable_stream"
    assert "truncated or corrupt" in rejects[-1].detail
    assert reader.summary.documents + reader.summary.rejects == reader.summary.records


def test_parquet_without_text_column_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"id": ["1"], "body": ["text under another name"]}), path)

    with pytest.raises(ShardSchemaError, match=r"no text column 'text'.*GEM_TEXT_FIELD"):
        read_all(path)


def test_parquet_with_numeric_text_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "numeric.parquet"
    pq.write_table(pa.table({"id": ["1"], "text": [3]}), path)

    with pytest.raises(ShardSchemaError, match="expected string"):
        read_all(path)


def test_parquet_null_text_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"id": ["1", "2"], "text": ["kept", None]}), path)

    ids, rejects, _ = read_all(path)

    assert ids == ["1"]
    assert [(reject.line, reject.reason.value) for reject in rejects] == [(2, "missing_text")]


def test_not_parquet_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "fake.parquet"
    path.write_text("this is not parquet")

    with pytest.raises(ShardSchemaError, match="not a readable Parquet file"):
        read_all(path)


def test_unknown_extension_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("plain text")

    with pytest.raises(UnsupportedShardError, match=r"notes\.txt.*\.jsonl"):
        ShardReader(path, "notes.txt", ReaderOptions())


def test_vanished_shard_names_file(tmp_path: Path) -> None:
    reader = ShardReader(tmp_path / "gone.jsonl", "gone.jsonl", ReaderOptions())

    with pytest.raises(FileNotFoundError, match="gone.jsonl.*moved or deleted"):
        list(reader.iter_batches())
