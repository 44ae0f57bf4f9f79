"""Bad shards through the `documents` asset on a real Dagster instance.

Each case states its exact outcome: which records become documents, which are rejected and
with what reason, or which error stops the partition. The reader's own unit tests
(tests/corpus/test_reader.py) cover the single-record kinds line by line. These tests run the
same inputs through Dagster, the Parquet writers, the asset check and the DuckDB views.
"""

from __future__ import annotations

import gzip
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from gem_dagster.assets import seed_sample
from gem_dagster.corpus import ShardSchemaError, UnsupportedShardError
from gem_dagster.resources import WarehouseResource
from tests.conftest import BAD_LINES, good_records, jsonl_lines, write_shard

from .conftest import corpus_resources, materialise_documents, query

UTF8_BOM = b"\xef\xbb\xbf"
DEFAULT_MAX_RECORD_BYTES = 8 * 1024 * 1024


def check_of(result: dg.ExecuteInProcessResult):
    evaluations = result.get_asset_check_evaluations()
    assert [evaluation.check_name for evaluation in evaluations] == ["records_reconciled"]
    return evaluations[0]


def materialisation_metadata(result: dg.ExecuteInProcessResult) -> dict:
    return result.asset_materializations_for_node("documents")[0].metadata


def random_letters(count: int, seed: int = 0) -> str:
    """Text that compresses poorly, so that cutting its compressed form cuts the text too."""
    return "".join(random.Random(seed).choices(string.ascii_letters, k=count))


# -- a shard made only of bad records ---------------------------------------------------------

# A second file appended with `cat` keeps its byte order mark in the middle of the shard.
MID_FILE_BOM_LINE = UTF8_BOM + b'{"id": "appended", "text": "a second file starts here"}'


