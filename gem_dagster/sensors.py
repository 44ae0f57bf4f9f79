"""Sensor that registers new shard files under the corpus root as partitions."""

import dagster as dg

from gem_dagster.jobs import ingest_shards_job
from gem_dagster.partitions import shard_partitions
from gem_dagster.resources import CorpusResource


@dg.sensor(
    job=ingest_shards_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Lists the corpus root, adds new shard files as `shards` partitions and "
    "requests their ingestion.",
)
def shard_sensor(context: dg.SensorEvaluationContext, corpus: CorpusResource) -> dg.SensorResult:
    known = set(context.instance.get_dynamic_partitions(shard_partitions.name))
    new_keys = [key for key in corpus.shard_keys() if key not in known]
    if not new_keys:
        return dg.SensorResult(skip_reason=f"no new shard files under {corpus.root_path}")

    context.log.info(f"registering {len(new_keys)} new shard(s): {new_keys[:5]}")
    return dg.SensorResult(
        dynamic_partitions_requests=[shard_partitions.build_add_request(new_keys)],
        run_requests=[dg.RunRequest(partition_key=key, run_key=f"ingest:{key}") for key in new_keys],
    )
