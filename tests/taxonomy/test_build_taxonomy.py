"""build_taxonomy end to end on the synthetic topic corpus."""

from __future__ import annotations

import json
import re

import numpy as np
import polars as pl
import pytest

from gem_dagster.taxonomy import ChatNamer, ClusterName, build_taxonomy

from .conftest import TOPIC_WORDS, TOPICS, make_corpus
from .chat_stub import API_KEY


def run(corpus, **options):
    return build_taxonomy(
        corpus.texts,
        corpus.ids,
        corpus.vectors,
        corpus.labels,
        corpus.probabilities,
        corpus.mean_directions,
        corpus.concentrations,
        **options,
    )


def test_every_cluster_is_described(corpus):
    taxonomy = run(corpus, representatives=4, keywords=6)

    assert [record.cluster for record in taxonomy.clusters] == [0, 1, 2, 3]
    names = [record.name for record in taxonomy.clusters]
    assert len(set(names)) == 4
    for record, topic in zip(taxonomy.clusters, TOPICS, strict=True):
        assert record.size == 40
        assert len(record.keywords) == 6
        assert set(record.keywords[:3]) <= set(TOPIC_WORDS[topic])
        assert record.name.split(" / ")[0].lower() in TOPIC_WORDS[topic]
        assert record.name_source == "keywords"
        assert record.description.startswith("Documents about ")
        assert len(record.representative_ids) == 4
        rows = [int(identifier.removeprefix("doc-")) for identifier in record.representative_ids]
        assert set(corpus.labels[rows]) == {record.cluster}
        assert [corpus.texts[row] for row in rows] == list(record.excerpts)


def test_gis_and_tree_are_consistent(corpus):
    taxonomy = run(corpus, n_parents=2)

    assert taxonomy.gis.shape == (160,)
    np.testing.assert_array_equal(taxonomy.gis, taxonomy.influence.total)
    listed = sorted(c for child in taxonomy.tree["children"] for c in child["clusters"])
    assert listed == [0, 1, 2, 3]
    for record in taxonomy.clusters:
        assert record.cluster in taxonomy.tree["children"][record.parent]["clusters"]


def test_serialisation(corpus):
    taxonomy = run(corpus)

    decoded = json.loads(json.dumps(taxonomy.to_dict()))
    frame = taxonomy.to_frame()

    assert [entry["name"] for entry in decoded["clusters"]] == [r.name for r in taxonomy.clusters]
    assert frame.height == 4
    assert frame.schema["keywords"] == pl.List(pl.String)
    assert frame["representative_ids"].list.len().to_list() == [5, 5, 5, 5]


def test_inputs_from_polars_and_numpy(corpus):
    from_lists = run(corpus)
    from_columns = build_taxonomy(
        pl.Series(corpus.texts),
        np.asarray(corpus.ids),
        corpus.vectors,
        corpus.labels,
        corpus.probabilities,
        corpus.mean_directions,
        corpus.concentrations,
    )

    assert from_columns.clusters == from_lists.clusters


def test_excerpts_are_cut(corpus):
    taxonomy = run(corpus, excerpt_chars=20)

    for record in taxonomy.clusters:
        assert all(len(excerpt) <= 20 for excerpt in record.excerpts)
        assert all(excerpt.endswith("...") for excerpt in record.excerpts)


def test_two_clusters():
    small = make_corpus(n_topics=2, per_cluster=15, seed=4)

    taxonomy = run(small, representatives=3)

    assert len(taxonomy.clusters) == 2
    assert [child["clusters"] for child in taxonomy.tree["children"]] == [[0, 1]]
    assert taxonomy.clusters[0].name != taxonomy.clusters[1].name


def test_chat_names_are_made_unique(corpus, stub, tmp_path):
    namer = ChatNamer(
        stub.base_url, "test-model", API_KEY, timeout=2.0, max_retries=0, cache_dir=tmp_path
    )

    taxonomy = run(corpus, namer=namer)

    # The stub gives every cluster the same name.
    assert [record.name for record in taxonomy.clusters] == [
        "Astronomy",
        "Astronomy (cluster 1)",
        "Astronomy (cluster 2)",
        "Astronomy (cluster 3)",
    ]
    assert {record.name_source for record in taxonomy.clusters} == {"chat"}
    assert len(stub.requests) == 4


def test_namer_receives_cluster_material(corpus):
    calls = []

    class RecordingNamer:
        def name_cluster(self, cluster, keywords, representative_ids, excerpts, fallback):
            calls.append((cluster, list(keywords), list(representative_ids), list(excerpts)))
            return ClusterName(f"Topic {TOPICS[cluster]}", fallback.description, "chat")

    taxonomy = run(corpus, namer=RecordingNamer(), representatives=2, keywords=3)

    assert [call[0] for call in calls] == [0, 1, 2, 3]
    for call, record in zip(calls, taxonomy.clusters, strict=True):
        assert call[1] == list(record.keywords)
        assert call[2] == list(record.representative_ids)
        assert call[3] == list(record.excerpts)
    assert taxonomy.clusters[2].name == "Topic football"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ids", ["doc-0"], "ids has 1 entries but vectors has 160 rows"),
        ("texts", ["only one"], "texts has 1 entries but vectors has 160 rows"),
        ("labels", np.arange(159), "labels has 159 entries"),
        ("labels", np.full(160, 4), "label 4 at index 0 is outside 0 .. 3"),
        ("labels", np.full(160, -1), "label -1 at index 0"),
        ("vectors", None, "row 5 of vectors has L2 norm 2"),
        ("mean_directions", 2 * np.eye(24)[:4], "row 0 of mean_directions has L2 norm 2"),
        ("probabilities", np.full(160, -0.5), "probability -0.5 of document 0"),
    ],
)
def test_invalid_input_names_value(corpus, field, value, message):
    arguments = {
        "texts": corpus.texts,
        "ids": corpus.ids,
        "vectors": corpus.vectors,
        "labels": corpus.labels,
        "probabilities": corpus.probabilities,
        "mean_directions": corpus.mean_directions,
        "concentrations": corpus.concentrations,
    }
    if field == "vectors":
        value = corpus.vectors.copy()
        value[5] *= 2.0
    arguments[field] = value

    with pytest.raises(ValueError, match=re.escape(message)):
        build_taxonomy(**arguments)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("representatives", 0, "representatives must be an integer >= 1, got 0"),
        ("keywords", 2.5, "keywords must be an integer >= 1, got 2.5"),
        ("beta", float("nan"), "beta must be finite and >= 0, got nan"),
        ("duplicate_threshold", 1.5, r"duplicate_threshold must lie in \[-1.0, 1.0\], got 1.5"),
        ("temperature", 0.0, "temperature must be finite and > 0, got 0.0"),
    ],
)
def test_invalid_option_names_value(corpus, option, value, message):
    with pytest.raises(ValueError, match=message):
        run(corpus, **{option: value})


def test_texts_without_terms_get_placeholder_names(corpus):
    texts = ["The and of it is to be." for _ in corpus.texts]

    taxonomy = build_taxonomy(
        texts,
        corpus.ids,
        corpus.vectors,
        corpus.labels,
        corpus.probabilities,
        corpus.mean_directions,
        corpus.concentrations,
    )

    assert [record.name for record in taxonomy.clusters] == [f"Cluster {k}" for k in range(4)]
    assert all(record.keywords == () for record in taxonomy.clusters)
    assert all(len(record.representative_ids) == 5 for record in taxonomy.clusters)
