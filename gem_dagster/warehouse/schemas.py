"""Arrow schemas of the Parquet datasets, shared by writers and the catalog's empty views."""

from __future__ import annotations

import pyarrow as pa

REJECTS_SCHEMA = pa.schema(
    [
        ("shard", pa.string()),
        ("line", pa.int64()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("excerpt", pa.string()),
    ]
)


def documents_schema(metadata_fields: tuple[str, ...] | list[str]) -> pa.Schema:
    """Schema of the documents dataset: fixed columns plus the configured metadata fields."""
    fixed = [
        ("id", pa.string()),
        ("shard", pa.string()),
        ("line", pa.int64()),
        ("text", pa.string()),
        ("n_chars", pa.int64()),
        ("n_tokens", pa.int64()),
        ("sha1", pa.string()),
    ]
    return pa.schema(fixed + [(name, pa.string()) for name in metadata_fields])


_DUCKDB_TYPES = {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.int32(): "INTEGER",
                 pa.float64(): "DOUBLE", pa.float32(): "FLOAT"}


def empty_select(schema: pa.Schema) -> str:
    """Return a DuckDB SELECT with the schema's columns and no rows."""
    columns = ", ".join(
        f"CAST(NULL AS {_DUCKDB_TYPES[field.type]}) AS {_quote(field.name)}" for field in schema
    )
    return f"SELECT {columns} WHERE false"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
