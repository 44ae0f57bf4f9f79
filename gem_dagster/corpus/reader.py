"""Stream the records of one shard as validated documents and rejects.

Every input record (a JSONL line or a Parquet row) ends either as a document or as a reject
with a reason, so ``documents + rejects == records`` holds for every shard. Records are read
in batches of bounded size. Only the set of ids seen so far grows with the shard, because
duplicate ids must be found across the whole shard.
"""

from __future__ import annotations

import gzip
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from gem_dagster.corpus.location import is_local
from gem_dagster.corpus.shards import shard_format

UTF8_BOM = b"\xef\xbb\xbf"
EXCERPT_CHARS = 200


class RejectReason(StrEnum):
    """Reason an input record did not become a document."""

    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    BLANK_LINE = "blank_line"
    MISSING_TEXT = "missing_text"
    NON_STRING_TEXT = "non_string_text"
    EMPTY_TEXT = "empty_text"
    INVALID_ID = "invalid_id"
    DUPLICATE_ID = "duplicate_id"
    RECORD_TOO_LARGE = "record_too_large"
    UNREADABLE_STREAM = "unreadable_stream"


class ShardSchemaError(ValueError):
    """A shard whose structure cannot be read at all (wrong Parquet schema, not Parquet)."""


@dataclass(frozen=True)
class ReaderOptions:
    """Field names to read and size limits for batches and records."""

    text_field: str = "text"
    id_field: str = "id"
    metadata_fields: tuple[str, ...] = ("source", "label")
    batch_rows: int = 2048
    max_record_bytes: int = 8 * 1024 * 1024


@dataclass(frozen=True)
class Reject:
    """One input record that did not become a document."""

    line: int
    reason: RejectReason
    detail: str
    excerpt: str


@dataclass
class ShardBatch:
    """Documents (as columns) and rejects from a bounded run of consecutive records."""

    ids: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    metadata: dict[str, list[str | None]] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids) + len(self.rejects)


@dataclass
class ReadSummary:
    """Counts for a whole shard, filled in while it is streamed."""

    records: int = 0
    documents: int = 0
    rejects_by_reason: Counter[str] = field(default_factory=Counter)

    @property
    def rejects(self) -> int:
        return sum(self.rejects_by_reason.values())


