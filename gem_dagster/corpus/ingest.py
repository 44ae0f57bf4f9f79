"""Validate one shard and write its documents and rejects as Parquet, batch by batch."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from gem_dagster.corpus.reader import ReaderOptions, ShardBatch, ShardReader
from gem_dagster.warehouse.parquet import AtomicParquetWriter
from gem_dagster.warehouse.schemas import REJECTS_SCHEMA, documents_schema

TokenCountFunction = Callable[[list[str]], list[int]]


@dataclass
class IngestReport:
    """Counts, timing and a preview from ingesting one shard."""

    shard: str
    records: int
    documents: int
    rejects_by_reason: dict[str, int]
    tokens: int
    seconds: float
    preview: list[dict[str, str]] = field(default_factory=list)

    @property
    def rejects(self) -> int:
        return sum(self.rejects_by_reason.values())


def ingest_shard(
    source: Path,
    shard: str,
    documents_target: Path,
    rejects_target: Path,
    options: ReaderOptions,
    count_tokens: TokenCountFunction,
    preview_rows: int = 5,
) -> IngestReport:
    """Stream ``source`` into ``documents_target`` and ``rejects_target``.

    Both files are written to temporary files and renamed into place only after the whole
    shard was read, so a run that fails or is killed while reading leaves the previous
    version of both in place.
    """
    started = time.perf_counter()
    reader = ShardReader(source, shard, options)
    schema = documents_schema(options.metadata_fields)
    tokens = 0
    preview: list[dict[str, str]] = []

    with (
        AtomicParquetWriter(documents_target, schema) as documents_writer,
        AtomicParquetWriter(rejects_target, REJECTS_SCHEMA) as rejects_writer,
    ):
        for batch in reader.iter_batches():
            if batch.ids:
                table = _documents_table(batch, shard, schema, count_tokens)
                tokens += pc.sum(table["n_tokens"]).as_py() or 0
                documents_writer.write(table)
                if len(preview) < preview_rows:
                    preview.extend(_preview_rows(batch, preview_rows - len(preview)))
            if batch.rejects:
                rejects_writer.write(_rejects_table(batch, shard))

    summary = reader.summary
    return IngestReport(
        shard=shard,
        records=summary.records,
        documents=summary.documents,
        rejects_by_reason=dict(summary.rejects_by_reason),
        tokens=int(tokens),
        seconds=time.perf_counter() - started,
        preview=preview,
    )


def _documents_table(
    batch: ShardBatch, shard: str, schema: pa.Schema, count_tokens: TokenCountFunction
) -> pa.Table:
    columns = {
        "id": batch.ids,
        "shard": [shard] * len(batch.ids),
        "line": batch.lines,
        "text": batch.texts,
        "n_chars": [len(text) for text in batch.texts],
        "n_tokens": count_tokens(batch.texts),
        "sha1": [hashlib.sha1(text.encode("utf-8")).hexdigest() for text in batch.texts],
    }
    columns.update(batch.metadata)
    return pa.table(columns, schema=schema)


def _rejects_table(batch: ShardBatch, shard: str) -> pa.Table:
    return pa.table(
        {
            "shard": [shard] * len(batch.rejects),
            "line": [reject.line for reject in batch.rejects],
            "reason": [reject.reason.value for reject in batch.rejects],
            "detail": [reject.detail for reject in batch.rejects],
            "excerpt": [reject.excerpt for reject in batch.rejects],
        },
        schema=REJECTS_SCHEMA,
    )


def _preview_rows(batch: ShardBatch, limit: int) -> list[dict[str, str]]:
    rows = []
    for document_id, text in list(zip(batch.ids, batch.texts))[:limit]:
        excerpt = " ".join(text.split())[:120]
        rows.append({"id": document_id, "text": excerpt})
    return rows
