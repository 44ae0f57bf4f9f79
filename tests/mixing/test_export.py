"""Document selection for the training mix."""

from __future__ import annotations

import duckdb
import polars as pl

from gem_dagster.mixing import plan_selection


def labelled_connection() -> duckdb.DuckDBPyConnection:
    frame = pl.DataFrame(
        {
            "shard": ["s"] * 30,
            "id": [f"d{index}" for index in range(30)],
            "cluster_id": [0] * 20 + [1] * 10,
            "n_tokens": [10] * 20 + [7] * 10,
        }
    )
    connection = duckdb.connect()
    connection.register("labelled_frame", frame.to_arrow())
    connection.execute("CREATE VIEW labelled AS SELECT * FROM labelled_frame")
    return connection


def test_partial_pass_stays_within_one_document() -> None:
    selection = plan_selection(labelled_connection(), {0: 95, 1: 30}, seed=0)

    tokens = dict(selection.group_by("cluster_id").agg(pl.col("n_tokens").sum()).iter_rows())
    assert 95 - 10 < tokens[0] <= 95
    assert 30 - 7 < tokens[1] <= 30


def test_target_above_corpus_repeats_whole_passes() -> None:
    selection = plan_selection(labelled_connection(), {1: 150}, seed=0)

    passes = selection.group_by("pass").len().sort("pass")
    assert passes["pass"].to_list() == [0, 1, 2]
    assert passes["len"].to_list()[:2] == [10, 10]
    assert selection["n_tokens"].sum() <= 150


def test_selection_is_deterministic_and_seeded() -> None:
    connection = labelled_connection()

    first = plan_selection(connection, {0: 100, 1: 40}, seed=3)["id"].to_list()
    again = plan_selection(connection, {0: 100, 1: 40}, seed=3)["id"].to_list()
    other = plan_selection(connection, {0: 100, 1: 40}, seed=4)["id"].to_list()

    assert first == again
    assert first != other


def test_domains_are_interleaved() -> None:
    selection = plan_selection(labelled_connection(), {0: 200, 1: 70}, seed=0)

    clusters = selection["cluster_id"].to_list()
    assert clusters != sorted(clusters)
