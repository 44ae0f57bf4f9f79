"""Storage layout, atomic Parquet writes and the DuckDB catalog (no Dagster imports)."""

from gem_dagster.warehouse.catalog import Catalog
from gem_dagster.warehouse.layout import StorageLayout
from gem_dagster.warehouse.parquet import AtomicParquetWriter, write_table_atomically

__all__ = ["AtomicParquetWriter", "Catalog", "StorageLayout", "write_table_atomically"]
