"""Warehouse resource: the storage root, its layout and the DuckDB catalog."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from gem_dagster.warehouse import Catalog, StorageLayout


class WarehouseResource(dg.ConfigurableResource):
    """Storage root that contains the DuckDB catalog and every Parquet and model artefact."""

    storage_root: str
    metadata_fields: list[str] = ["source", "label"]

    @property
    def layout(self) -> StorageLayout:
        return StorageLayout(Path(self.storage_root).resolve())

    @property
    def catalog(self) -> Catalog:
        return Catalog(self.layout, tuple(self.metadata_fields))
