"""Split the seed sample for distillation and measure the student against the teacher."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DistillationSplit:
    """Row indices into the seed sample for each role."""

    train: np.ndarray
    test: np.ndarray
    agreement: np.ndarray
    short_clusters: dict[int, int]


def split_for_distillation(
    labels: np.ndarray,
    influence: np.ndarray,
    per_cluster: int,
    agreement_share: float = 0.2,
    test_share: float = 0.1,
    seed: int = 0,
) -> DistillationSplit:
    """Choose the student's training, test and agreement rows.

    A random ``agreement_share`` of the seed sample is set aside first, so that agreement
    is measured on documents the student never saw, drawn without regard to GIS. From
    the rest, the top ``per_cluster`` documents of every cluster by GIS form a balanced
    set, and a random ``test_share`` of that set is held out as the test split.
    ``short_clusters`` maps clusters with fewer than ``per_cluster`` candidates to the
    number they had.
    """
    if not 0 < agreement_share < 1 or not 0 <= test_share < 1:
        raise ValueError(
            f"invalid shares agreement={agreement_share}, test={test_share}: use 0 < agreement < 1 "
            "and 0 <= test < 1"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    n_agreement = max(1, int(round(agreement_share * len(labels))))
    agreement = np.sort(order[:n_agreement])
    candidates = order[n_agreement:]

    selected: list[np.ndarray] = []
    short: dict[int, int] = {}
    for cluster in np.unique(labels):
        members = candidates[labels[candidates] == cluster]
        ranked = members[np.argsort(-influence[members], kind="stable")]
        if len(ranked) < per_cluster:
            short[int(cluster)] = len(ranked)
        selected.append(ranked[:per_cluster])
    balanced = rng.permutation(np.concatenate(selected))

    n_test = int(round(test_share * len(balanced)))
    return DistillationSplit(
        train=np.sort(balanced[n_test:]),
        test=np.sort(balanced[:n_test]),
        agreement=agreement,
        short_clusters=short,
    )


def agreement_rate(student_labels: np.ndarray, teacher_labels: np.ndarray) -> float:
    """Share of documents on which the student's cluster equals the teacher's."""
    if len(student_labels) != len(teacher_labels):
        raise ValueError(
            f"{len(student_labels)} student labels but {len(teacher_labels)} teacher labels"
        )
    if len(student_labels) == 0:
        return float("nan")
    return float(np.mean(np.asarray(student_labels) == np.asarray(teacher_labels)))
