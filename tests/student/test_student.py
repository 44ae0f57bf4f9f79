"""The fastText student library: normalisation, training, splits, save and load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gem_dagster.student import (
    StudentModel,
    StudentParams,
    agreement_rate,
    normalize_text,
    split_for_distillation,
)

TOPICS = {
    0: "kernel scheduler interrupt driver module memory page",
    1: "president congress nation economy citizens war",
    2: "noun verb adjective word meaning sense",
}


def topic_texts(per_topic: int, seed: int = 0) -> tuple[list[str], list[int]]:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for label, vocabulary in TOPICS.items():
        words = vocabulary.split()
        for _ in range(per_topic):
            texts.append(" ".join(rng.choice(words, size=12)))
            labels.append(label)
    return texts, labels


def test_normalize_lowercases_and_flattens() -> None:
    assert normalize_text("Hello\n\tWORLD  again\r\n", max_tokens=10) == "hello world again"


def test_normalize_truncates_tokens() -> None:
    assert normalize_text("a b c d e", max_tokens=3) == "a b c"


def test_student_learns_separable_topics() -> None:
    texts, labels = topic_texts(40)
    model = StudentModel.train(texts, labels, StudentParams(epochs=20))

    predicted, probabilities = model.predict(["the scheduler and the driver module", "congress and the economy"])

    assert predicted.tolist() == [0, 1]
    assert predicted.dtype == np.int64
    assert np.all((probabilities > 0.5) & (probabilities <= 1.0))


def test_training_is_deterministic_for_seed() -> None:
    texts, labels = topic_texts(30)
    probe, _ = topic_texts(5, seed=9)

    first = StudentModel.train(texts, labels, StudentParams(seed=4)).predict(probe)
    second = StudentModel.train(texts, labels, StudentParams(seed=4)).predict(probe)

    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_allclose(first[1], second[1])


def test_training_failure_names_the_cause() -> None:
    texts, labels = topic_texts(5)

    with pytest.raises(RuntimeError, match="Unrecognized loss name"):
        StudentModel.train(texts, labels, StudentParams(loss="no-such-loss"))


def test_save_and_load_give_same_predictions(tmp_path: Path) -> None:
    texts, labels = topic_texts(30)
    params = StudentParams()
    model = StudentModel.train(texts, labels, params)
    model.save(tmp_path / "student.bin")

    loaded = StudentModel.load(tmp_path / "student.bin", params)

    np.testing.assert_array_equal(loaded.predict(texts)[0], model.predict(texts)[0])


def test_load_missing_model_names_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        StudentModel.load(tmp_path / "missing.bin", StudentParams())


def test_train_rejects_mismatched_labels() -> None:
    with pytest.raises(ValueError, match="3 texts but 2 labels"):
        StudentModel.train(["a", "b", "c"], [0, 1], StudentParams())


def test_split_is_balanced_and_disjoint() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], [200, 100, 30])
    influence = rng.normal(size=len(labels))

    split = split_for_distillation(labels, influence, per_cluster=40, seed=1)

    balanced = np.concatenate([split.train, split.test])
    counts = np.bincount(labels[balanced], minlength=3)
    assert counts[0] == counts[1] == 40
    assert counts[2] < 40
    assert split.short_clusters == {2: counts[2]}
    assert np.intersect1d(balanced, split.agreement).size == 0
    assert len(split.agreement) == 66


def test_split_takes_highest_influence_first() -> None:
    labels = np.zeros(100, dtype=int)
    influence = np.arange(100, dtype=float)

    split = split_for_distillation(labels, influence, per_cluster=10, agreement_share=0.1, test_share=0.0)

    chosen = influence[split.train]
    remaining = np.setdiff1d(np.arange(100), np.concatenate([split.train, split.agreement]))
    assert chosen.min() > influence[remaining].max()


def test_agreement_rate_counts_matches() -> None:
    assert agreement_rate(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4])) == 0.75