def test_all_bad_shard_reconciles(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    corpus_root = tmp_path / "corpus"
    corpus_root.mkdir()
    lines = [line for line, _ in BAD_LINES] + [MID_FILE_BOM_LINE]
    (corpus_root / "all_bad.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    resources = corpus_resources(corpus_root, tmp_path / "store")

    result = materialise_documents(instance, resources, "all_bad.jsonl")

    expected_reasons: dict[str, int] = {}
    for _, reason in BAD_LINES:
        if reason is not None:
            expected_reasons[reason] = expected_reasons.get(reason, 0) + 1
    expected_reasons["invalid_json"] += 1
    check = check_of(result)
    metadata = materialisation_metadata(result)
    assert result.success
    assert check.passed
    assert check.metadata["records"].value == len(lines)
    assert metadata["documents"].value == 2
    assert metadata["rejected"].value == len(lines) - 2
    assert metadata["rejects_by_reason"].value == expected_reasons

    # Two lines of BAD_LINES are valid: the first copy of "dup-0" and, last, a null id.
    warehouse: WarehouseResource = resources["warehouse"]
    first_copy_line = 1 + next(index for index, (_, reason) in enumerate(BAD_LINES) if reason is None)
    null_id_line = len(BAD_LINES)
    stored_documents = query(warehouse, "SELECT id, line FROM documents ORDER BY line")
    assert stored_documents == [
        ("dup-0", first_copy_line),
        (f"all_bad.jsonl:{null_id_line}", null_id_line),
    ]

    rejected = dict(query(warehouse, "SELECT line, reason FROM rejected_documents"))
    expected_by_line = {
        number: reason for number, (_, reason) in enumerate(BAD_LINES, start=1) if reason
    }
    expected_by_line[len(lines)] = "invalid_json"
    assert rejected == expected_by_line

    bom_detail = query(
        warehouse, "SELECT detail FROM rejected_documents WHERE line = ?", [len(lines)]
    )[0][0]
    assert "Unexpected UTF-8 BOM" in bom_detail


# -- shards whose whole stream is unusual: truncated, empty, line endings, BOM, huge ----------


@dataclass(frozen=True)
class ShardCase:
    """A shard file written by ``write`` and the outcome the documents asset must report."""

    name: str
    write: Callable[[Path], None]
    documents: int
    rejects: dict[str, int] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return self.documents + sum(self.rejects.values())


def write_truncated_gzip(path: Path) -> None:
    # The first gzip member contains 50 whole records. The second contains one long record
    # and is cut in half, so exactly one record is unreadable and nothing follows it.
    head = gzip.compress(jsonl_lines(good_records("gz", 50)))
    tail = gzip.compress(jsonl_lines([{"id": "cut", "text": random_letters(40_000)}]))
    path.write_bytes(head + tail[: len(tail) // 2])


def write_truncated_zstd(path: Path) -> None:
    # Two zstd frames, the second cut in half; the same layout as the gzip case.
    head = zstandard.ZstdCompressor().compress(jsonl_lines(good_records("zst", 50)))
    tail = zstandard.ZstdCompressor().compress(
        jsonl_lines([{"id": "cut", "text": random_letters(40_000)}])
    )
    path.write_bytes(head + tail[: len(tail) // 2])


def write_mixed_line_endings(path: Path) -> None:
    lines = [json.dumps(record).encode() for record in good_records("eol", 9)]
    endings = [b"\n", b"\r\n", b"\r\n", b"\n", b"\r\n", b"\n", b"\n", b"\r\n"]
    # The last record has no line ending at all.
    path.write_bytes(b"".join(line + ending for line, ending in zip(lines, endings)) + lines[-1])


def write_bom_jsonl(path: Path) -> None:
    path.write_bytes(UTF8_BOM + jsonl_lines(good_records("bom", 3)))


def write_bom_gzip(path: Path) -> None:
    path.write_bytes(gzip.compress(UTF8_BOM + jsonl_lines(good_records("bom", 3))))


def write_bom_zstd(path: Path) -> None:
    path.write_bytes(zstandard.ZstdCompressor().compress(UTF8_BOM + jsonl_lines(good_records("bom", 3))))


def write_empty_parquet(path: Path) -> None:
    pq.write_table(pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())}), path)


def write_huge_records(path: Path) -> None:
    # 9 MiB is over the default limit of 8 MiB and is rejected; 1 MiB is a large document
    # that must still be kept.
    records = [
        {"id": "small-1", "text": "A short document before the huge one."},
        {"id": "huge", "text": "lorem ipsum " * (9 * 1024 * 1024 // 12)},
        {"id": "large", "text": "dolor sit amet " * (1024 * 1024 // 15)},
        {"id": "small-2", "text": "A short document after the huge one."},
    ]
    path.write_bytes(jsonl_lines(records))


SHARD_CASES = [
    ShardCase("truncated.jsonl.gz", write_truncated_gzip, 50, {"unreadable_stream": 1}),
    ShardCase("truncated.jsonl.zst", write_truncated_zstd, 50, {"unreadable_stream": 1}),
    ShardCase("empty.jsonl", lambda path: path.write_bytes(b""), 0),
    ShardCase("empty.jsonl.gz", lambda path: path.write_bytes(gzip.compress(b"")), 0),
    ShardCase("empty.jsonl.zst", lambda path: path.write_bytes(zstandard.ZstdCompressor().compress(b"")), 0),
    ShardCase("empty.parquet", write_empty_parquet, 0),
    ShardCase("mixed_endings.jsonl", write_mixed_line_endings, 9),
    ShardCase("bom.jsonl", write_bom_jsonl, 3),
    ShardCase("bom.jsonl.gz", write_bom_gzip, 3),
    ShardCase("bom.jsonl.zst", write_bom_zstd, 3),
    ShardCase("huge.jsonl", write_huge_records, 3, {"record_too_large": 1}),
]


@pytest.mark.parametrize("case", SHARD_CASES, ids=[case.name for case in SHARD_CASES])
def test_shard_outcome_is_exact(instance: dg.DagsterInstance, tmp_path: Path, case: ShardCase) -> None:
    corpus_root = tmp_path / "corpus"
    corpus_root.mkdir()
    case.write(corpus_root / case.name)
    resources = corpus_resources(corpus_root, tmp_path / "store")

    result = materialise_documents(instance, resources, case.name)

    check = check_of(result)
    metadata = materialisation_metadata(result)
    assert result.success
    assert check.passed
    assert metadata["records"].value == case.records
    assert metadata["documents"].value == case.documents
    assert metadata["rejects_by_reason"].value == case.rejects

    warehouse: WarehouseResource = resources["warehouse"]
    in_views = query(
        warehouse,
        "SELECT (SELECT count(*) FROM documents WHERE shard = ?), "
        "(SELECT count(*) FROM rejected_documents WHERE shard = ?)",
        [case.name, case.name],
    )[0]
    assert in_views == (case.documents, sum(case.rejects.values()))


@pytest.mark.parametrize("name", ["truncated.jsonl.gz", "truncated.jsonl.zst"])
def test_truncation_reject_names_line(instance: dg.DagsterInstance, tmp_path: Path, name: str) -> None:
    corpus_root = tmp_path / "corpus"
    corpus_root.mkdir()
    writer = write_truncated_gzip if name.endswith(".gz") else write_truncated_zstd
    writer(corpus_root / name)
    resources = corpus_resources(corpus_root, tmp_path / "store")

    materialise_documents(instance, resources, name)

    rejected = query(resources["warehouse"], "SELECT line, reason, detail FROM rejected_documents")
    assert len(rejected) == 1
    line, reason, detail = rejected[0]
    assert (line, reason) == (51, "unreadable_stream")
    assert "EOFError" in detail
    assert "re-create or re-download it" in detail


def test_mixed_line_endings_keep_text(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    corpus_root = tmp_path / "corpus"
    corpus_root.mkdir()
    write_mixed_line_endings(corpus_root / "eol.jsonl")
    resources = corpus_resources(corpus_root, tmp_path / "store")

    materialise_documents(instance, resources, "eol.jsonl")

    stored = query(resources["warehouse"], "SELECT id, text FROM documents ORDER BY line")
    assert stored == [(record["id"], record["text"]) for record in good_records("eol", 9)]


def test_bom_does_not_reach_first_id(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    corpus_root = tmp_path / "corpus"
    corpus_root.mkdir()
    write_bom_zstd(corpus_root / "bom.jsonl.zst")
    resources = corpus_resources(corpus_root, tmp_path / "store")

    materialise_documents(instance, resources, "bom.jsonl.zst")

    first = query(resources["warehouse"], "SELECT id, text FROM documents WHERE line = 1")
    assert first == [("bom-0", good_records("bom", 1)[0]["text"])]


def test_huge_record_reject_names_size_and_setting(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    corpus_root = tmp_path / "corpus"
    corpus_root.mkdir()
    write_huge_records(corpus_root / "huge.jsonl")
    huge_line_bytes = len(jsonl_lines([{"id": "huge", "text": "lorem ipsum " * (9 * 1024 * 1024 // 12)}]))
    resources = corpus_resources(corpus_root, tmp_path / "store")

    materialise_documents(instance, resources, "huge.jsonl")

    rejected = query(resources["warehouse"], "SELECT line, reason, detail, excerpt FROM rejected_documents")
    assert len(rejected) == 1
    line, reason, detail, excerpt = rejected[0]
    assert (line, reason) == (2, "record_too_large")
    assert f"record of {huge_line_bytes} bytes" in detail
    assert f"limit of {DEFAULT_MAX_RECORD_BYTES} bytes" in detail
    assert "GEM_MAX_RECORD_BYTES" in detail
    assert excerpt.startswith('{"id": "huge"')
    assert len(excerpt) <= 200


# -- the same id in two shards ----------------------------------------------------------------


def write_overlapping_shards(corpus_root: Path) -> None:
    corpus_root.mkdir()
    write_shard(
        corpus_root / "a.jsonl",
        [{"id": "a-only", "text": "Only shard a has this."}, {"id": "shared", "text": "The copy in a."}],
    )
    write_shard(
        corpus_root / "b.jsonl",
        [{"id": "shared", "text": "The copy in b."}, {"id": "b-only", "text": "Only shard b has this."}],
    )


@pytest.mark.parametrize("order", [["a.jsonl", "b.jsonl"], ["b.jsonl", "a.jsonl"]])
def test_id_across_shards_kept_once(instance: dg.DagsterInstance, tmp_path: Path, order: list[str]) -> None:
    write_overlapping_shards(tmp_path / "corpus")
    resources = corpus_resources(tmp_path / "corpus", tmp_path / "store")

    results = [materialise_documents(instance, resources, key) for key in order]

    # Each shard on its own is valid, so both partitions succeed and reconcile.
    for result in results:
        assert result.success
        assert check_of(result).passed
    warehouse: WarehouseResource = resources["warehouse"]
    stored_documents = query(warehouse, "SELECT id, shard, text FROM documents ORDER BY id")
    assert stored_documents == [
        ("a-only", "a.jsonl", "Only shard a has this."),
        ("b-only", "b.jsonl", "Only shard b has this."),
        ("shared", "a.jsonl", "The copy in a."),
    ]
    rejected = query(warehouse, "SELECT shard, line, reason, detail, excerpt FROM rejected_documents")
    assert len(rejected) == 1
    shard, line, reason, detail, excerpt = rejected[0]
    assert (shard, line, reason, excerpt) == ("b.jsonl", 1, "duplicate_id", "The copy in b.")
    assert "id 'shared' is also in shard 'a.jsonl' at line 2" in detail
    assert "give the documents distinct ids" in detail


def test_views_reconcile_with_cross_shard_duplicate(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    write_overlapping_shards(tmp_path / "corpus")
    resources = corpus_resources(tmp_path / "corpus", tmp_path / "store")
    for key in ["a.jsonl", "b.jsonl"]:
        materialise_documents(instance, resources, key)

    per_shard = dict(
        query(
            resources["warehouse"],
            """
            SELECT shard, sum(n) FROM (
                SELECT shard, count(*) AS n FROM documents GROUP BY shard
                UNION ALL
                SELECT shard, count(*) AS n FROM rejected_documents GROUP BY shard
            ) GROUP BY shard
            """,
        )
    )

    assert per_shard == {"a.jsonl": 2, "b.jsonl": 2}


def test_seed_sample_has_each_id_once(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    write_overlapping_shards(tmp_path / "corpus")
    resources = corpus_resources(tmp_path / "corpus", tmp_path / "store")
    for key in ["a.jsonl", "b.jsonl"]:
        materialise_documents(instance, resources, key)

    result = dg.materialize(
        [seed_sample],
        instance=instance,
        resources=resources,
        run_config={"ops": {"seed_sample": {"config": {"documents": 10}}}},
    )

    assert result.success
    rows, distinct = query(
        resources["warehouse"], "SELECT count(*), count(DISTINCT id) FROM seed_documents"
    )[0]
    assert rows == 3
    assert distinct == 3


# -- files that cannot be read at all ---------------------------------------------------------


@dataclass(frozen=True)
class FileErrorCase:
    """A shard file that fails its partition, and the error the run must raise."""

    name: str
    content: Callable[[Path], None]
    error: type[Exception]
    message: str


def write_parquet(table: pa.Table) -> Callable[[Path], None]:
    return lambda path: pq.write_table(table, path)


FILE_ERROR_CASES = [
    FileErrorCase(
        "no_text_column.parquet",
        write_parquet(pa.table({"id": ["1"], "body": ["text under another name"]})),
        ShardSchemaError,
        r"no_text_column\.parquet has no text column 'text' \(columns: id, body\); set GEM_TEXT_FIELD",
    ),
    FileErrorCase(
        "numeric_text.parquet",
        write_parquet(pa.table({"id": ["1"], "text": [3]})),
        ShardSchemaError,
        r"numeric_text\.parquet: text column 'text' has type int64, expected string; convert",
    ),
    FileErrorCase(
        "zero_bytes.parquet",
        lambda path: path.write_bytes(b""),
        ShardSchemaError,
        r"zero_bytes\.parquet is not a readable Parquet file .*re-create it",
    ),
    FileErrorCase(
        "notes.txt",
        lambda path: path.write_text('{"id": "1", "text": "right content, wrong extension"}\n'),
        UnsupportedShardError,
        r"notes\.txt: the extension must be one of \.jsonl, \.jsonl\.gz, \.jsonl\.zst, \.parquet; "
        r"convert the file or move it out of the corpus root",
    ),
]


@pytest.mark.parametrize("case", FILE_ERROR_CASES, ids=[case.name for case in FILE_ERROR_CASES])
def test_unreadable_file_fails_partition_only(
    instance: dg.DagsterInstance, tmp_path: Path, case: FileErrorCase
) -> None:
    corpus_root = tmp_path / "corpus"
    corpus_root.mkdir()
    write_shard(corpus_root / "good.jsonl", good_records("good", 7))
    case.content(corpus_root / case.name)
    resources = corpus_resources(corpus_root, tmp_path / "store")
    assert materialise_documents(instance, resources, "good.jsonl").success

    with pytest.raises(case.error, match=case.message):
        materialise_documents(instance, resources, case.name)

    warehouse: WarehouseResource = resources["warehouse"]
    for target in [warehouse.layout.documents_file(case.name), warehouse.layout.rejects_file(case.name)]:
        leftovers = list(target.parent.iterdir()) if target.parent.exists() else []
        assert leftovers == [], f"{case.name}: the failed partition left {leftovers}"
    counts = query(warehouse, "SELECT shard, count(*) FROM documents GROUP BY shard")
    assert counts == [("good.jsonl", 7)]
