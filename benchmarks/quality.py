"""GEM against k-means, spherical k-means and vanilla vMF on real labelled corpora, in one run.

For each corpus (from scripts/fetch_eval_corpora.py) a stratified subsample is embedded with
all-MiniLM-L6-v2 (cached under .gem/bench/eval/), and every method is fitted on the same
vectors at the same K. Per method the run reports:

- balance entropy H(shares)/log K and the largest cluster share of the hard labels;
- NMI and ARI against the human labels (Debian Section, or source in the mix);
- student agreement: a fastText student trained on the top documents per cluster by GIS,
  scored on a random fifth of the documents it never saw (as benchmarks/student.py does);
- GIS purity: the share of the top-10 GIS representatives of a cluster that carry the
  cluster's majority human label, averaged over clusters;
- iterations, fit time and time per iteration.

k-means and spherical k-means have no vMF parameters, so their GIS uses the vMF that the
moments of their partition define: mean direction and maximum-likelihood concentration of
each cluster, and soft assignments under a uniform prior. A TF-IDF + SVD(100) + k-means row
is the text-only reference, and faiss spherical k-means and scikit-learn KMeans (fitted as
benchmarks/clustering.py fits them) are library references, scored on balance and labels
only. For GEM, GIS representatives are also compared with confidence-only, centre-only and
random picks.

    .venv/bin/python benchmarks/quality.py --corpora debian-sections mix --documents 10000 --k classes 64
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from collections import Counter
from dataclasses import dataclass

import numpy as np

from common import CACHE, eval_embeddings, machine_line, peak_rss_mb

from gem_dagster.clustering import (
    GEM,
    KMeans,
    SphericalKMeans,
    VanillaVMF,
    adjusted_rand_index,
    find_objective_decreases,
    balance_entropy_of_labels,
    bessel_ratio_inverse,
    log_vmf_normalizer,
    normalized_mutual_info,
)
from gem_dagster.student import StudentModel, StudentParams, agreement_rate, split_for_distillation
from gem_dagster.taxonomy import geometric_influence_scores, select_representatives

METHODS = ("GEM (balance auto)", "k-means (Euclidean)", "spherical k-means", "vanilla vMF")
RESULTS = CACHE / "results"


@dataclass
class Partition:
    """One method's clustering with the vMF view that GIS needs."""

    method: str
    labels: np.ndarray
    probabilities: np.ndarray
    mean_directions: np.ndarray
    concentrations: np.ndarray
    seconds: float
    iterations: int


