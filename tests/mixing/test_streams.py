"""Proxy token streams: compact vocabulary, document separators, save and load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gem_dagster.mixing.streams import OTHER_ID, SEPARATOR_ID, TokenStreams, build_token_streams


def test_streams_keep_frequent_tokens() -> None:
    documents = [(3, [7, 7, 7, 9]), (3, [7, 5]), (1, [9, 9, 42])]

    streams = build_token_streams(documents, vocabulary_size=4)

    # 7 appears four times and 9 three times: they get ids 2 and 3, the rest share OTHER_ID.
    assert streams.vocabulary.tolist() == [7, 9]
    assert streams.vocab_size == 4
    assert list(streams.domains) == [1, 3]
    assert streams.domains[3].tolist() == [2, 2, 2, 3, SEPARATOR_ID, 2, OTHER_ID, SEPARATOR_ID]
    assert streams.domains[1].tolist() == [3, 3, OTHER_ID, SEPARATOR_ID]
    assert streams.tokens_per_domain() == {1: 4, 3: 8}
    assert streams.other_share() == pytest.approx(2 / 12)


def test_frequency_ties_do_not_depend_on_input_order() -> None:
    forward = build_token_streams([(0, [4, 8]), (1, [8, 4])], vocabulary_size=3)
    backward = build_token_streams([(1, [8, 4]), (0, [4, 8])], vocabulary_size=3)

    assert forward.vocabulary.tolist() == backward.vocabulary.tolist() == [4]
    assert forward.domains[0].tolist() == backward.domains[0].tolist()


def test_save_and_load_round_trip_without_pickle(tmp_path: Path) -> None:
    streams = build_token_streams([(0, [1, 2, 3]), (5, [3, 3])], vocabulary_size=16)
    target = tmp_path / "streams.npz"

    streams.save(target)
    loaded = TokenStreams.load(target)

    assert list(loaded.domains) == [0, 5]
    for cluster_id, stream in streams.domains.items():
        np.testing.assert_array_equal(loaded.domains[cluster_id], stream)
    np.testing.assert_array_equal(loaded.vocabulary, streams.vocabulary)
    assert not list(tmp_path.glob(".*.tmp"))


def test_bad_inputs_name_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="label the shards first"):
        build_token_streams([], vocabulary_size=16)
    with pytest.raises(ValueError, match="at least 3"):
        build_token_streams([(0, [1])], vocabulary_size=2)
    with pytest.raises(FileNotFoundError, match="materialise proxy_token_streams"):
        TokenStreams.load(tmp_path / "missing.npz")
