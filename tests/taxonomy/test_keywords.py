"""Tokenizer, GIS-weighted c-TF-IDF and the geometric re-ranking of keywords."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from gem_dagster.taxonomy import (
    ENGLISH_STOP_WORDS,
    class_tfidf,
    extract_keywords,
    geometric_influence_scores,
    keywords_frame,
    rerank_by_geometry,
    softmax_weights,
    tokenize,
)

from .conftest import TOPIC_WORDS, TOPICS, hashed_unit_vector, topic_term_embedder


@pytest.fixture(scope="module")
def influence(corpus):
    return geometric_influence_scores(
        corpus.vectors,
        corpus.labels,
        corpus.probabilities,
        corpus.mean_directions,
        corpus.concentrations,
    )


def test_tokenize_keeps_lowercase_content_words():
    tokens = tokenize("The Rocket's orbit, at 3 km: an ORBIT of Mars-like planets!")

    # "like" is a stop word, "s", "at", "km" and "an" are too short, and digits split words.
    assert tokens == ["rocket", "orbit", "orbit", "mars", "planets"]
    assert "the" in ENGLISH_STOP_WORDS


def test_tokenize_drops_stop_words_and_short_words():
    tokens = tokenize("It is what they would do with an ox and a pen")

    assert tokens == ["pen"]


def test_tokenize_bigrams_skip_dropped_words():
    tokens = tokenize("Machine learning and deep learning models", bigrams=True)

    assert tokens[:5] == ["machine", "learning", "deep", "learning", "models"]
    assert tokens[5:] == ["machine learning", "deep learning", "learning models"]


def test_softmax_weights_sum_to_one_per_cluster():
    labels = np.array([0, 0, 1, 1, 1])
    gis = np.array([1000.0, 999.0, -5.0, -5.0, -4.0])

    weights = softmax_weights(gis, labels)

    assert weights[:2].sum() == pytest.approx(1.0)
    assert weights[2:].sum() == pytest.approx(1.0)
    assert weights[0] / weights[1] == pytest.approx(math.e)
    assert weights[2] == pytest.approx(weights[3])


def test_softmax_temperature_flattens_weights():
    labels = np.zeros(2, dtype=int)
    gis = np.array([10.0, 0.0])

    sharp = softmax_weights(gis, labels, temperature=1.0)
    flat = softmax_weights(gis, labels, temperature=100.0)

    assert sharp[0] > 0.999
    assert flat[0] == pytest.approx(1 / (1 + math.exp(-0.1)))


def test_class_tfidf_formula_by_hand():
    # Two clusters of one document each. Columns: "apple", "pear", "plum".
    counts = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 3.0]])

    scores = class_tfidf(counts, [0, 1], [1.0, 1.0], 2).toarray()

    # Cluster lengths 3 and 4, so A = 3.5. Term totals: 2, 2, 3.
    expected = np.array(
        [
            [2 / 3 * math.log(1 + 3.5 / 2), 1 / 3 * math.log(1 + 3.5 / 2), 0.0],
            [0.0, 1 / 4 * math.log(1 + 3.5 / 2), 3 / 4 * math.log(1 + 3.5 / 3)],
        ]
    )
    np.testing.assert_allclose(scores, expected)


def test_class_tfidf_weights_documents():
    counts = np.array([[1.0, 0.0], [0.0, 1.0]])

    scores = class_tfidf(counts, [0, 0], [0.75, 0.25], 1).toarray()

    # One cluster: A equals the cluster length 1, term totals 0.75 and 0.25.
    np.testing.assert_allclose(scores[0], [0.75 * math.log(1 + 1 / 0.75), 0.25 * math.log(5)])


def test_topic_cluster_keywords_are_topic_words(corpus, influence):
    keywords = extract_keywords(corpus.texts, influence, corpus.mean_directions, top_n=5)

    assert [entry.cluster for entry in keywords] == [0, 1, 2, 3]
    for entry, topic in zip(keywords, TOPICS, strict=True):
        assert len(entry.terms) == 5
        assert set(entry.terms) <= set(TOPIC_WORDS[topic]), (topic, entry.terms)
        assert list(entry.scores) == sorted(entry.scores, reverse=True)
        assert entry.relevance is None


def test_filler_words_rank_below_topic_words(corpus, influence):
    keywords = extract_keywords(
        corpus.texts, influence, corpus.mean_directions, top_n=12, temperature=20.0
    )

    for entry, topic in zip(keywords, TOPICS, strict=True):
        topic_positions = [i for i, t in enumerate(entry.terms) if t in TOPIC_WORDS[topic]]
        other_positions = [i for i, t in enumerate(entry.terms) if t not in TOPIC_WORDS[topic]]
        assert other_positions, entry.terms
        assert max(topic_positions) < min(other_positions), entry.terms


def test_geometry_promotes_favoured_term(corpus, influence):
    plain = extract_keywords(corpus.texts, influence, corpus.mean_directions, top_n=12)
    favoured = plain[1].terms[-1]

    # Only the favoured term lies on cluster 1's direction; every other term is random.
    embedder = topic_term_embedder({favoured: corpus.mean_directions[1]})
    reranked = extract_keywords(
        corpus.texts,
        influence,
        corpus.mean_directions,
        top_n=12,
        embed_terms=embedder,
        geometry_weight=0.9,
    )

    assert plain[1].terms[0] != favoured
    assert reranked[1].terms[0] == favoured
    assert reranked[1].relevance[0] == pytest.approx(max(reranked[1].relevance))
    candidates = extract_keywords(corpus.texts, influence, corpus.mean_directions, top_n=30)
    assert set(reranked[1].terms) <= set(candidates[1].terms)


def test_topic_embedding_relevance_is_positive(corpus, influence, topic_embedder):
    keywords = extract_keywords(
        corpus.texts, influence, corpus.mean_directions, top_n=5, embed_terms=topic_embedder
    )

    for entry, topic in zip(keywords, TOPICS, strict=True):
        assert set(entry.terms) <= set(TOPIC_WORDS[topic])
        assert min(entry.relevance) > 0.5
        assert all(0.0 <= score <= 1.0 for score in entry.scores)


def test_min_df_removes_rare_terms(corpus, influence):
    texts = list(corpus.texts)
    texts[0] = texts[0] + " zyzzyva"

    once = extract_keywords(texts, influence, corpus.mean_directions, top_n=30, min_df=1)
    twice = extract_keywords(texts, influence, corpus.mean_directions, top_n=30, min_df=2)

    assert "zyzzyva" in once[0].terms
    assert "zyzzyva" not in twice[0].terms


def test_keywords_frame_columns(corpus, influence):
    keywords = extract_keywords(corpus.texts, influence, corpus.mean_directions, top_n=3)

    frame = keywords_frame(keywords)

    assert frame.columns == ["cluster", "rank", "term", "score", "ctfidf", "relevance"]
    assert frame.height == 12
    assert frame["relevance"].null_count() == 12
    assert frame.filter(pl.col("cluster") == 2)["rank"].to_list() == [0, 1, 2]


def test_polars_series_of_texts(corpus, influence):
    from_list = extract_keywords(corpus.texts, influence, corpus.mean_directions, top_n=4)
    from_series = extract_keywords(
        pl.Series("text", corpus.texts), influence, corpus.mean_directions, top_n=4
    )

    assert from_series == from_list


def test_embedder_with_wrong_shape_raises(corpus, influence):
    def too_short(terms):
        return np.stack([hashed_unit_vector(term, 5) for term in terms])

    with pytest.raises(ValueError, match=r"embed_terms returned shape \(\d+, 5\)"):
        extract_keywords(corpus.texts, influence, corpus.mean_directions, embed_terms=too_short)


def test_keyword_input_errors(corpus, influence):
    with pytest.raises(ValueError, match="texts has 3 entries but vectors has 160 rows"):
        extract_keywords(corpus.texts[:3], influence, corpus.mean_directions)
    with pytest.raises(ValueError, match=r"texts\[1\] is NoneType"):
        extract_keywords(
            [corpus.texts[0], None, *corpus.texts[2:]], influence, corpus.mean_directions
        )
    with pytest.raises(ValueError, match=r"candidates \(5\) must be >= top_n \(10\)"):
        extract_keywords(corpus.texts, influence, corpus.mean_directions, candidates=5)


def test_relevance_subtracts_best_other_cluster():
    mean_directions = np.eye(3)
    directions = {
        "own": np.array([1.0, 0.0, 0.0]),
        "shared": np.array([1.0, 1.0, 0.0]) / math.sqrt(2),
        "other": np.array([0.0, 0.0, 1.0]),
    }

    def embed(terms):
        return np.stack([directions[term] for term in terms])

    result = rerank_by_geometry(
        [["shared", "other", "own"], [], []],
        [np.array([3.0, 2.0, 1.0]), np.array([]), np.array([])],
        mean_directions,
        embed,
        geometry_weight=1.0,
    )

    # cos to cluster 0 minus the best cos to clusters 1 and 2.
    assert result[0].terms == ("own", "shared", "other")
    np.testing.assert_allclose(result[0].relevance, [1.0, 0.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(result[0].scores, [1.0, 0.5, 0.0])
    np.testing.assert_allclose(result[0].ctfidf, [1.0, 3.0, 2.0])
    assert result[1].terms == ()


def test_geometry_weight_zero_keeps_ctfidf_order():
    def embed(terms):
        return np.stack([hashed_unit_vector(term, 3) for term in terms])

    result = rerank_by_geometry(
        [["b", "a", "c"]], [np.array([3.0, 2.0, 1.0])], np.eye(3)[:1], embed, geometry_weight=0.0
    )

    assert result[0].terms == ("b", "a", "c")
