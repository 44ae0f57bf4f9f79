"""Read corpus shards, validate records, and sample the teacher's seed set (no Dagster)."""

from gem_dagster.corpus.ingest import IngestReport, ingest_shard
from gem_dagster.corpus.reader import (
    ReaderOptions,
    Reject,
    RejectReason,
    ShardReader,
    ShardSchemaError,
)
from gem_dagster.corpus.shards import (
    SHARD_SUFFIXES,
    InvalidShardKeyError,
    UnsupportedShardError,
    list_shard_keys,
    shard_path,
    unsupported_files,
)

__all__ = [
    "SHARD_SUFFIXES",
    "IngestReport",
    "InvalidShardKeyError",
    "ReaderOptions",
    "Reject",
    "RejectReason",
    "ShardReader",
    "ShardSchemaError",
    "UnsupportedShardError",
    "ingest_shard",
    "list_shard_keys",
    "shard_path",
    "unsupported_files",
]
