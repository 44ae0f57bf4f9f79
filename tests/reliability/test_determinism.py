"""The taxonomy is a pure function of its inputs: the same inputs give the same JSON bytes.

Seed sampling, the GEM fit, the student, the mixture weights and the export each have a
same-seed test next to their unit tests (listed in docs/reliability.md), and
test_pipeline_reruns.py compares two whole runs.
"""

from __future__ import annotations

import hashlib
import json

from gem_dagster.taxonomy import build_taxonomy
from tests.taxonomy.conftest import TOPIC_WORDS, TOPICS, Corpus, make_corpus, topic_term_embedder


def taxonomy_checksum(corpus: Corpus) -> str:
    directions = {
        word: corpus.mean_directions[index]
        for index, topic in enumerate(TOPICS)
        for word in TOPIC_WORDS[topic]
    }
    taxonomy = build_taxonomy(
        corpus.texts,
        corpus.ids,
        corpus.vectors,
        corpus.labels,
        corpus.probabilities,
        corpus.mean_directions,
        corpus.concentrations,
        embed_terms=topic_term_embedder(directions),
        n_parents=2,
    )
    serialised = json.dumps(taxonomy.to_dict(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(serialised.encode("utf-8")).hexdigest()


def test_taxonomy_same_inputs_same_json() -> None:
    first = taxonomy_checksum(make_corpus(seed=0))
    second = taxonomy_checksum(make_corpus(seed=0))

    assert first == second


def test_taxonomy_checksum_sees_input_change() -> None:
    # Shows that the checksum above covers the content: other texts and vectors change it.
    assert taxonomy_checksum(make_corpus(seed=0)) != taxonomy_checksum(make_corpus(seed=1))
