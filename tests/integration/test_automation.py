"""The shard sensor and the rebuild schedule, evaluated against a real Dagster instance.

The sensor is evaluated directly (no daemon), and the runs it requests are executed in
process with the job definitions the code location ships, so each request is checked to
succeed and land its rows in DuckDB.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import dagster as dg
import pytest
from pydantic import ValidationError

from gem_dagster.assets import cluster_assignments, documents, student_model
from gem_dagster.corpus import list_shard_keys
from gem_dagster.jobs import corpus_model_job, ingest_and_assign_job, ingest_shards_job
from gem_dagster.partitions import shard_partitions
from gem_dagster.sensors import corpus_rebuild_schedule, shard_sensor
from gem_dagster.settings import GemSettings
from tests.conftest import good_records, write_shard


def evaluate_sensor(instance: dg.DagsterInstance, resources: dict) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, resources={"corpus": resources["corpus"]})
    result = shard_sensor(context)
    # The daemon applies partition requests before launching runs; do the same here.
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def document_shards(resources: dict) -> dict[str, int]:
    catalog = resources["warehouse"].catalog
    with catalog.connect() as connection:
        catalog.refresh_views(connection)
        return dict(connection.execute("SELECT shard, count(*) FROM documents GROUP BY shard").fetchall())


def run_request(instance: dg.DagsterInstance, resources: dict, request: dg.RunRequest) -> bool:
    definitions = dg.Definitions(
        assets=[documents, student_model, cluster_assignments],
        jobs=[ingest_shards_job, ingest_and_assign_job],
        resources=resources,
    )
    job = definitions.resolve_job_def(request.job_name)
    return job.execute_in_process(instance=instance, partition_key=request.partition_key).success


def test_sensor_registers_new_shards_and_its_runs_succeed(
    instance: dg.DagsterInstance, resources: dict, corpus_root: Path
) -> None:
    expected = list_shard_keys(corpus_root)

    result = evaluate_sensor(instance, resources)

    assert sorted(instance.get_dynamic_partitions(shard_partitions.name)) == sorted(expected)
    # No student model exists yet, so the sensor requests ingestion only.
    assert {request.job_name for request in result.run_requests} == {"ingest_shards"}
    assert sorted(request.partition_key for request in result.run_requests) == sorted(expected)
    for request in result.run_requests:
        assert run_request(instance, resources, request), request.partition_key

    assert set(document_shards(resources)) == set(expected)


def test_sensor_registers_dropped_shard(
    instance: dg.DagsterInstance, resources: dict, corpus_root: Path
) -> None:
    evaluate_sensor(instance, resources)
    assert evaluate_sensor(instance, resources).skip_reason.skip_message.startswith("no new shard files")

    (corpus_root / "later").mkdir()
    write_shard(corpus_root / "later" / "e.jsonl", good_records("e", 12))
    result = evaluate_sensor(instance, resources)

    assert [request.partition_key for request in result.run_requests] == ["later/e.jsonl"]
    assert run_request(instance, resources, result.run_requests[0])
    assert document_shards(resources)["later/e.jsonl"] == 12


def test_sensor_skips_invalid_shard_name(
    instance: dg.DagsterInstance, resources: dict, corpus_root: Path
) -> None:
    write_shard(corpus_root / "bad,name.jsonl", good_records("x", 3))

    result = evaluate_sensor(instance, resources)

    keys = {request.partition_key for request in result.run_requests}
    assert "bad,name.jsonl" not in keys
    assert keys == set(list_shard_keys(corpus_root, on_invalid=lambda path, error: None))
    assert len(keys) == 5


def test_rebuild_schedule_requests_the_corpus_model_job() -> None:
    context = dg.build_schedule_context(scheduled_execution_time=None)

    request = corpus_rebuild_schedule.evaluate_tick(context).run_requests[0]

    assert corpus_rebuild_schedule.job_name == corpus_model_job.name
    assert request.job_name in (None, corpus_model_job.name)
    assert corpus_rebuild_schedule.cron_schedule == GemSettings().rebuild_cron == "0 3 * * 0"
    assert corpus_rebuild_schedule.default_status == dg.DefaultScheduleStatus.STOPPED


def test_invalid_rebuild_cron_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEM_REBUILD_CRON", "every sunday")

    with pytest.raises(ValidationError, match="rebuild_cron(.|\n)*invalid cron expression 'every sunday'"):
        GemSettings()


def test_gpu_and_duckdb_writer_pools_hold_one_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gem_dagster.assets import domain_stats, embeddings, gis_taxonomy, seed_sample, teacher_clustering
    from gem_dagster.settings import PROJECT_ROOT

    (tmp_path / "dagster.yaml").write_text((PROJECT_ROOT / "config" / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))

    instance = dg.DagsterInstance.get()

    assert {embeddings.op.pool, teacher_clustering.op.pool} == {"gpu"}
    assert {seed_sample.op.pool, gis_taxonomy.op.pool, domain_stats.op.pool} == {"duckdb_writer"}
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 1


def test_sensor_and_ingestion_read_an_fsspec_url(
    instance: dg.DagsterInstance, resources: dict, tmp_path: Path
) -> None:
    # fsspec's in-memory filesystem replaces object storage (no bucket is reachable
    # here); the sensor and the reader use the same UPath calls for s3:// or gs:// roots.
    import fsspec

    from gem_dagster.resources import CorpusResource

    memory = fsspec.filesystem("memory")
    root = f"/gem-test-{tmp_path.name}"
    memory.pipe(f"{root}/a.jsonl", "".join(f'{{"id": "m{i}", "text": "memory text {i}"}}\n' for i in range(7)).encode())
    memory.pipe(f"{root}/nested/b.jsonl.gz", gzip.compress(b'{"id": "g0", "text": "compressed"}\n'))
    remote = {**resources, "corpus": CorpusResource(root=f"memory://{root}")}

    try:
        result = evaluate_sensor(instance, remote)
        for request in result.run_requests:
            assert run_request(instance, remote, request), request.partition_key
        assert document_shards(remote) == {"a.jsonl": 7, "nested/b.jsonl.gz": 1}
    finally:
        memory.rm(root, recursive=True)


def test_invalid_rebuild_timezone_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEM_REBUILD_TIMEZONE", "Mars/Base")

    with pytest.raises(ValidationError, match="GEM_REBUILD_TIMEZONE must be an IANA name"):
        GemSettings()


def test_seed_sample_smaller_than_k_names_both_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEM_N_CLUSTERS", "150")
    monkeypatch.setenv("GEM_SEED_SAMPLE_DOCUMENTS", "100")

    with pytest.raises(ValidationError, match="GEM_SEED_SAMPLE_DOCUMENTS=100 is smaller than GEM_N_CLUSTERS=150"):
        GemSettings()