class ShardReader:
    """Stream one shard file in batches of documents and rejects.

    Parameters
    ----------
    path : Path
        The shard file; its extension selects the format.
    shard : str
        The shard's partition key, used to derive ids for records that carry none.
    options : ReaderOptions
        Field names and size limits.
    """

    def __init__(self, path: Path, shard: str, options: ReaderOptions) -> None:
        self.path = path
        self.shard = shard
        self.options = options
        self.format = shard_format(path)
        self.summary = ReadSummary()
        self._seen_ids: set[str] = set()

    def iter_batches(self) -> Iterator[ShardBatch]:
        """Yield batches until the shard is exhausted; `summary` is complete afterwards."""
        if not self.path.is_file():
            raise FileNotFoundError(
                f"shard file {self.path} (shard {self.shard!r}) was not found: it was moved or "
                "deleted after it was registered; restore it or delete the partition"
            )
        if self.format == "parquet":
            yield from self._iter_parquet()
        else:
            yield from self._iter_jsonl()

    # -- JSONL ------------------------------------------------------------------------------

    def _open_binary(self) -> BinaryIO:
        if not is_local(self.path):
            return self._open_remote()
        if self.format == "jsonl.gz":
            return gzip.open(self.path, "rb")
        if self.format == "jsonl.zst":
            return io.BufferedReader(_ZstdFrames(open(self.path, "rb")))
        return open(self.path, "rb")

    def _open_remote(self) -> BinaryIO:
        # fsspec decompresses gzip itself and closes the remote file with the stream.
        if self.format == "jsonl.gz":
            return fsspec.open(str(self.path), "rb", compression="gzip", **self.path.storage_options).open()
        raw = self.path.open("rb")
        if self.format == "jsonl.zst":
            return io.BufferedReader(_ZstdFrames(raw))
        return raw

    def _iter_jsonl(self) -> Iterator[ShardBatch]:
        batch = self._new_batch()
        line_number = 0
        with self._open_binary() as stream:
            while True:
                try:
                    raw = self._read_line(stream)
                except (EOFError, OSError, zstandard.ZstdError) as error:
                    # A truncated or corrupt compressed stream ends the shard here. What was
                    # read before stays valid; the rest cannot be counted, so one reject
                    # records where and why reading stopped.
                    line_number += 1
                    self._reject(
                        batch,
                        line_number,
                        RejectReason.UNREADABLE_STREAM,
                        f"{type(error).__name__}: {error}; the file is truncated or corrupt "
                        "after this point, so re-create or re-download it",
                        "",
                    )
                    break
                if raw is None:
                    break

                line_number += 1
                if line_number == 1 and isinstance(raw, bytes) and raw.startswith(UTF8_BOM):
                    raw = raw[len(UTF8_BOM) :]
                self._parse_line(batch, line_number, raw)

                if len(batch) >= self.options.batch_rows:
                    yield batch
                    batch = self._new_batch()
        if len(batch):
            yield batch

    def _read_line(self, stream: BinaryIO) -> bytes | None | _Oversized:
        """Read one line without ever holding more than the record size limit in memory."""
        limit = self.options.max_record_bytes
        line = stream.readline(limit + 1)
        if not line:
            return None
        if len(line) > limit and not line.endswith(b"\n"):
            size = len(line)
            while True:
                rest = stream.readline(1024 * 1024)
                size += len(rest)
                if not rest or rest.endswith(b"\n"):
                    break
            return _Oversized(size=size, head=line[:EXCERPT_CHARS])
        return line

    def _parse_line(self, batch: ShardBatch, line_number: int, raw: bytes | _Oversized) -> None:
        if isinstance(raw, _Oversized):
            self._reject(
                batch,
                line_number,
                RejectReason.RECORD_TOO_LARGE,
                f"record of {raw.size} bytes exceeds the limit of {self.options.max_record_bytes} "
                "bytes; split the document or raise GEM_MAX_RECORD_BYTES",
                raw.head.decode("utf-8", errors="replace"),
            )
            return

        # Both "\n" and "\r\n" endings occur in the wild, sometimes in one file.
        raw = raw.rstrip(b"\n").rstrip(b"\r")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            self._reject(
                batch,
                line_number,
                RejectReason.INVALID_UTF8,
                f"invalid UTF-8 at byte {error.start}; re-encode the file as UTF-8",
                raw[:EXCERPT_CHARS].decode("utf-8", errors="replace"),
            )
            return
        if not line.strip():
            self._reject(batch, line_number, RejectReason.BLANK_LINE, "blank line", "")
            return

        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            self._reject(
                batch,
                line_number,
                RejectReason.INVALID_JSON,
                f"invalid JSON: {error.msg} at column {error.colno}",
                line[:EXCERPT_CHARS],
            )
            return
        if not isinstance(record, dict):
            self._reject(
                batch,
                line_number,
                RejectReason.NOT_AN_OBJECT,
                f"expected a JSON object, found {type(record).__name__}",
                line[:EXCERPT_CHARS],
            )
            return
        self._accept_record(batch, line_number, record, line[:EXCERPT_CHARS])

    # -- Parquet ----------------------------------------------------------------------------

    def _iter_parquet(self) -> Iterator[ShardBatch]:
        try:
            parquet = pq.ParquetFile(self.path if is_local(self.path) else self.path.open("rb"))
        except (pa.ArrowInvalid, OSError) as error:
            raise ShardSchemaError(
                f"shard {self.path} is not a readable Parquet file ({error}); re-create it or "
                "give it the extension of its real format"
            ) from error

        columns = self._parquet_columns(parquet.schema_arrow)
        row_number = 0
        for record_batch in parquet.iter_batches(batch_size=self.options.batch_rows, columns=columns):
            batch = self._new_batch()
            for record in record_batch.to_pylist():
                row_number += 1
                self._accept_record(batch, row_number, record, _excerpt_of(record))
            yield batch

    def _parquet_columns(self, schema: pa.Schema) -> list[str]:
        """Check the Parquet schema once and return the columns to read."""
        text_field = self.options.text_field
        if text_field not in schema.names:
            raise ShardSchemaError(
                f"Parquet shard {self.path} has no text column {text_field!r} (columns: "
                f"{', '.join(schema.names)}); set GEM_TEXT_FIELD to the column that holds the text"
            )
        text_type = schema.field(text_field).type
        if not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type)):
            raise ShardSchemaError(
                f"Parquet shard {self.path}: text column {text_field!r} has type {text_type}, "
                "expected string; convert the column to UTF-8 strings"
            )
        wanted = [self.options.id_field, *self.options.metadata_fields]
        return [text_field, *(name for name in wanted if name in schema.names)]

    # -- shared validation ------------------------------------------------------------------

    def _new_batch(self) -> ShardBatch:
        return ShardBatch(metadata={name: [] for name in self.options.metadata_fields})

    def _accept_record(
        self, batch: ShardBatch, line_number: int, record: dict[str, Any], excerpt: str
    ) -> None:
        text = record.get(self.options.text_field)
        if text is None:
            self._reject(
                batch,
                line_number,
                RejectReason.MISSING_TEXT,
                f"field {self.options.text_field!r} is missing or null",
                excerpt,
            )
            return
        if not isinstance(text, str):
            self._reject(
                batch,
                line_number,
                RejectReason.NON_STRING_TEXT,
                f"field {self.options.text_field!r} is a {type(text).__name__}, expected a string",
                excerpt,
            )
            return
        if not text.strip():
            self._reject(batch, line_number, RejectReason.EMPTY_TEXT, "text is empty", excerpt)
            return

        document_id = self._document_id(record.get(self.options.id_field), line_number)
        if document_id is None:
            self._reject(
                batch,
                line_number,
                RejectReason.INVALID_ID,
                f"field {self.options.id_field!r} must be a string or an integer",
                excerpt,
            )
            return
        if document_id in self._seen_ids:
            self._reject(
                batch,
                line_number,
                RejectReason.DUPLICATE_ID,
                f"id {document_id!r} already appeared earlier in this shard; the first is kept",
                excerpt,
            )
            return

        self._seen_ids.add(document_id)
        batch.ids.append(document_id)
        batch.lines.append(line_number)
        batch.texts.append(text)
        for name in self.options.metadata_fields:
            value = record.get(name)
            batch.metadata[name].append(None if value is None else str(value))
        self.summary.records += 1
        self.summary.documents += 1

    def _document_id(self, value: Any, line_number: int) -> str | None:
        """Return the record's id as a string, a derived id when it has none, None if invalid."""
        if value is None or value == "":
            # Shard key and line number identify the record uniquely and stay the same on
            # every re-read of an unchanged shard.
            return f"{self.shard}:{line_number}"
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            return None
        return str(value)

    def _reject(
        self, batch: ShardBatch, line_number: int, reason: RejectReason, detail: str, excerpt: str
    ) -> None:
        batch.rejects.append(Reject(line_number, reason, detail, excerpt))
        self.summary.records += 1
        self.summary.rejects_by_reason[reason.value] += 1


