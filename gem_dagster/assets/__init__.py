"""Dagster assets, one module per stage of the pipeline."""

from gem_dagster.assets.corpus import documents, seed_sample
from gem_dagster.assets.embeddings import embeddings
from gem_dagster.assets.mixing import domain_stats, mixture_weights, proxy_token_streams, training_mix
from gem_dagster.assets.student import cluster_assignments, student_model
from gem_dagster.assets.taxonomy import gis_taxonomy
from gem_dagster.assets.teacher import teacher_clustering

__all__ = [
    "cluster_assignments",
    "documents",
    "domain_stats",
    "embeddings",
    "gis_taxonomy",
    "mixture_weights",
    "proxy_token_streams",
    "seed_sample",
    "student_model",
    "teacher_clustering",
    "training_mix",
]
