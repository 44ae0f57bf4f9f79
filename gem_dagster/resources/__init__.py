"""Dagster resources: corpus, warehouse, compute device, embedder and cluster namer."""

from gem_dagster.resources.corpus import CorpusResource
from gem_dagster.resources.compute import ComputeResource, DeviceUnavailableError, resolve_device
from gem_dagster.resources.embedder import EmbedderResource
from gem_dagster.resources.namer import NamerResource
from gem_dagster.resources.warehouse import WarehouseResource

__all__ = [
    "ComputeResource",
    "CorpusResource",
    "DeviceUnavailableError",
    "EmbedderResource",
    "NamerResource",
    "WarehouseResource",
    "resolve_device",
]