class _ZstdFrames(io.RawIOBase):
    """Decompress consecutive zstd frames, raising EOFError when the input ends mid-frame.

    zstandard's stream_reader returns end-of-file quietly on a truncated frame, which would
    lose the rest of a shard without a trace.
    """

    CHUNK = 1 << 20

    def __init__(self, compressed: BinaryIO) -> None:
        self._compressed = compressed
        self._decompressor = zstandard.ZstdDecompressor().decompressobj()
        self._pending = b""
        self._in_frame = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            chunk = self._compressed.read(self.CHUNK)
            if not chunk:
                if self._in_frame:
                    raise EOFError("zstd stream ended in the middle of a frame")
                return 0
            self._pending = self._feed(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _feed(self, chunk: bytes) -> bytes:
        output = []
        while chunk:
            self._in_frame = True
            output.append(self._decompressor.decompress(chunk))
            if not self._decompressor.eof:
                break
            # A frame ended; the bytes after it start the next frame.
            chunk = self._decompressor.unused_data
            self._decompressor = zstandard.ZstdDecompressor().decompressobj()
            self._in_frame = False
        return b"".join(output)

    def close(self) -> None:
        self._compressed.close()
        super().close()


@dataclass(frozen=True)
class _Oversized:
    """A line longer than the record limit; only its size and first bytes are kept."""

    size: int
    head: bytes


def _excerpt_of(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, default=str)[:EXCERPT_CHARS]
