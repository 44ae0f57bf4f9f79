"""Shared fixtures: small corpora written to temporary folders, good and bad."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

GOOD_TEXTS = [
    "The kernel scheduler balances runnable tasks across CPU cores.",
    "A noun phrase names a person, place, thing or idea.",
    "Python lists grow by over-allocating their backing array.",
    "The president addressed Congress on the state of the economy.",
    "Fortune favours the bold, said the Latin proverb.",
    "A package description explains what the software does.",
]


def jsonl_lines(records: list[dict]) -> bytes:
    return "".join(json.dumps(record) + "\n" for record in records).encode("utf-8")


def good_records(prefix: str, count: int) -> list[dict]:
    return [
        {
            "id": f"{prefix}-{index}",
            "text": f"{GOOD_TEXTS[index % len(GOOD_TEXTS)]} Document {prefix} number {index}.",
            "source": f"source-{index % 3}",
            "label": f"label-{index % 2}",
        }
        for index in range(count)
    ]


# Each bad line and the reason the reader must give it; comments name the case.
BAD_LINES: list[tuple[bytes, str]] = [
    (b'{"id": "bad-json", "text": "unterminated', "invalid_json"),
    (b'["a", "list", "not", "an", "object"]', "not_an_object"),
    (b"   ", "blank_line"),
    (b'{"id": "no-text"}', "missing_text"),
    (b'{"id": "null-text", "text": null}', "missing_text"),
    (b'{"id": "number-text", "text": 42}', "non_string_text"),
    (b'{"id": "empty-text", "text": "  \\n "}', "empty_text"),
    (b'{"id": "latin1", "text": "caf\xe9"}', "invalid_utf8"),
    (b'{"id": ["list", "id"], "text": "an id must be a scalar"}', "invalid_id"),
    (b'{"id": "dup-0", "text": "first copy of a duplicated id"}', None),
    (b'{"id": "dup-0", "text": "second copy of a duplicated id"}', "duplicate_id"),
    (b'{"id": null, "text": "a record with a null id gets a derived id"}', None),
]


def write_bad_shard(path: Path, good_count: int = 20) -> dict[str, int]:
    """Write a JSONL shard mixing good records with every bad kind; return expected counts."""
    lines = [line.rstrip(b"\n") for line in jsonl_lines(good_records("good", good_count)).splitlines()]
    lines += [line for line, _ in BAD_LINES]
    # Windows line endings on some records must not matter.
    body = b"\r\n".join(lines[:5]) + b"\r\n" + b"\n".join(lines[5:]) + b"\n"
    path.write_bytes(b"\xef\xbb\xbf" + body)

    expected: dict[str, int] = {}
    for _, reason in BAD_LINES:
        if reason is not None:
            expected[reason] = expected.get(reason, 0) + 1
    return expected


def write_shard(path: Path, records: list[dict]) -> None:
    """Write records in the format that the file extension names."""
    body = jsonl_lines(records)
    name = path.name
    if name.endswith(".jsonl.gz"):
        path.write_bytes(gzip.compress(body))
    elif name.endswith(".jsonl.zst"):
        path.write_bytes(zstandard.ZstdCompressor().compress(body))
    elif name.endswith(".parquet"):
        pq.write_table(pa.Table.from_pylist(records), path)
    else:
        path.write_bytes(body)


@pytest.fixture
def corpus_root(tmp_path: Path) -> Path:
    """A corpus of four shards, one per format, plus one shard seeded with bad records."""
    return write_corpus(tmp_path / "corpus")


def write_corpus(root: Path) -> Path:
    (root / "nested").mkdir(parents=True)
    write_shard(root / "a.jsonl", good_records("a", 30))
    write_shard(root / "b.jsonl.gz", good_records("b", 25))
    write_shard(root / "c.jsonl.zst", good_records("c", 20))
    write_shard(root / "nested" / "d.parquet", good_records("d", 15))
    write_bad_shard(root / "bad.jsonl")
    return root
