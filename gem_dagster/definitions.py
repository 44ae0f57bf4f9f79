"""The gem_dagster code location: assets, jobs, sensors and resources built from settings."""

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
from gem_dagster.jobs import (
    assign_shards_job,
    corpus_model_job,
    ingest_and_assign_job,
    domain_stats_job,
    ingest_shards_job,
    mixture_weights_job,
    proxy_streams_job,
    training_mix_job,
)
from gem_dagster.mixing.presets import resolve_plan
from gem_dagster.resources import (
    ComputeResource,
    CorpusResource,
    EmbedderResource,
    NamerResource,
    WarehouseResource,
)
from gem_dagster.sensors import corpus_rebuild_schedule, shard_sensor
from gem_dagster.settings import GemSettings, get_settings


def build_resources(settings: GemSettings) -> dict[str, dg.ConfigurableResource]:
    """Build every resource of the code location from validated settings."""
    return {
        "corpus": CorpusResource(
            root=str(settings.corpus_root),
            text_field=settings.text_field,
            id_field=settings.id_field,
            metadata_fields=settings.metadata_fields,
            read_batch_rows=settings.read_batch_rows,
            max_record_bytes=settings.max_record_bytes,
        ),
        "warehouse": WarehouseResource(
            storage_root=str(settings.storage_root), metadata_fields=settings.metadata_fields
        ),
        "embedder": EmbedderResource(
            model=settings.embedder_model,
            batch_size=settings.embedder_batch_size,
            max_seq_length=settings.embedder_max_seq_length,
        ),
        "compute": ComputeResource(
            device=settings.device, memory_budget_mb=settings.memory_budget_mb
        ),
        "namer": NamerResource(
            base_url=settings.namer_base_url,
            model=settings.namer_model,
            api_key_env=settings.namer_api_key_env,
        ),
    }


# An inconsistent proxy preset (width not divisible by heads) fails when the code location
# loads, not an hour into a run.
resolve_plan(get_settings())

defs = dg.Definitions(
    assets=[
        documents,
        seed_sample,
        embeddings,
        teacher_clustering,
        gis_taxonomy,
        student_model,
        cluster_assignments,
        domain_stats,
        proxy_token_streams,
        mixture_weights,
        training_mix,
    ],
    jobs=[
        ingest_shards_job,
        corpus_model_job,
        assign_shards_job,
        ingest_and_assign_job,
        domain_stats_job,
        proxy_streams_job,
        mixture_weights_job,
        training_mix_job,
    ],
    sensors=[shard_sensor],
    schedules=[corpus_rebuild_schedule],
    resources=build_resources(get_settings()),
)
