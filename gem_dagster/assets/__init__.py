"""Dagster assets, one module per stage of the pipeline."""

from gem_dagster.assets.corpus import documents, seed_sample
from gem_dagster.assets.embeddings import embeddings
from gem_dagster.assets.teacher import teacher_clustering

__all__ = ["documents", "embeddings", "seed_sample", "teacher_clustering"]
