"""Jobs: ingest shards, build the corpus model, label every shard, then weigh the domains."""

import dagster as dg

from gem_dagster.assets import (
    cluster_assignments,
    documents,
    domain_stats,
    embeddings,
    gis_taxonomy,
    mixture_weights,
    proxy_token_streams,
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

ingest_and_assign_job = dg.define_asset_job(
    "ingest_and_assign_shards",
    selection=dg.AssetSelection.assets(documents, cluster_assignments),
    partitions_def=shard_partitions,
    description="Validate one new shard and label it with the current student.",
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

proxy_streams_job = dg.define_asset_job(
    "tokenise_for_proxies",
    selection=dg.AssetSelection.assets(proxy_token_streams),
    description="Tokenise each domain's documents for the proxy models of DoReMi, RegMix and PerfRe.",
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