def moment_vmf(vectors: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return directions, concentrations and uniform-prior soft assignments of a hard partition."""
    dim = vectors.shape[1]
    sums = np.zeros((k, dim))
    np.add.at(sums, labels, vectors.astype(np.float64))
    counts = np.bincount(labels, minlength=k)
    lengths = np.linalg.norm(sums, axis=1)

    # An empty cluster keeps the overall mean direction and the smallest concentration, so
    # that it takes no documents in the soft assignment.
    overall = vectors.sum(axis=0, dtype=np.float64)
    directions = np.where(lengths[:, None] > 0, sums / np.maximum(lengths, 1e-300)[:, None],
                          overall / np.linalg.norm(overall))
    mean_resultant = np.where(counts > 0, lengths / np.maximum(counts, 1), 0.0)
    concentrations = np.asarray(bessel_ratio_inverse(dim, np.clip(mean_resultant, 0.0, 1.0 - 1e-9)))

    logits = np.asarray(log_vmf_normalizer(dim, concentrations))[None, :] + (
        vectors.astype(np.float64) @ directions.T
    ) * concentrations[None, :]
    logits -= logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return directions, concentrations, probabilities


def fit_methods(vectors: np.ndarray, k: int, seed: int, methods=METHODS) -> list[Partition]:
    """Fit each method on the same vectors at the same K."""
    partitions = []
    for method in methods:
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if method == "GEM (balance auto)":
                model = GEM(k, balance="auto", random_state=seed).fit(vectors)
            elif method == "k-means (Euclidean)":
                model = KMeans(k, random_state=seed).fit(vectors)
            elif method == "spherical k-means":
                model = SphericalKMeans(k, random_state=seed).fit(vectors)
            elif method == "vanilla vMF":
                model = VanillaVMF(k, random_state=seed).fit(vectors)
            else:
                raise ValueError(f"unknown method {method!r}: choose from {METHODS}")
        seconds = time.perf_counter() - started

        if hasattr(model, "concentrations_"):
            probabilities = model.predict_proba(vectors)
            labels = probabilities.argmax(axis=1)
            directions, concentrations = model.mean_directions_, model.concentrations_
        else:
            labels = np.asarray(model.labels_)
            directions, concentrations, probabilities = moment_vmf(vectors, labels, k)
        partitions.append(Partition(method, labels, probabilities, np.asarray(directions),
                                    np.asarray(concentrations), seconds, int(model.n_iter_)))
        print(f"  fitted {method}: {seconds:.1f} s, {model.n_iter_} iterations", flush=True)
        if isinstance(model, GEM):
            decreases = find_objective_decreases(model.objective_trace_, model.objective_steps_)
            print(f"  GEM objective: {len(model.objective_trace_)} half-steps, {len(decreases)} decreases",
                  flush=True)
    return partitions


def representative_purity(picks: list[np.ndarray], labels: np.ndarray, human: np.ndarray) -> float:
    scores = []
    for cluster, rows in enumerate(picks):
        members = human[labels == cluster]
        if len(rows) == 0 or len(members) == 0:
            continue
        majority = Counter(members.tolist()).most_common(1)[0][0]
        scores.append(float(np.mean(human[rows] == majority)))
    return float(np.mean(scores))


def influence_of(vectors: np.ndarray, partition: Partition):
    return geometric_influence_scores(vectors, partition.labels, partition.probabilities,
                                      partition.mean_directions, partition.concentrations)


def student_agreement(texts: list[str], labels: np.ndarray, influence: np.ndarray, per_cluster: int,
                      seed: int) -> float:
    split = split_for_distillation(labels, influence, per_cluster, seed=seed)
    model = StudentModel.train([texts[i] for i in split.train], labels[split.train], StudentParams(seed=seed))
    predicted = model.predict([texts[i] for i in split.agreement])[0]
    return agreement_rate(predicted, labels[split.agreement])


def reference_row(method: str, labels: np.ndarray, human: np.ndarray, k: int, seconds: float,
                  iterations: int | None) -> dict:
    """Score a method that only gives hard labels, without student or GIS."""
    labels = np.asarray(labels)
    shares = np.bincount(labels, minlength=k) / len(labels)
    return {
        "method": method,
        "balance entropy": balance_entropy_of_labels(labels, k),
        "largest share": float(shares.max()),
        "NMI": normalized_mutual_info(human, labels),
        "ARI": adjusted_rand_index(human, labels),
        "student agreement": None,
        "GIS purity": None,
        "iterations": iterations,
        "fit s": seconds,
        "s/iter": seconds / iterations if iterations else None,
    }


def library_references(vectors: np.ndarray, human: np.ndarray, k: int, seed: int) -> list[dict]:
    """faiss spherical k-means and scikit-learn KMeans, fitted as benchmarks/clustering.py does."""
    from clustering import faiss_spherical_kmeans, sklearn_kmeans

    labels, seconds, iterations = faiss_spherical_kmeans(vectors, k, seed, 25)
    rows = [reference_row("faiss spherical k-means (25 iterations)", labels, human, k, seconds, iterations)]
    labels, seconds, iterations = sklearn_kmeans(vectors, k, seed)
    rows.append(reference_row("scikit-learn KMeans", labels, human, k, seconds, int(iterations)))
    return rows


def tfidf_reference(texts: list[str], human: np.ndarray, k: int, seed: int) -> dict:
    from sklearn.cluster import KMeans as SklearnKMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    started = time.perf_counter()
    matrix = TfidfVectorizer(max_features=50_000, sublinear_tf=True, stop_words="english").fit_transform(texts)
    reduced = TruncatedSVD(100, random_state=seed).fit_transform(matrix)
    model = SklearnKMeans(k, n_init=1, random_state=seed).fit(reduced)
    return reference_row("TF-IDF + SVD(100) + k-means (text only)", model.labels_, human, k,
                         time.perf_counter() - started, None)


def quality_rows(texts: list[str], vectors: np.ndarray, human: np.ndarray, k: int, seed: int,
                 per_cluster: int, representatives: int) -> tuple[list[dict], dict, list[Partition]]:
    rows = []
    partitions = fit_methods(vectors, k, seed)
    selection_purity = {}
    for partition in partitions:
        shares = np.bincount(partition.labels, minlength=k) / len(partition.labels)
        influence = influence_of(vectors, partition)
        picks = select_representatives(vectors, influence, count=representatives, method="gis")
        rows.append({
            "method": partition.method,
            "balance entropy": balance_entropy_of_labels(partition.labels, k),
            "largest share": float(shares.max()),
            "NMI": normalized_mutual_info(human, partition.labels),
            "ARI": adjusted_rand_index(human, partition.labels),
            "student agreement": student_agreement(texts, partition.labels, influence.total, per_cluster, seed),
            "GIS purity": representative_purity(picks, partition.labels, human),
            "iterations": partition.iterations,
            "fit s": partition.seconds,
            "s/iter": partition.seconds / max(partition.iterations, 1),
        })
        print(f"  scored {partition.method}", flush=True)

        if partition.method.startswith("GEM"):
            for method in ("gis", "centre", "confidence", "random"):
                draws = range(10) if method == "random" else [0]
                selection_purity[method] = float(np.mean([
                    representative_purity(
                        select_representatives(vectors, influence, count=representatives, method=method, seed=draw),
                        partition.labels, human)
                    for draw in draws
                ]))
    rows.extend(library_references(vectors, human, k, seed))
    rows.append(tfidf_reference(texts, human, k, seed))
    return rows, selection_purity, partitions


def format_cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_table(rows: list[dict]) -> None:
    header = list(rows[0])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(format_cell(value) for value in row.values()) + " |")


def plot_quality(results: list[dict], path) -> None:
    """Draw balance entropy against NMI per method, one panel per corpus and K."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.8), squeeze=False)
    for axis, result in zip(axes[0], results):
        for row in result["rows"]:
            axis.scatter(row["balance entropy"], row["NMI"], s=40)
            axis.annotate(row["method"].split(" (")[0], (row["balance entropy"], row["NMI"]),
                          fontsize=7, xytext=(3, 3), textcoords="offset points")
        axis.set_title(f"{result['corpus']}, N={result['documents']:,}, K={result['k']}", fontsize=9)
        axis.set_xlabel("balance entropy H(shares)/log K")
        axis.set_ylabel("NMI against human labels")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def resolve_ks(requested: list[str], classes: int) -> list[int]:
    ks = []
    for value in requested:
        if value == "classes":
            ks.append(classes)
        elif value.isdigit() and int(value) >= 2:
            ks.append(int(value))
        else:
            raise SystemExit(f"invalid --k value {value!r}: use 'classes' or an integer of at least 2")
    return list(dict.fromkeys(ks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", nargs="+", default=["debian-sections", "mix"],
                        choices=["debian-sections", "mix"])
    parser.add_argument("--documents", type=int, default=20_000,
                        help="documents in the stratified subsample of each corpus")
    parser.add_argument("--k", nargs="+", default=["classes", "64"],
                        help="cluster counts: integers, or 'classes' for the number of human labels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-cluster", type=int, default=200, help="GIS-selected student training documents per cluster")
    parser.add_argument("--representatives", type=int, default=10, help="GIS representatives per cluster for purity")
    parser.add_argument("--figure", default="docs/figures/quality.png", help="PNG with balance against NMI")
    arguments = parser.parse_args()
    print(f"machine: {machine_line()}\n")

    results = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    for corpus in arguments.corpora:
        subsample, vectors = eval_embeddings(corpus, arguments.documents, arguments.seed)
        texts = subsample["text"].to_list()
        human = subsample["label"].to_numpy()
        classes = len(set(human.tolist()))
        for k in resolve_ks(arguments.k, classes):
            print(f"\n## {corpus}: {subsample.height:,} documents, {classes} labels, K = {k}\n", flush=True)
            rows, selection, _ = quality_rows(texts, vectors, human, k, arguments.seed,
                                              arguments.per_cluster, arguments.representatives)
            print_table(rows)
            print("\nGEM representatives, purity by selection: "
                  + ", ".join(f"{name} {value:.3f}" for name, value in selection.items()), flush=True)
            result = {"corpus": corpus, "documents": subsample.height, "classes": classes, "k": k,
                      "rows": rows, "gem_selection_purity": selection}
            results.append(result)
            (RESULTS / f"quality-{corpus}-k{k}.json").write_text(json.dumps(result, indent=1))

    plot_quality(results, arguments.figure)
    print(f"\nfigure: {arguments.figure}\npeak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
