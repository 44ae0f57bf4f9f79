"""GEM against k-means, spherical k-means and vanilla vMF, in one run.

Part 1 fits every method on real all-MiniLM-L6-v2 embeddings of the bundled sample and scores
balance and agreement with the human labels (source, and source plus the source's own label).
Part 2 times iterations of faiss spherical k-means and a GEM fit to convergence at N = 200k,
d = 384, K = 64 on synthetic anisotropic (narrow-cone) data of that shape, because no corpus
that large can be embedded on a CPU here. The float32 matrix-product rate of the machine is
printed as the physical reference.

    .venv/bin/python benchmarks/clustering.py              # both parts
    .venv/bin/python benchmarks/clustering.py --skip-large # part 1 only
    .venv/bin/python benchmarks/clustering.py --skip-quality # part 2 only
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from common import machine_line, matmul_gflops, peak_rss_mb, sample_embeddings

from gem_dagster.clustering import (
    GEM,
    SphericalKMeans,
    VanillaVMF,
    adjusted_rand_index,
    balance_entropy_of_labels,
    normalized_mutual_info,
    sample_anisotropic_cone,
)


def faiss_spherical_kmeans(vectors: np.ndarray, k: int, seed: int, iterations: int):
    import faiss

    # Without max_points_per_centroid faiss trains on at most 256 points per centroid.
    model = faiss.Kmeans(
        vectors.shape[1], k, niter=iterations, spherical=True, seed=seed, verbose=False,
        max_points_per_centroid=len(vectors),
    )
    started = time.perf_counter()
    model.train(np.ascontiguousarray(vectors, dtype=np.float32))
    seconds = time.perf_counter() - started
    _, labels = model.index.search(np.ascontiguousarray(vectors, dtype=np.float32), 1)
    return labels[:, 0], seconds, iterations


def sklearn_kmeans(vectors: np.ndarray, k: int, seed: int):
    from sklearn.cluster import KMeans as SklearnKMeans

    model = SklearnKMeans(n_clusters=k, n_init=1, random_state=seed, max_iter=100)
    started = time.perf_counter()
    model.fit(vectors)
    return model.labels_, time.perf_counter() - started, model.n_iter_


def own_estimator(estimator, vectors: np.ndarray):
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(vectors)
    return np.asarray(estimator.labels_), time.perf_counter() - started, int(estimator.n_iter_)


def quality_rows(k: int, seed: int, lambdas: list[float]) -> list[dict]:
    sample, vectors = sample_embeddings()
    sources = sample["source"].to_numpy()
    fine = (sample["source"] + ":" + sample["label"].fill_null("")).to_numpy()

    runs = {
        "scikit-learn KMeans (Euclidean)": lambda: sklearn_kmeans(vectors, k, seed),
        "faiss spherical k-means (25 iter)": lambda: faiss_spherical_kmeans(vectors, k, seed, 25),
        "gem_dagster SphericalKMeans": lambda: own_estimator(SphericalKMeans(k, random_state=seed), vectors),
        "vanilla vMF EM (learned prior)": lambda: own_estimator(VanillaVMF(k, random_state=seed), vectors),
        "GEM, balance=auto": lambda: own_estimator(GEM(k, balance="auto", random_state=seed), vectors),
    }
    for value in lambdas:
        runs[f"GEM, balance={value:g}"] = lambda value=value: own_estimator(
            GEM(k, balance=value, random_state=seed), vectors
        )

    rows = []
    for name, run in runs.items():
        labels, seconds, iterations = run()
        shares = np.bincount(labels, minlength=k) / len(labels)
        rows.append(
            {
                "method": name,
                "iterations": iterations,
                "seconds": seconds,
                "s/iter": seconds / max(iterations, 1),
                "balance entropy": balance_entropy_of_labels(labels, k),
                "largest share": shares.max(),
                "smallest share": shares.min(),
                "NMI source": normalized_mutual_info(sources, labels),
                "ARI source": adjusted_rand_index(sources, labels),
                "NMI source:label": normalized_mutual_info(fine, labels),
            }
        )
        print(f"  done: {name} ({seconds:.1f} s)", flush=True)
    return rows


def timing_rows(n: int, dim: int, k: int, seed: int, iterations: int, faiss_runs: int) -> list[dict]:
    """Time faiss spherical k-means and one GEM fit to convergence on the same data.

    The faiss runs are split before and after the GEM fit, so that a change in the machine's
    speed during the run (other tenants of a shared host) shows up in their spread and the
    median compares like with like.
    """
    vectors, _ = sample_anisotropic_cone(n, dim=dim, n_topics=k, random_state=seed)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)

    def faiss_seconds_per_iteration() -> float:
        _, seconds, _ = faiss_spherical_kmeans(vectors, k, seed, iterations)
        return seconds / iterations

    faiss_runs_before = (faiss_runs + 1) // 2
    faiss_per_iteration = [faiss_seconds_per_iteration() for _ in range(faiss_runs_before)]

    gem = GEM(k, balance="auto", random_state=seed, memory_budget_mb=2048)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gem.fit(vectors)
    gem_seconds = time.perf_counter() - started
    gem_iterations = np.array([record.seconds for record in gem.history_])

    faiss_per_iteration += [faiss_seconds_per_iteration() for _ in range(faiss_runs - faiss_runs_before)]
    faiss_median = float(np.median(faiss_per_iteration))
    gem_median = float(np.median(gem_iterations))
    gem_first = float(np.median(gem_iterations[:iterations]))
    spread = ", ".join(f"{value:.3f}" for value in faiss_per_iteration)

    return [
        {"method": f"faiss spherical k-means, all points ({iterations} iterations, median of {faiss_runs} runs: {spread})",
         "iterations": iterations, "s/iter": faiss_median, "total s": faiss_median * iterations,
         "ratio to faiss": 1.0},
        {"method": f"GEM, dual E-step, balance auto, to convergence (median over {gem.n_iter_} iterations)",
         "iterations": int(gem.n_iter_), "s/iter": gem_median, "total s": gem_seconds,
         "ratio to faiss": gem_median / faiss_median},
        {"method": f"GEM, the same fit, median over its first {iterations} iterations",
         "iterations": iterations, "s/iter": gem_first, "total s": float(gem_iterations[:iterations].sum()),
         "ratio to faiss": gem_first / faiss_median},
    ]


def print_table(rows: list[dict]) -> None:
    header = list(rows[0])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = [f"{value:.3f}" if isinstance(value, float) else str(value) for value in row.values()]
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=24, help="clusters for the quality table")
    parser.add_argument("--lambdas", type=float, nargs="*", default=[0.0, 50.0, 500.0, 5000.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-large", action="store_true", help="skip the N = 200k timing part")
    parser.add_argument("--skip-quality", action="store_true", help="skip the sample quality part")
    parser.add_argument("--large-n", type=int, default=200_000)
    parser.add_argument("--large-k", type=int, default=64)
    parser.add_argument("--large-iterations", type=int, default=10)
    parser.add_argument("--faiss-runs", type=int, default=3, help="faiss timings around the GEM fit")
    arguments = parser.parse_args()

    print(f"machine: {machine_line()}")
    print(f"float32 matrix product: {matmul_gflops():.1f} GFLOP/s (torch.mm, 2048 x 2048)")

    if not arguments.skip_quality:
        print(f"\n## Quality on the bundled sample (K = {arguments.k}, seed {arguments.seed})\n")
        print_table(quality_rows(arguments.k, arguments.seed, arguments.lambdas))

    if not arguments.skip_large:
        print(f"\n## Time per iteration, N = {arguments.large_n:,}, d = 384, K = {arguments.large_k}\n")
        print_table(
            timing_rows(
                arguments.large_n, 384, arguments.large_k, arguments.seed,
                arguments.large_iterations, arguments.faiss_runs,
            )
        )
    print(f"\npeak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
