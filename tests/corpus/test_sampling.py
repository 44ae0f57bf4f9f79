"""Stratified seed sampling."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from gem_dagster.corpus.sampling import allocate_quotas, select_seed_sample


def documents_connection(sizes: dict[str, int], tokens_per_document: int = 10) -> duckdb.DuckDBPyConnection:
    frame = pl.DataFrame(
        {
            "id": [f"{shard}-{index}" for shard, size in sizes.items() for index in range(size)],
            "shard": [shard for shard, size in sizes.items() for _ in range(size)],
            "text": ["text"] * sum(sizes.values()),
            "n_tokens": [tokens_per_document] * sum(sizes.values()),
        }
    )
    connection = duckdb.connect()
    connection.register("documents_frame", frame.to_arrow())
    connection.execute("CREATE VIEW documents AS SELECT * FROM documents_frame")
    return connection


def test_quotas_are_proportional_and_exact() -> None:
    quotas = allocate_quotas({"a": 600, "b": 300, "c": 100}, 100)

    assert quotas == {"a": 60, "b": 30, "c": 10}


def test_quotas_sum_to_total_with_remainders() -> None:
    quotas = allocate_quotas({"a": 1, "b": 1, "c": 1}, 2)

    assert sum(quotas.values()) == 2
    assert max(quotas.values()) == 1


def test_quota_never_exceeds_corpus() -> None:
    assert allocate_quotas({"a": 3, "b": 2}, 100) == {"a": 3, "b": 2}


def test_sample_is_stratified() -> None:
    connection = documents_connection({"a": 500, "b": 300, "c": 200})

    sample = select_seed_sample(connection, 100, seed=0)
    per_shard = dict(sample.group_by("shard").len().iter_rows())

    assert per_shard == {"a": 50, "b": 30, "c": 20}
    assert sample["id"].n_unique() == 100


def test_sample_is_deterministic_and_seeded() -> None:
    connection = documents_connection({"a": 500, "b": 300})

    first = select_seed_sample(connection, 80, seed=1)["id"].to_list()
    again = select_seed_sample(connection, 80, seed=1)["id"].to_list()
    other = select_seed_sample(connection, 80, seed=2)["id"].to_list()

    assert first == again
    assert first != other


def test_sample_by_tokens_stays_within_budget() -> None:
    connection = documents_connection({"a": 100, "b": 100}, tokens_per_document=10)

    sample = select_seed_sample(connection, 500, seed=0, by="tokens")

    assert sample["n_tokens"].sum() == 500
    assert dict(sample.group_by("shard").len().iter_rows()) == {"a": 25, "b": 25}


def test_unknown_sample_unit_is_rejected() -> None:
    with pytest.raises(ValueError, match="invalid sample unit 'bytes'"):
        select_seed_sample(documents_connection({"a": 1}), 1, seed=0, by="bytes")
