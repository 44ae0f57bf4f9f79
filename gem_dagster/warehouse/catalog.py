"""The DuckDB catalog: views over the partitioned Parquet datasets plus small tables.

DuckDB allows one writer process at a time. Partitioned assets run in parallel during
backfills, so they only write Parquet. The catalog exposes their output through views over
Parquet globs, which stay current without any write. Unpartitioned assets replace their
tables inside one transaction.

Document ids must be unique across the corpus. The reader rejects a repeated id inside one
shard, but shards are ingested independently, so an id that appears in several shards is
resolved in the views: ``documents`` keeps the copy from the shard whose key sorts first,
and ``rejected_documents`` lists every other copy with the reason ``duplicate_id``. The
result does not depend on the order in which shards were ingested.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from gem_dagster.corpus.reader import EXCERPT_CHARS, RejectReason
from gem_dagster.warehouse.layout import StorageLayout
from gem_dagster.warehouse.parquet import write_table_atomically
from gem_dagster.warehouse.schemas import (
    ASSIGNMENTS_SCHEMA,
    MIXTURE_SCHEMA,
    REJECTS_SCHEMA,
    documents_schema,
)

# Seconds to wait for another process that has the DuckDB file open for writing.
LOCK_WAIT_SECONDS = 60.0

# The first copy of each id, by shard key and then line, is the one that is kept.
_FIRST_COPY_ORDER = "PARTITION BY id ORDER BY shard, line"

# NOTE: both views rank every id of the corpus, so each query of them hashes all ids. A view
# over the Parquet glob alone computes count(*) from the file footers (docs/reliability.md
# has a measurement of the difference).
_DOCUMENTS_VIEW = f"""
    CREATE OR REPLACE VIEW documents AS
    SELECT * FROM ingested_documents
    QUALIFY row_number() OVER ({_FIRST_COPY_ORDER}) = 1
"""

_REJECTED_DOCUMENTS_VIEW = f"""
    CREATE OR REPLACE VIEW rejected_documents AS
    SELECT shard, line, reason, detail, excerpt FROM ingested_rejects
    UNION ALL
    SELECT
        shard,
        line,
        '{RejectReason.DUPLICATE_ID.value}' AS reason,
        format(
            'id ''{{}}'' is also in shard ''{{}}'' at line {{}}, and that copy is kept because '
            || 'its shard key sorts first; remove one copy or give the documents distinct ids',
            id, kept_shard, kept_line
        ) AS detail,
        left(text, {EXCERPT_CHARS}) AS excerpt
    FROM (
        SELECT
            shard, line, id, text,
            first_value(shard) OVER by_id AS kept_shard,
            first_value(line) OVER by_id AS kept_line,
            row_number() OVER by_id AS copy_number
        FROM ingested_documents
        WINDOW by_id AS ({_FIRST_COPY_ORDER})
    )
    WHERE copy_number > 1
"""


class Catalog:
    """Open the DuckDB catalog file and keep its views and tables up to date."""

    def __init__(self, layout: StorageLayout, metadata_fields: tuple[str, ...] = ("source", "label")):
        self.layout = layout
        self.metadata_fields = tuple(metadata_fields)

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open a short-lived connection, waiting while another process holds the file lock."""
        self.layout.root.mkdir(parents=True, exist_ok=True)
        path = str(self.layout.catalog_path)
        if read_only and not self.layout.catalog_path.exists():
            raise FileNotFoundError(
                f"DuckDB catalog {path} does not exist yet: materialise seed_sample first"
            )

        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                connection = duckdb.connect(path, read_only=read_only)
                break
            except duckdb.IOException as error:
                if "lock" not in str(error).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        try:
            yield connection
        finally:
            connection.close()

    def refresh_views(self, connection: duckdb.DuckDBPyConnection) -> None:
        """(Re)create the views over the partitioned Parquet datasets.

        The views expand their globs at query time, so partitions written later by parallel
        runs appear in them without another write to the DuckDB file. ``ingested_documents``
        and ``ingested_rejects`` hold every row as the shards wrote it; ``documents`` and
        ``rejected_documents`` move the copies of an id repeated across shards from the first
        to the second, so documents plus rejects still equal each shard's input records.
        ``cluster_assignments`` keeps only the assignments of rows in ``documents``.
        """
        self._create_parquet_view(
            connection, "ingested_documents", "documents", documents_schema(self.metadata_fields)
        )
        self._create_parquet_view(connection, "ingested_rejects", "rejects", REJECTS_SCHEMA)
        connection.execute(_DOCUMENTS_VIEW)
        connection.execute(_REJECTED_DOCUMENTS_VIEW)
        self._create_parquet_view(connection, "ingested_assignments", "assignments", ASSIGNMENTS_SCHEMA)
        # A shard's assignments also label its copy of an id that another shard keeps.
        # The view drops those rows, so counts per cluster agree with domain_stats.
        connection.execute(
            """
            CREATE OR REPLACE VIEW cluster_assignments AS
            SELECT * FROM ingested_assignments SEMI JOIN documents USING (shard, id)
            """
        )
        self._create_parquet_view(
            connection, "mixture_weights", "mixture", MIXTURE_SCHEMA, partition="strategy"
        )

    def _create_parquet_view(
        self,
        connection: duckdb.DuckDBPyConnection,
        view: str,
        dataset: str,
        schema: pa.Schema,
        partition: str = "shard",
    ) -> None:
        # DuckDB binds a view when it is created, and a glob that matches no file fails to
        # bind. An empty file under the partition key "" (never a valid key) always
        # matches, and it gives the view its column types before any shard exists.
        placeholder = self.layout.placeholder_file(dataset, partition)
        if not placeholder.exists():
            write_table_atomically(placeholder, schema.empty_table())

        pattern = self.layout.partition_glob(dataset, partition)
        # union_by_name tolerates shards written before a metadata field was configured.
        source = f"SELECT * FROM read_parquet({_literal(pattern)}, union_by_name = true)"
        connection.execute(f"CREATE OR REPLACE VIEW {view} AS {source}")

    def replace_table(
        self, connection: duckdb.DuckDBPyConnection, table: str, parquet_file: Path
    ) -> int:
        """Replace a table with the rows of one Parquet file in a single transaction."""
        connection.execute("BEGIN TRANSACTION")
        try:
            connection.execute(
                f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM read_parquet(?)",
                [str(parquet_file)],
            )
            count = connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            connection.execute("COMMIT")
        except Exception:
            connection.execute("ROLLBACK")
            raise
        return int(count)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
