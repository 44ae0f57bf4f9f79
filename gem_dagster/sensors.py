"""Sensors and schedules: new shard files become partitions, and the corpus model is rebuilt
on a cron schedule."""

import dagster as dg

from gem_dagster.jobs import corpus_model_job, ingest_and_assign_job, ingest_shards_job
from gem_dagster.partitions import shard_partitions
from gem_dagster.resources import CorpusResource
from gem_dagster.settings import get_settings

STUDENT_ASSET = dg.AssetKey("student_model")


@dg.sensor(
    jobs=[ingest_shards_job, ingest_and_assign_job],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Lists the corpus root, adds new shard files as `shards` partitions and "
    "requests their ingestion, and their assignment once a student model exists.",
)
def shard_sensor(context: dg.SensorEvaluationContext, corpus: CorpusResource) -> dg.SensorResult:
    def skip_invalid(path, error) -> None:
        context.log.warning(f"skipping {path}: {error}")

    known = set(context.instance.get_dynamic_partitions(shard_partitions.name))
    new_keys = [key for key in corpus.shard_keys(on_invalid=skip_invalid) if key not in known]
    if not new_keys:
        return dg.SensorResult(skip_reason=f"no new shard files under {corpus.root_path}")

    # Without a student there is nothing to label with yet; the shards are labelled by the
    # assignment backfill after the first corpus model is built.
    has_student = context.instance.get_latest_materialization_event(STUDENT_ASSET) is not None
    job = ingest_and_assign_job if has_student else ingest_shards_job
    context.log.info(f"registering {len(new_keys)} new shard(s) for {job.name}: {new_keys[:5]}")
    return dg.SensorResult(
        dynamic_partitions_requests=[shard_partitions.build_add_request(new_keys)],
        run_requests=[
            dg.RunRequest(partition_key=key, job_name=job.name, run_key=f"{job.name}:{key}")
            for key in new_keys
        ],
    )


corpus_rebuild_schedule = dg.ScheduleDefinition(
    name="corpus_rebuild_schedule",
    job=corpus_model_job,
    cron_schedule=get_settings().rebuild_cron,
    execution_timezone=get_settings().rebuild_timezone,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Re-sample, re-embed and re-fit the teacher, taxonomy and student over the "
    "current corpus (cron from GEM_REBUILD_CRON). With automation on, assignments and domain "
    "statistics follow the new student.",
)
