"""Write Parquet files atomically: readers see the old file or the complete new one.

A writer streams batches into a hidden temporary file next to the target and renames it into
place only when every batch is written. A crash leaves at most a hidden ``.tmp`` file, which
no glob of the catalog matches, and the previous version stays readable until the rename.

Each writer holds an exclusive ``flock`` on its temporary file until it finishes. The next
writer that publishes the same target deletes the temporary files of that target whose lock
it can take, because only a writer that died leaves such a file unlocked.
"""

from __future__ import annotations

import fcntl
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
        # The lock marks the file as in use until this writer finishes or its process dies.
        self._lock = open(self._temporary, "rb")
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)

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
        try:
            if exc_type is not None:
                self._temporary.unlink(missing_ok=True)
                return
            _fsync(self._temporary)
            os.replace(self._temporary, self.target)
            _fsync_folder(self.target.parent)
        finally:
            self._lock.close()
        remove_abandoned_temporaries(self.target)


def remove_abandoned_temporaries(target: Path) -> list[Path]:
    """Delete the temporary files of ``target`` that no live writer holds, and return them.

    A file whose lock cannot be taken belongs to a writer that is still running, so it stays.
    """
    removed = []
    for temporary in sorted(target.parent.glob(f".{target.name}.*.tmp")):
        try:
            handle = open(temporary, "rb")
        except FileNotFoundError:
            continue  # Its writer published or discarded it meanwhile.
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            temporary.unlink(missing_ok=True)
            removed.append(temporary)
    return removed


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
