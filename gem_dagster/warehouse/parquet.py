"""Write Parquet files atomically: readers see the old file or the complete new one.

A writer streams batches into a hidden temporary file next to the target and renames it into
place only when every batch is written. A crash leaves at most a hidden ``.tmp`` file, which
no glob of the catalog matches, and the previous version stays readable until the rename.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.parquet as pq


class AtomicParquetWriter:
    """Stream record batches of one schema into a Parquet file that appears atomically.

    Use it as a context manager; the file is published on a clean exit and discarded when
    the block raises.
    """

    def __init__(self, target: Path, schema: pa.Schema, compression: str = "zstd") -> None:
        self.target = target
        self.schema = schema
        self.rows_written = 0
        target.parent.mkdir(parents=True, exist_ok=True)
        self._temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
        self._writer = pq.ParquetWriter(self._temporary, schema, compression=compression)

    def write(self, table: pa.Table | pa.RecordBatch) -> None:
        """Append rows; their schema must match the writer's."""
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        self._writer.write_table(table.cast(self.schema))
        self.rows_written += table.num_rows

    def __enter__(self) -> AtomicParquetWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._writer.close()
        if exc_type is not None:
            self._temporary.unlink(missing_ok=True)
            return
        _fsync(self._temporary)
        os.replace(self._temporary, self.target)
        _fsync_folder(self.target.parent)


def write_table_atomically(target: Path, table: pa.Table) -> None:
    """Write a whole table to ``target`` through a temporary file and a rename."""
    with AtomicParquetWriter(target, table.schema) as writer:
        writer.write(table)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    # The rename is durable only once the folder entry is on disk.
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
