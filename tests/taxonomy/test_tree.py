"""Parent groups of clusters by average linkage of their mean directions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gem_dagster.taxonomy import ClusterKeywords, build_cluster_tree, default_parent_count

from .conftest import unit_rows


def keywords_of(*term_lists: list[str]) -> list[ClusterKeywords]:
    result = []
    for cluster, terms in enumerate(term_lists):
        scores = tuple(float(len(terms) - rank) for rank in range(len(terms)))
        result.append(ClusterKeywords(cluster, tuple(terms), scores, scores))
    return result


def paired_directions() -> np.ndarray:
    """Four directions in two tight pairs: clusters 0 and 2 near e0, clusters 1 and 3 near e1."""
    return unit_rows(
        np.array(
            [
                [1.0, 0.0, 0.1, 0.0],
                [0.0, 1.0, 0.0, 0.1],
                [1.0, 0.0, -0.1, 0.0],
                [0.0, 1.0, 0.0, -0.1],
            ]
        )
    )


def test_pairs_are_grouped_and_named_from_shared_terms():
    keywords = keywords_of(
        ["solar", "energy", "panel"],
        ["striker", "football", "goal"],
        ["wind", "energy", "turbine"],
        ["referee", "football", "league"],
    )

    tree = build_cluster_tree(paired_directions(), keywords, n_parents=2)

    assert tree.parent_of.tolist() == [0, 1, 0, 1]
    children = tree.root["children"]
    assert [child["clusters"] for child in children] == [[0, 2], [1, 3]]
    assert children[0]["keywords"][0] == "energy"
    assert children[1]["keywords"][0] == "football"
    assert children[0]["name"].startswith("Energy / ")
    assert children[1]["name"].startswith("Football / ")


def test_tree_is_json_and_covers_every_cluster_once():
    rng = np.random.default_rng(2)
    directions = unit_rows(rng.standard_normal((9, 6)))
    keywords = keywords_of(*[[f"term{k}a", f"term{k}b", "shared"] for k in range(9)])

    tree = build_cluster_tree(directions, keywords)

    decoded = json.loads(json.dumps(tree.root))
    listed = [cluster for child in decoded["children"] for cluster in child["clusters"]]
    assert sorted(listed) == list(range(9))
    assert len(decoded["children"]) == default_parent_count(9) == 3
    for child in decoded["children"]:
        assert (tree.parent_of[child["clusters"]] == child["id"]).all()
    names = [child["name"] for child in decoded["children"]]
    assert len(set(names)) == len(names)


def test_two_clusters_default_to_one_parent():
    directions = np.array([[1.0, 0.0], [0.0, 1.0]])
    keywords = keywords_of(["alpha", "beta"], ["gamma", "delta"])

    tree = build_cluster_tree(directions, keywords)

    assert tree.parent_of.tolist() == [0, 0]
    assert tree.root["children"][0]["clusters"] == [0, 1]
    json.dumps(tree.root)


def test_two_clusters_split_into_two_parents():
    directions = np.array([[1.0, 0.0], [0.0, 1.0]])
    keywords = keywords_of(["alpha", "beta"], ["gamma", "delta"])

    tree = build_cluster_tree(directions, keywords, n_parents=2)

    assert tree.parent_of.tolist() == [0, 1]
    assert [child["name"] for child in tree.root["children"]] == ["Alpha / Beta", "Gamma / Delta"]


def test_single_cluster_and_empty_keywords():
    tree = build_cluster_tree(np.array([[0.6, 0.8]]), keywords_of([]))

    assert tree.parent_of.tolist() == [0]
    assert tree.root["children"][0]["name"] == "Cluster 0"
    assert tree.root["children"][0]["keywords"] == []


def test_identical_directions_share_a_parent():
    directions = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])

    tree = build_cluster_tree(directions, keywords_of(["a1"], ["a2"], ["b1"]), n_parents=2)

    assert tree.parent_of.tolist() == [0, 0, 1]


@pytest.mark.parametrize(
    ("n_parents", "message"),
    [(0, "n_parents must be an integer >= 1, got 0"), (5, "at most the number of clusters 4")],
)
def test_invalid_parent_count(n_parents, message):
    keywords = keywords_of(["a"], ["b"], ["c"], ["d"])

    with pytest.raises(ValueError, match=message):
        build_cluster_tree(paired_directions(), keywords, n_parents=n_parents)


def test_keyword_count_must_match_clusters():
    with pytest.raises(ValueError, match="keywords has 1 entries but mean_directions has 4 rows"):
        build_cluster_tree(paired_directions(), keywords_of(["a"]))
