"""Arrow schemas of the Parquet datasets, shared by writers and the catalog's empty views."""

from __future__ import annotations

import pyarrow as pa

ASSIGNMENTS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("shard", pa.string()),
        ("cluster_id", pa.int64()),
        ("probability", pa.float64()),
    ]
)

MIXTURE_SCHEMA = pa.schema(
    [
        ("strategy", pa.string()),
        ("cluster_id", pa.int64()),
        ("name", pa.string()),
        ("weight", pa.float64()),
        ("tokens", pa.int64()),
        ("epochs", pa.float64()),
    ]
)

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
