"""The teacher_clustering asset on real embeddings of the bundled sample corpus."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from gem_dagster.assets import documents, embeddings, seed_sample, teacher_clustering
from gem_dagster.clustering import find_objective_decreases
from gem_dagster.corpus import list_shard_keys
from gem_dagster.partitions import shard_partitions
from gem_dagster.resources import ComputeResource, CorpusResource, EmbedderResource, WarehouseResource
from gem_dagster.settings import BUNDLED_SAMPLE_SHARDS

pytestmark = pytest.mark.slow


@pytest.fixture
def sample_resources(tmp_path: Path) -> dict:
    return {
        "corpus": CorpusResource(root=str(BUNDLED_SAMPLE_SHARDS)),
        "warehouse": WarehouseResource(storage_root=str(tmp_path / "store")),
        "embedder": EmbedderResource(),
        "compute": ComputeResource(device="auto"),
    }


def test_teacher_fits_sample_and_writes_tables(
    instance: dg.DagsterInstance, sample_resources: dict
) -> None:
    keys = list_shard_keys(BUNDLED_SAMPLE_SHARDS)
    instance.add_dynamic_partitions(shard_partitions.name, keys)
    for key in keys:
        assert dg.materialize([documents], instance=instance, resources=sample_resources, partition_key=key).success

    result = dg.materialize(
        [seed_sample, embeddings, teacher_clustering],
        instance=instance,
        resources=sample_resources,
        run_config={
            "ops": {
                "seed_sample": {"config": {"documents": 240}},
                "teacher_clustering": {"config": {"n_clusters": 6, "max_iter": 30}},
            }
        },
    )
    assert result.success

    checks = {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}
    assert checks["objective_non_decreasing"].passed
    assert "balance_entropy_above_floor" in checks

    metadata = result.asset_materializations_for_node("teacher_clustering")[0].metadata
    model = np.load(metadata["path"].value, allow_pickle=False)
    assert find_objective_decreases(model["objective_trace"]).size == 0
    assert model["mean_directions"].shape == (6, 384)
    assert metadata["device"].value == "cpu"
    assert metadata["objective_curve"].value.startswith("![objective](data:image/png;base64,")

    warehouse: WarehouseResource = sample_resources["warehouse"]
    with warehouse.catalog.connect(read_only=True) as connection:
        clusters = connection.execute(
            "SELECT cluster_id, size, mass, concentration FROM teacher_clusters ORDER BY cluster_id"
        ).fetchall()
        assigned = connection.execute(
            "SELECT count(*), count(DISTINCT id), min(probability), max(cluster_id) FROM teacher_assignments"
        ).fetchone()
        unmatched = connection.execute(
            "SELECT count(*) FROM teacher_assignments a ANTI JOIN seed_documents s USING (id)"
        ).fetchone()[0]

    assert [row[0] for row in clusters] == list(range(6))
    assert sum(row[1] for row in clusters) == 240
    assert abs(sum(row[2] for row in clusters) - 1.0) < 1e-6
    assert all(row[3] > 0 for row in clusters)
    assert assigned[0] == assigned[1] == 240
    assert 0 < assigned[2] <= 1
    assert assigned[3] == 5
    assert unmatched == 0


def test_explicit_cuda_without_gpu_fails_clearly(
    instance: dg.DagsterInstance, sample_resources: dict
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU, so an explicit cuda device is valid")
    from gem_dagster.resources import DeviceUnavailableError

    with pytest.raises(DeviceUnavailableError, match="'cuda'.*no CUDA device"):
        ComputeResource(device="cuda").torch_device()
