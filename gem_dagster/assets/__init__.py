"""Dagster assets, one module per stage of the pipeline."""

from gem_dagster.assets.corpus import documents, seed_sample
from gem_dagster.assets.embeddings import embeddings

__all__ = ["documents", "embeddings", "seed_sample"]
