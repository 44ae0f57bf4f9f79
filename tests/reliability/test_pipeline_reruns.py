"""The small pipeline, run twice into two storage roots: same outputs, no secret anywhere.

Both runs use the bundled sample corpus, a 300-document seed sample, K = 4 and the same
seed, each with its own Dagster instance and storage root. Clusters are named by a stub
chat-completions server on 127.0.0.1 that requires the API key, which the namer reads from
an environment variable. The tests compare checksums of what the two runs published, look
for the key in everything the runs stored or logged, and re-materialise assets of the first
run to check that no rows are added.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

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
)
from gem_dagster.corpus import list_shard_keys
from gem_dagster.partitions import shard_partitions
from gem_dagster.resources import (
    ComputeResource,
    CorpusResource,
    EmbedderResource,
    NamerResource,
    WarehouseResource,
)
from gem_dagster.settings import BUNDLED_SAMPLE_SHARDS
from tests.taxonomy.chat_stub import StubServer, running_stub

from .conftest import query

pytestmark = pytest.mark.slow

SEED_DOCUMENTS = 300
K = 4
STRATEGIES = ["uniform", "natural", "temperature", "unimax"]
KEY_VARIABLE = "GEM_RELIABILITY_NAMER_KEY"
SECRET = "sk-reliability-secret-9f8e7d6c5b4a"
MODEL_RUN_CONFIG = {
    "ops": {
        "seed_sample": {"config": {"documents": SEED_DOCUMENTS, "seed": 11}},
        "teacher_clustering": {"config": {"n_clusters": K, "max_iter": 40, "seed": 11}},
        "student_model": {"config": {"per_cluster": 30, "seed": 11}},
    }
}


@dataclass
class PipelineRun:
    """One complete run of the small pipeline: its instance, resources and results."""

    root: Path
    instance: dg.DagsterInstance
    resources: dict
    model_result: dg.ExecuteInProcessResult

    @property
    def warehouse(self) -> WarehouseResource:
        return self.resources["warehouse"]

    def taxonomy_file(self) -> Path:
        metadata = self.model_result.asset_materializations_for_node("gis_taxonomy")[0].metadata
        return Path(metadata["path"].value)


class RecordingHandler(logging.Handler):
    """Keeps the formatted text of every log record emitted while the pipelines run."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def run_pipeline(root: Path, stub: StubServer) -> PipelineRun:
    (root / "home").mkdir(parents=True)
    resources = {
        "corpus": CorpusResource(root=str(BUNDLED_SAMPLE_SHARDS)),
        "warehouse": WarehouseResource(storage_root=str(root / "store")),
        "embedder": EmbedderResource(),
        "compute": ComputeResource(device="cpu"),
        "namer": NamerResource(
            base_url=stub.base_url, model="test-model", api_key_env=KEY_VARIABLE, max_retries=0
        ),
    }
    instance = dg.DagsterInstance.local_temp(tempdir=str(root / "home"))
    keys = list_shard_keys(BUNDLED_SAMPLE_SHARDS)
    instance.add_dynamic_partitions(shard_partitions.name, keys)
    for key in keys:
        assert dg.materialize([documents], instance=instance, resources=resources, partition_key=key).success

    model_result = dg.materialize(
        [seed_sample, embeddings, teacher_clustering, gis_taxonomy, student_model],
        instance=instance,
        resources=resources,
        run_config=MODEL_RUN_CONFIG,
    )
    assert model_result.success

    for key in keys:
        assert dg.materialize(
            [cluster_assignments], instance=instance, resources=resources, partition_key=key
        ).success
    assert dg.materialize([domain_stats], instance=instance, resources=resources).success
    for strategy in STRATEGIES:
        assert dg.materialize(
            [mixture_weights], instance=instance, resources=resources, partition_key=strategy
        ).success
    return PipelineRun(root, instance, resources, model_result)


@dataclass
class TwoRuns:
    """Both pipeline runs, the stub server that named their clusters, and every log line."""

    first: PipelineRun
    second: PipelineRun
    stub: StubServer
    log_lines: list[str]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoRuns]:
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv(KEY_VARIABLE, SECRET)
    handler = RecordingHandler()
    root_logger = logging.getLogger()
    previous_level = root_logger.level
    root_logger.addHandler(handler)
    root_logger.setLevel(logging.DEBUG)
    try:
        with running_stub() as stub:
            first = run_pipeline(tmp_path_factory.mktemp("first"), stub)
            second = run_pipeline(tmp_path_factory.mktemp("second"), stub)
            yield TwoRuns(first, second, stub, handler.lines)
            first.instance.dispose()
            second.instance.dispose()
    finally:
        root_logger.removeHandler(handler)
        root_logger.setLevel(previous_level)
        monkeypatch.undo()


