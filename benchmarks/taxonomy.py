"""Representative purity: GIS against random, confidence-only and centre-only picks.

Fits GEM on the embeddings of the whole bundled sample, picks the top-R representatives of
every cluster by each method (all with the same near-duplicate suppression), and reports
purity: the share of representatives whose human label equals the majority label of their
cluster, averaged over clusters. Two label sets are scored: the source, and the source's own
finer label. Random picks are averaged over several seeds.

    .venv/bin/python benchmarks/taxonomy.py --k 24 --representatives 10
"""

from __future__ import annotations

import argparse
import warnings
from collections import Counter

import numpy as np

from common import machine_line, sample_embeddings

from gem_dagster.clustering import GEM
from gem_dagster.taxonomy import geometric_influence_scores, select_representatives


def purity(picks: list[np.ndarray], cluster_labels: np.ndarray, human: np.ndarray) -> float:
    scores = []
    for cluster, rows in enumerate(picks):
        members = human[cluster_labels == cluster]
        if len(rows) == 0 or len(members) == 0:
            continue
        majority = Counter(members.tolist()).most_common(1)[0][0]
        scores.append(float(np.mean(human[rows] == majority)))
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=24)
    parser.add_argument("--representatives", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--random-draws", type=int, default=10)
    arguments = parser.parse_args()
    print(f"machine: {machine_line()}\n")

    sample, vectors = sample_embeddings()
    sources = sample["source"].to_numpy()
    fine = (sample["source"] + ":" + sample["label"].fill_null("")).to_numpy()
    results: dict[str, list[tuple[float, float]]] = {}

    for seed in arguments.seeds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = GEM(arguments.k, balance="auto", random_state=seed).fit(vectors)
        probabilities = model.predict_proba(vectors)
        labels = probabilities.argmax(axis=1)
        influence = geometric_influence_scores(
            vectors, labels, probabilities, model.mean_directions_, model.concentrations_
        )
        for method in ["gis", "confidence", "centre", "random"]:
            draws = range(arguments.random_draws) if method == "random" else [0]
            for draw in draws:
                picks = select_representatives(
                    vectors, influence, count=arguments.representatives, method=method, seed=draw
                )
                results.setdefault(method, []).append(
                    (purity(picks, labels, sources), purity(picks, labels, fine))
                )

    print(f"K = {arguments.k}, top {arguments.representatives} representatives per cluster, "
          f"GEM seeds {arguments.seeds}, {arguments.random_draws} random draws per seed\n")
    print("| picks | purity by source | purity by source:label |")
    print("|---|---|---|")
    for method, values in results.items():
        by_source = np.mean([value[0] for value in values])
        by_fine = np.mean([value[1] for value in values])
        print(f"| {method} | {by_source:.3f} | {by_fine:.3f} |")


if __name__ == "__main__":
    main()
