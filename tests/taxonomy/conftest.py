"""Synthetic topic corpus for the taxonomy tests: separated unit vectors and matching texts."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pytest

from .chat_stub import running_stub

TOPIC_WORDS: dict[str, list[str]] = {
    "space": ["planet", "orbit", "telescope", "galaxy", "rocket", "astronaut", "comet", "nebula"],
    "cooking": ["recipe", "flour", "oven", "butter", "garlic", "simmer", "pasta", "spice"],
    "football": ["striker", "referee", "stadium", "penalty", "midfield", "league", "goal", "coach"],
    "finance": ["bond", "equity", "dividend", "inflation", "portfolio", "broker", "hedge", "yield"],
}
TOPICS = list(TOPIC_WORDS)

# Words shared by every topic, so c-TF-IDF has common terms to push down.
FILLER_WORDS = ["people", "report", "today", "week", "story", "local", "great", "year"]

DIM = 24
PER_CLUSTER = 40
KAPPA = 50.0


@dataclass(frozen=True)
class Corpus:
    texts: list[str]
    ids: list[str]
    vectors: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray
    mean_directions: np.ndarray
    concentrations: np.ndarray

    @property
    def n_clusters(self) -> int:
        return self.mean_directions.shape[0]


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def hashed_unit_vector(term: str, dim: int = DIM) -> np.ndarray:
    """Deterministic pseudo-random unit vector for a term, the same in every run."""
    seed = int.from_bytes(hashlib.sha256(term.encode("utf-8")).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(dim)
    return vector / np.linalg.norm(vector)


def topic_term_embedder(term_direction: dict[str, np.ndarray]):
    """Term embedding that puts listed terms near a given direction and the rest at random."""

    def embed_terms(terms: list[str]) -> np.ndarray:
        rows = []
        for term in terms:
            if term in term_direction:
                row = term_direction[term] + 0.05 * hashed_unit_vector(term)
            else:
                row = hashed_unit_vector(term)
            rows.append(row / np.linalg.norm(row))
        return np.asarray(rows, dtype=np.float32)

    return embed_terms


def make_corpus(n_topics: int = 4, per_cluster: int = PER_CLUSTER, seed: int = 0) -> Corpus:
    """Build ``n_topics`` clusters around the first coordinate axes with topic-word texts."""
    rng = np.random.default_rng(seed)
    mean_directions = np.eye(DIM)[:n_topics]

    labels = np.repeat(np.arange(n_topics), per_cluster)
    vectors = unit_rows(mean_directions[labels] + 0.12 * rng.standard_normal((labels.size, DIM)))

    texts = []
    for label in labels:
        topic_words = rng.choice(TOPIC_WORDS[TOPICS[label]], size=6, replace=True)
        filler = rng.choice(FILLER_WORDS, size=3, replace=False)
        words = [*topic_words, *filler, "the", "and", "of"]
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize() + ".")

    logits = KAPPA * vectors @ mean_directions.T
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)

    return Corpus(
        texts=texts,
        ids=[f"doc-{index}" for index in range(labels.size)],
        vectors=vectors.astype(np.float32),
        labels=labels,
        probabilities=probabilities,
        mean_directions=mean_directions,
        concentrations=np.full(n_topics, KAPPA),
    )


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    return make_corpus()


@pytest.fixture(scope="session")
def topic_embedder(corpus):
    """Term embedding that places each topic word near its topic's mean direction."""
    directions = {
        word: corpus.mean_directions[index]
        for index, topic in enumerate(TOPICS)
        for word in TOPIC_WORDS[topic]
    }
    return topic_term_embedder(directions)


@pytest.fixture
def stub():
    """Stub chat-completions server on 127.0.0.1, stopped after the test."""
    with running_stub() as server:
        yield server
