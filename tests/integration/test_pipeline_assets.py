"""The asset graph from shards to cluster assignments on the bundled sample corpus.

One module-scoped run materialises every asset on a real SQLite-backed Dagster instance with
real DuckDB and Parquet files, the real embedding model and real fastText. The tests below
read what it produced.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow.parquet as pq
import pytest

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
from gem_dagster.clustering import find_objective_decreases
from gem_dagster.jobs import ingest_and_assign_job
from gem_dagster.corpus import list_shard_keys
from gem_dagster.mixing.streams import SEPARATOR_ID, TokenStreams
from gem_dagster.partitions import shard_partitions
from gem_dagster.resources import (
    ComputeResource,
    CorpusResource,
    EmbedderResource,
    NamerResource,
    WarehouseResource,
)
from gem_dagster.sensors import shard_sensor
from gem_dagster.settings import BUNDLED_SAMPLE_SHARDS

pytestmark = pytest.mark.slow

K = 6
SEED_DOCUMENTS = 480
PROXY_TOKENS = 3000


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("pipeline")
    resources = {
        "corpus": CorpusResource(root=str(BUNDLED_SAMPLE_SHARDS)),
        "warehouse": WarehouseResource(storage_root=str(root / "store")),
        "embedder": EmbedderResource(),
        "compute": ComputeResource(device="auto"),
        "namer": NamerResource(),
    }
    keys = list_shard_keys(BUNDLED_SAMPLE_SHARDS)
    (root / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "home")) as instance:
        instance.add_dynamic_partitions(shard_partitions.name, keys)
        for key in keys:
            assert dg.materialize([documents], instance=instance, resources=resources, partition_key=key).success

        model_run = dg.materialize(
            [seed_sample, embeddings, teacher_clustering, gis_taxonomy, student_model],
            instance=instance,
            resources=resources,
            run_config={
                "ops": {
                    "seed_sample": {"config": {"documents": SEED_DOCUMENTS}},
                    "teacher_clustering": {"config": {"n_clusters": K, "max_iter": 40}},
                    "student_model": {"config": {"per_cluster": 50}},
                }
            },
        )
        assert model_run.success

        assignment_runs = {
            key: dg.materialize(
                [cluster_assignments], instance=instance, resources=resources, partition_key=key
            )
            for key in keys
        }
        assert dg.materialize([domain_stats], instance=instance, resources=resources).success
        weight_runs = {
            strategy: dg.materialize(
                [mixture_weights], instance=instance, resources=resources, partition_key=strategy
            )
            for strategy in ["uniform", "natural", "temperature", "unimax"]
        }
        # Proxy strategies with the smallest useful run: a few thousand tokens per domain and
        # a handful of steps. The CPU preset's size is measured in docs/benchmarks.md.
        streams_run = dg.materialize(
            [proxy_token_streams],
            instance=instance,
            resources=resources,
            run_config={"ops": {"proxy_token_streams": {"config": {"tokens_per_domain": PROXY_TOKENS, "vocabulary": 512}}}},
        )
        assert streams_run.success
        proxy_config = {"ops": {"mixture_weights": {"config": {"proxy_steps": 4, "regmix_mixtures": 6}}}}
        proxy_weight_runs = {
            strategy: dg.materialize(
                [mixture_weights],
                instance=instance,
                resources=resources,
                partition_key=strategy,
                run_config=proxy_config,
            )
            for strategy in ["doremi", "regmix", "perfre"]
        }
        export_runs = {
            strategy: dg.materialize(
                [training_mix], instance=instance, resources=resources, partition_key=strategy
            )
            for strategy in ["natural", "unimax"]
        }
        yield {
            "export_runs": export_runs,
            "weight_runs": weight_runs,
            "streams_run": streams_run,
            "proxy_weight_runs": proxy_weight_runs,
            "instance": instance,
            "resources": resources,
            "keys": keys,
            "model_run": model_run,
            "assignment_runs": assignment_runs,
            "warehouse": resources["warehouse"],
        }


def checks_of(result: dg.ExecuteInProcessResult) -> dict:
    return {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}


def test_teacher_objective_never_decreased(pipeline: dict) -> None:
    result = pipeline["model_run"]
    metadata = result.asset_materializations_for_node("teacher_clustering")[0].metadata
    model = np.load(metadata["path"].value, allow_pickle=False)

    assert checks_of(result)["objective_non_decreasing"].passed
    assert find_objective_decreases(model["objective_trace"]).size == 0
    assert model["mean_directions"].shape == (K, 384)
    assert metadata["device"].value == "cpu"
    assert metadata["objective_curve"].value.startswith("![objective](data:image/png;base64,")


def test_teacher_tables_cover_seed_sample(pipeline: dict) -> None:
    with pipeline["warehouse"].catalog.connect(read_only=True) as connection:
        clusters = connection.execute(
            "SELECT cluster_id, size, mass, concentration, name FROM teacher_clusters ORDER BY cluster_id"
        ).fetchall()
        assigned = connection.execute(
            "SELECT count(*), count(DISTINCT id), min(probability), count(gis) FROM teacher_assignments"
        ).fetchone()
        unmatched = connection.execute(
            "SELECT count(*) FROM teacher_assignments ANTI JOIN seed_documents USING (id)"
        ).fetchone()[0]

    assert [row[0] for row in clusters] == list(range(K))
    assert sum(row[1] for row in clusters) == SEED_DOCUMENTS
    assert abs(sum(row[2] for row in clusters) - 1.0) < 1e-6
    assert all(row[3] > 0 for row in clusters)
    assert len({row[4] for row in clusters}) == K
    assert assigned[0] == assigned[1] == assigned[3] == SEED_DOCUMENTS
    assert 0 < assigned[2] <= 1
    assert unmatched == 0


def test_taxonomy_names_every_cluster(pipeline: dict) -> None:
    metadata = pipeline["model_run"].asset_materializations_for_node("gis_taxonomy")[0].metadata
    taxonomy = json.loads(Path(metadata["path"].value).read_text())

    assert len(taxonomy["clusters"]) == K
    for cluster in taxonomy["clusters"]:
        assert cluster["name"]
        assert cluster["keywords"]
        assert cluster["representative_ids"]
    in_tree = sorted(c for group in taxonomy["tree"]["children"] for c in group["clusters"])
    assert in_tree == list(range(K))
    assert "| id | name | share |" in metadata["clusters"].value


def test_representatives_come_from_their_cluster(pipeline: dict) -> None:
    metadata = pipeline["model_run"].asset_materializations_for_node("gis_taxonomy")[0].metadata
    taxonomy = json.loads(Path(metadata["path"].value).read_text())
    with pipeline["warehouse"].catalog.connect(read_only=True) as connection:
        label_of = dict(connection.execute("SELECT id, cluster_id FROM teacher_assignments").fetchall())

    for cluster in taxonomy["clusters"]:
        for document_id in cluster["representative_ids"]:
            assert label_of[document_id] == cluster["cluster"]


def test_student_agreement_reported_above_floor(pipeline: dict) -> None:
    result = pipeline["model_run"]
    check = checks_of(result)["teacher_agreement_above_floor"]
    metadata = result.asset_materializations_for_node("student_model")[0].metadata

    assert check.passed
    assert metadata["teacher_agreement"].value >= check.metadata["floor"].value
    assert metadata["agreement_documents"].value == round(0.2 * SEED_DOCUMENTS)


def test_assignments_cover_every_document(pipeline: dict) -> None:
    for key, result in pipeline["assignment_runs"].items():
        assert checks_of(result)["every_document_assigned_once"].passed, key

    with pipeline["warehouse"].catalog.connect(read_only=True) as connection:
        per_shard = dict(
            connection.execute(
                """
                SELECT d.shard, count(a.id) = count(*) AND count(DISTINCT a.id) = count(*)
                FROM documents AS d LEFT JOIN cluster_assignments AS a USING (id)
                GROUP BY d.shard
                """
            ).fetchall()
        )
        total = connection.execute("SELECT count(*) FROM cluster_assignments").fetchone()[0]
        clusters = connection.execute("SELECT count(DISTINCT cluster_id) FROM cluster_assignments").fetchone()[0]

    assert per_shard == {key: True for key in pipeline["keys"]}
    assert total == 8400
    assert clusters == K


def test_rematerialised_partition_replaces_rows(pipeline: dict) -> None:
    key = pipeline["keys"][0]
    result = dg.materialize(
        [cluster_assignments],
        instance=pipeline["instance"],
        resources=pipeline["resources"],
        partition_key=key,
    )
    assert result.success

    with pipeline["warehouse"].catalog.connect(read_only=True) as connection:
        rows, distinct = connection.execute(
            "SELECT count(*), count(DISTINCT id) FROM cluster_assignments WHERE shard = ?", [key]
        ).fetchone()
    assert rows == distinct == 1400
    assert pq.ParquetFile(pipeline["warehouse"].layout.assignments_file(key)).metadata.num_rows == 1400


def test_domain_stats_count_whole_corpus(pipeline: dict) -> None:
    with pipeline["warehouse"].catalog.connect(read_only=True) as connection:
        counted = connection.execute("SELECT sum(documents), sum(tokens), count(*) FROM domain_stats").fetchone()
        tokens = connection.execute("SELECT sum(n_tokens) FROM documents").fetchone()[0]

    assert counted[0] == 8400
    assert counted[1] == tokens
    assert counted[2] == K


def test_weights_valid_for_every_strategy(pipeline: dict) -> None:
    for strategy, result in pipeline["weight_runs"].items():
        assert result.success, strategy
        assert checks_of(result)["weights_valid"].passed, strategy

    with pipeline["warehouse"].catalog.connect(read_only=True) as connection:
        sums = dict(connection.execute("SELECT strategy, sum(weight) FROM mixture_weights GROUP BY strategy").fetchall())
        worst_epochs = connection.execute("SELECT max(epochs) FROM mixture_weights").fetchone()[0]
        natural = connection.execute(
            "SELECT w.weight, s.tokens FROM mixture_weights AS w JOIN domain_stats AS s USING (cluster_id) "
            "WHERE w.strategy = 'natural' ORDER BY cluster_id"
        ).fetchall()

    assert {"uniform", "natural", "temperature", "unimax"} <= set(sums)
    for strategy, total in sums.items():
        assert abs(total - 1.0) < 1e-9, strategy
    assert worst_epochs <= 4.0 + 1e-9
    total_tokens = sum(tokens for _, tokens in natural)
    for weight, tokens in natural:
        assert abs(weight - tokens / total_tokens) < 1e-9


def test_proxy_streams_cover_every_domain_within_budget(pipeline: dict) -> None:
    metadata = pipeline["streams_run"].asset_materializations_for_node("proxy_token_streams")[0].metadata
    streams = TokenStreams.load(Path(metadata["path"].value))

    with pipeline["warehouse"].catalog.connect(read_only=True) as connection:
        corpus_tokens = dict(connection.execute("SELECT cluster_id, tokens FROM domain_stats").fetchall())

    assert sorted(streams.domains) == list(range(K))
    assert streams.vocab_size == 512
    for cluster_id, stream in streams.domains.items():
        # Documents are added until the running count reaches the budget, so a domain
        # overshoots by less than its last document, or contains all its tokens when it has
        # fewer than the budget. Each document is followed by one separator.
        tokens = stream.size - int((stream == SEPARATOR_ID).sum())
        assert min(PROXY_TOKENS, corpus_tokens[cluster_id]) <= tokens < PROXY_TOKENS + 2000, cluster_id
        assert tokens <= corpus_tokens[cluster_id], cluster_id
    assert 0 < metadata["share_outside_vocabulary"].value < 0.5


def test_proxy_strategies_give_valid_weights(pipeline: dict) -> None:
    for strategy, result in pipeline["proxy_weight_runs"].items():
        assert result.success, strategy
        assert checks_of(result)["weights_valid"].passed, strategy
        metadata = result.asset_materializations_for_node("mixture_weights")[0].metadata
        assert metadata["proxy"].value["steps"] == 4, strategy
        saved = json.loads(Path(metadata["path"].value).read_text())
        assert abs(sum(domain["weight"] for domain in saved["domains"]) - 1.0) < 1e-9, strategy

    regmix = pipeline["proxy_weight_runs"]["regmix"].asset_materializations_for_node("mixture_weights")[0]
    assert -1.0 <= regmix.metadata["regmix_heldout_spearman"].value <= 1.0
    with pipeline["warehouse"].catalog.connect(read_only=True) as connection:
        strategies = {row[0] for row in connection.execute("SELECT DISTINCT strategy FROM mixture_weights").fetchall()}
    assert {"doremi", "regmix", "perfre"} <= strategies


def test_export_tokens_match_weights(pipeline: dict) -> None:
    for strategy, result in pipeline["export_runs"].items():
        assert result.success, strategy
        assert checks_of(result)["export_matches_weights"].passed, strategy
        manifest_file = Path(result.asset_materializations_for_node("training_mix")[0].metadata["path"].value)
        manifest = json.loads(manifest_file.read_text())
        table = pq.read_table(list(manifest_file.parent.glob("part-*.parquet")))

        assert table.num_rows == manifest["documents"]
        assert table.column_names == ["id", "text", "cluster"]
        # Each domain falls short of weight x budget by less than its longest document,
        # which is at most the embedder token count of one sample document (under 3,000).
        for domain in manifest["domains"]:
            shortfall = domain["target_tokens"] - domain["exported_tokens"]
            assert 0 <= shortfall < 3000, (strategy, domain)
            assert domain["epochs"] <= 4.0 + 1e-9
        blend = (manifest_file.parent / "blend.txt").read_text().split()
        assert len(blend) == 2 * len(manifest["shards"])
        assert abs(sum(float(weight) for weight in blend[0::2]) - 1.0) < 1e-3


def test_export_is_deterministic(pipeline: dict) -> None:
    first = pipeline["export_runs"]["unimax"]
    again = dg.materialize(
        [training_mix],
        instance=pipeline["instance"],
        resources=pipeline["resources"],
        partition_key="unimax",
    )
    assert again.success

    def exported_ids(result) -> list[str]:
        manifest_file = Path(result.asset_materializations_for_node("training_mix")[0].metadata["path"].value)
        parts = sorted(manifest_file.parent.glob("part-*.parquet"))
        return [value for part in parts for value in pq.read_table(part)["id"].to_pylist()]

    assert exported_ids(first) == exported_ids(again)


def test_explicit_cuda_without_gpu_fails_clearly() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU, so an explicit cuda device is valid")
    from gem_dagster.resources import DeviceUnavailableError

    with pytest.raises(DeviceUnavailableError, match="'cuda'.*no CUDA device"):
        ComputeResource(device="cuda").torch_device()


def test_assignment_refuses_a_student_from_another_storage_root(pipeline: dict, tmp_path: Path) -> None:
    other_root = {**pipeline["resources"], "warehouse": WarehouseResource(storage_root=str(tmp_path / "other"))}
    key = pipeline["keys"][0]
    assert dg.materialize([documents], instance=pipeline["instance"], resources=other_root, partition_key=key).success

    result = dg.materialize(
        [cluster_assignments],
        instance=pipeline["instance"],
        resources=other_root,
        partition_key=key,
        raise_on_error=False,
    )

    assert not result.success
    [failure] = [event for event in result.all_events if event.is_step_failure]
    error = failure.step_failure_data.error
    message = (error.cause or error).message
    assert "outside this deployment's storage root" in message
    assert "DAGSTER_HOME" in message
    assert not list((tmp_path / "other").rglob("assignments/shard=*/*.parquet"))


def test_sensor_assigns_dropped_shard(pipeline: dict, tmp_path: Path) -> None:
    # Kept last in the module: it adds a seventh shard to the shared warehouse.
    dropped_root = tmp_path / "dropped"
    (dropped_root / "new").mkdir(parents=True)
    texts = ["The kernel module registers an interrupt handler.", "Congress debated the budget."]
    (dropped_root / "new" / "shard.jsonl").write_text(
        "".join(json.dumps({"id": f"new-{i}", "text": text}) + "\n" for i, text in enumerate(texts))
    )
    instance = pipeline["instance"]
    resources = {**pipeline["resources"], "corpus": CorpusResource(root=str(dropped_root))}

    result = shard_sensor(dg.build_sensor_context(instance=instance, resources={"corpus": resources["corpus"]}))
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    [request] = result.run_requests
    job = dg.Definitions(
        assets=[documents, student_model, cluster_assignments],
        jobs=[ingest_and_assign_job],
        resources=resources,
    ).resolve_job_def(request.job_name)

    assert request.job_name == "ingest_and_assign_shards"
    assert job.execute_in_process(instance=instance, partition_key=request.partition_key).success
    with pipeline["warehouse"].catalog.connect(read_only=True) as connection:
        labelled = connection.execute(
            "SELECT count(*), count(DISTINCT id) FROM cluster_assignments WHERE shard = 'new/shard.jsonl'"
        ).fetchone()
    assert labelled == (2, 2)