def rows_checksum(warehouse: WarehouseResource, sql: str) -> str:
    rows = query(warehouse, sql)
    assert rows, f"no rows from: {sql}"
    return hashlib.sha256(repr(rows).encode("utf-8")).hexdigest()


# -- determinism ------------------------------------------------------------------------------

PUBLISHED_TABLES = {
    "seed sample": "SELECT id, shard FROM seed_documents ORDER BY id",
    "teacher labels": "SELECT id, cluster_id, probability, gis FROM teacher_assignments ORDER BY id",
    "cluster assignments": (
        "SELECT shard, id, cluster_id, probability FROM cluster_assignments ORDER BY shard, id"
    ),
    "domain statistics": "SELECT * FROM domain_stats ORDER BY cluster_id",
    "mixture weights": (
        "SELECT strategy, cluster_id, weight, tokens, epochs FROM mixture_weights "
        "ORDER BY strategy, cluster_id"
    ),
}


@pytest.mark.parametrize("table", sorted(PUBLISHED_TABLES))
def test_same_seed_same_rows(two_runs: TwoRuns, table: str) -> None:
    sql = PUBLISHED_TABLES[table]

    first = rows_checksum(two_runs.first.warehouse, sql)
    second = rows_checksum(two_runs.second.warehouse, sql)

    assert first == second, table


def test_same_seed_same_taxonomy(two_runs: TwoRuns) -> None:
    first = two_runs.first.taxonomy_file().read_bytes()
    second = two_runs.second.taxonomy_file().read_bytes()

    assert two_runs.first.taxonomy_file() != two_runs.second.taxonomy_file()
    assert len(json.loads(first)["clusters"]) == K
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()


# -- the namer's API key ----------------------------------------------------------------------


def test_key_reached_the_server(two_runs: TwoRuns) -> None:
    # Without this the secret checks below could pass because the key was never loaded.
    assert two_runs.stub.requests
    assert {request["authorization"] for request in two_runs.stub.requests} == {f"Bearer {SECRET}"}


def test_key_in_no_event_or_metadata(two_runs: TwoRuns) -> None:
    from dagster._serdes import serialize_value

    for run in [two_runs.first, two_runs.second]:
        runs = run.instance.get_runs()
        assert runs
        for dagster_run in runs:
            assert SECRET not in serialize_value(dagster_run), dagster_run.run_id
            for record in run.instance.all_logs(dagster_run.run_id):
                assert SECRET not in serialize_value(record), (dagster_run.run_id, record.message)


def test_key_in_no_stored_file(two_runs: TwoRuns) -> None:
    needle = SECRET.encode("utf-8")
    scanned = 0
    for run in [two_runs.first, two_runs.second]:
        for path in sorted(run.root.rglob("*")):
            if path.is_file():
                scanned += 1
                assert needle not in path.read_bytes(), path
    assert scanned > 20


def test_key_in_no_log_line(two_runs: TwoRuns) -> None:
    assert two_runs.log_lines
    assert not [line for line in two_runs.log_lines if SECRET in line]


# -- re-materialising -------------------------------------------------------------------------


def test_rerun_adds_no_rows(two_runs: TwoRuns) -> None:
    run = two_runs.first
    key = list_shard_keys(BUNDLED_SAMPLE_SHARDS)[0]
    counts_sql = {
        "cluster_assignments": "SELECT count(*), count(DISTINCT (shard, id)) FROM cluster_assignments",
        "domain_stats": "SELECT count(*), count(DISTINCT cluster_id) FROM domain_stats",
        "mixture_weights": "SELECT count(*), count(DISTINCT (strategy, cluster_id)) FROM mixture_weights",
    }
    before = {name: query(run.warehouse, sql)[0] for name, sql in counts_sql.items()}
    weights_before = rows_checksum(run.warehouse, PUBLISHED_TABLES["mixture weights"])

    assert dg.materialize(
        [cluster_assignments], instance=run.instance, resources=run.resources, partition_key=key
    ).success
    assert dg.materialize([domain_stats], instance=run.instance, resources=run.resources).success
    assert dg.materialize(
        [mixture_weights], instance=run.instance, resources=run.resources, partition_key="unimax"
    ).success

    after = {name: query(run.warehouse, sql)[0] for name, sql in counts_sql.items()}
    assert after == before
    assert before["cluster_assignments"] == (8400, 8400)
    assert before["domain_stats"] == (K, K)
    assert before["mixture_weights"] == (K * len(STRATEGIES), K * len(STRATEGIES))
    assert rows_checksum(run.warehouse, PUBLISHED_TABLES["mixture weights"]) == weights_before
