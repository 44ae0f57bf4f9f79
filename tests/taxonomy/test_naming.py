"""Keyword names and descriptions, and their uniqueness."""

from __future__ import annotations

import pytest

from gem_dagster.taxonomy import ClusterName, keyword_description, keyword_names, unique_names


def test_name_joins_top_keywords_in_title_case():
    names = keyword_names([["orbit", "machine learning", "comet"]])

    assert names[0].name == "Orbit / Machine Learning"
    assert names[0].source == "keywords"


def test_duplicate_name_takes_next_keyword():
    names = keyword_names([["bond", "equity", "hedge"], ["Bond", "Equity", "yield"]])

    assert names[0].name == "Bond / Equity"
    assert names[1].name == "Bond / Equity / Yield"


def test_exhausted_keywords_get_cluster_suffix():
    names = keyword_names([["bond", "equity"], ["bond", "equity"], [], []])

    assert [entry.name for entry in names] == [
        "Bond / Equity",
        "Bond / Equity (cluster 1)",
        "Cluster 2",
        "Cluster 3",
    ]
    assert len({entry.name.casefold() for entry in names}) == 4


def test_words_per_name_setting():
    names = keyword_names([["a1x", "b2y", "c3z"]], words_per_name=3)

    assert names[0].name == "A1x / B2y / C3z"
    with pytest.raises(ValueError, match="words_per_name must be an integer >= 1, got 0"):
        keyword_names([["bond"]], words_per_name=0)


@pytest.mark.parametrize(
    ("terms", "expected"),
    [
        ([], "Documents without distinctive terms."),
        (["orbit"], "Documents about orbit."),
        (["orbit", "comet"], "Documents about orbit and comet."),
        (
            ["orbit", "comet", "planet", "rocket", "galaxy", "nebula"],
            "Documents about orbit, comet, planet, rocket and galaxy.",
        ),
    ],
)
def test_keyword_description(terms, expected):
    assert keyword_description(terms) == expected


def test_unique_names_suffixes_later_duplicates():
    names = [
        ClusterName("Space", "a", "chat"),
        ClusterName("space", "b", "chat"),
        ClusterName("Food", "c", "chat"),
    ]

    result = unique_names(names)

    assert [entry.name for entry in result] == ["Space", "space (cluster 1)", "Food"]
    assert [entry.description for entry in result] == ["a", "b", "c"]
    assert {entry.source for entry in result} == {"chat"}
