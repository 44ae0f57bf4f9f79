"""Jobs: ingest shards per partition, then build the corpus model from all of them."""

import dagster as dg

from gem_dagster.assets import documents, embeddings, seed_sample, teacher_clustering
from gem_dagster.partitions import shard_partitions

ingest_shards_job = dg.define_asset_job(
    "ingest_shards",
    selection=dg.AssetSelection.assets(documents),
    partitions_def=shard_partitions,
    description="Validate one shard into documents and rejected records.",
)

corpus_model_job = dg.define_asset_job(
    "build_corpus_model",
    selection=dg.AssetSelection.assets(seed_sample, embeddings, teacher_clustering),
    description="Sample the seed set across all ingested shards, embed it and fit the GEM teacher.",
)
