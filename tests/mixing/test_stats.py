"""DomainStats: construction from arrays and Polars frames, and input validation."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from gem_dagster.mixing import DomainStats


def test_from_frame_reads_columns_and_names() -> None:
    frame = pl.DataFrame(
        {
            "cluster_id": [3, 1, 2],
            "documents": [4, 5, 0],
            "tokens": [400, 500, 0],
            "name": ["law", "code", "empty"],
            "ignored": [0.1, 0.2, 0.3],
        }
    )

    stats = DomainStats.from_frame(frame)

    assert stats.cluster_ids.tolist() == [3, 1, 2]
    assert stats.documents.tolist() == [4, 5, 0]
    assert stats.tokens.tolist() == [400, 500, 0]
    assert stats.names == ("law", "code", "empty")
    assert stats.tokens.dtype == np.int64
    assert stats.documents.dtype == np.int64
    assert stats.cluster_ids.dtype == np.int64
    assert stats.n_domains == 3
    assert stats.total_tokens == 900


def test_from_frame_without_names() -> None:
    frame = pl.DataFrame({"cluster_id": [0, 1], "documents": [1, 2], "tokens": [10, 20]})

    stats = DomainStats.from_frame(frame)

    assert stats.names is None
    assert stats.to_frame().columns == ["cluster_id", "documents", "tokens"]


def test_to_frame_round_trips() -> None:
    stats = DomainStats([7, 8], [1, 2], [10, 20], names=["a", "b"])

    again = DomainStats.from_frame(stats.to_frame())

    assert again.cluster_ids.tolist() == [7, 8]
    assert again.documents.tolist() == [1, 2]
    assert again.tokens.tolist() == [10, 20]
    assert again.names == ("a", "b")


def test_integral_float_counts_accepted() -> None:
    stats = DomainStats([0, 1], np.array([1.0, 2.0]), np.array([10.0, 20.0]))

    assert stats.tokens.dtype == np.int64
    assert stats.tokens.tolist() == [10, 20]


def test_fractional_tokens_rejected() -> None:
    with pytest.raises(ValueError, match=r"whole numbers, got 2\.5"):
        DomainStats([0, 1], [1, 1], np.array([10.0, 2.5]))


def test_arrays_are_read_only() -> None:
    stats = DomainStats([0, 1], [1, 2], [10, 20])

    with pytest.raises(ValueError):
        stats.tokens[0] = 99
    assert stats.tokens[0] == 10


def test_negative_tokens_rejected() -> None:
    with pytest.raises(ValueError, match=r"tokens must be non-negative, got -5 at position 1"):
        DomainStats([0, 1], [1, 1], [10, -5])


def test_negative_documents_rejected() -> None:
    with pytest.raises(ValueError, match=r"documents must be non-negative, got -1"):
        DomainStats([0, 1], [-1, 1], [0, 5])


def test_length_mismatch_rejected() -> None:
    with pytest.raises(ValueError, match=r"'tokens': 3"):
        DomainStats([0, 1], [1, 1], [10, 20, 30])


def test_names_length_mismatch_rejected() -> None:
    with pytest.raises(ValueError, match=r"'names': 1"):
        DomainStats([0, 1], [1, 1], [10, 20], names=["only"])


def test_empty_stats_rejected() -> None:
    with pytest.raises(ValueError, match=r"at least one domain, got 0"):
        DomainStats([], [], [])


def test_repeated_cluster_ids_rejected() -> None:
    with pytest.raises(ValueError, match=r"repeated ids \[4\]"):
        DomainStats([4, 4, 5], [1, 1, 1], [10, 20, 30])


def test_tokens_without_documents_rejected() -> None:
    with pytest.raises(ValueError, match=r"domains \[9\] have tokens but 0 documents"):
        DomainStats([8, 9], [1, 0], [10, 20])


def test_from_frame_missing_column_rejected() -> None:
    frame = pl.DataFrame({"cluster_id": [0], "tokens": [10]})

    with pytest.raises(ValueError, match=r"missing columns \['documents'\]"):
        DomainStats.from_frame(frame)


def test_from_frame_nulls_rejected() -> None:
    frame = pl.DataFrame({"cluster_id": [0, 1], "documents": [1, 1], "tokens": [10, None]})

    with pytest.raises(ValueError, match=r"column 'tokens' contains 1 null values"):
        DomainStats.from_frame(frame)
