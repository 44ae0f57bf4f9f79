"""Jobs: ingest shards, build the corpus model, label every shard, then weigh the domains."""

import dagster as dg

from gem_dagster.assets import (
    cluster_assignments,
    documents,
    domain_stats,
    embeddings,
    gis_taxonomy,
    mixture_weights,
    seed_sample,
    student_model,
    teacher_clustering,
    training_mix,
)
from gem_dagster.partitions import shard_partitions, strategy_partitions

ingest_shards_job = dg.define_asset_job(
    "ingest_shards",
    selection=dg.AssetSelection.assets(documents),
    partitions_def=shard_partitions,
    description="Validate one shard into documents and rejected records.",
)

corpus_model_job = dg.define_asset_job(
    "build_corpus_model",
    selection=dg.AssetSelection.assets(
        seed_sample, embeddings, teacher_clustering, gis_taxonomy, student_model
    ),
    description="Sample the seed set across all ingested shards, embed it, fit the GEM "
    "teacher, build the taxonomy and distil the fastText student.",
)

assign_shards_job = dg.define_asset_job(
    "assign_shards",
    selection=dg.AssetSelection.assets(cluster_assignments),
    partitions_def=shard_partitions,
    description="Label every document of one shard with the current student.",
)

domain_stats_job = dg.define_asset_job(
    "count_domains",
    selection=dg.AssetSelection.assets(domain_stats),
    description="Count documents and tokens per domain over every labelled shard.",
)

mixture_weights_job = dg.define_asset_job(
    "weigh_domains",
    selection=dg.AssetSelection.assets(mixture_weights),
    partitions_def=strategy_partitions,
    description="Compute the mixture weights of one strategy.",
)

training_mix_job = dg.define_asset_job(
    "export_training_mix",
    selection=dg.AssetSelection.assets(training_mix),
    partitions_def=strategy_partitions,
    description="Export the token-budgeted, shuffled training mix of one strategy.",
)
