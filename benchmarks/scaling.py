"""Scaling: teacher fit time and peak memory, and student labelling throughput, at N a decade apart.

Each measurement runs in a fresh child process, so that its peak resident memory (VmHWM) is
its own. The tables give the RSS after loading the input, the peak during the work, the wall
time and the CPU time of the process (all threads), which is less sensitive to other load.

Teacher: GEM (balance auto) and, for reference, spherical k-means at the same K on
all-MiniLM-L6-v2 embeddings (d = 384), either of the evaluation corpora (--base eval) or of
the bundled sample (--base sample, 8,400 documents, no new embedding needed). Sizes up to
the number of real embeddings are random subsets of them. Larger sizes are resampled:
each row is drawn from a von Mises-Fisher distribution centred on a random real embedding.
Its concentration makes the expected cosine to that centre --noise-cosine (0.95 by
default). The draw is exact: Wood's algorithm gives the cosine and a uniform tangent
direction the rest.

Student: a fastText student trained on GEM labels of the real embeddings labels N real texts
of the evaluation corpora (about 196,000; texts repeat once N exceeds them).

    .venv/bin/python benchmarks/scaling.py --sizes 2000 20000 200000 --k 64
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import polars as pl

from common import eval_embeddings, load_eval_corpus, machine_line, sample_embeddings
from quality import RESULTS, print_table

from gem_dagster.clustering import GEM, bessel_ratio, bessel_ratio_inverse, sample_vmf
from gem_dagster.student import StudentModel, StudentParams, split_for_distillation

CHILD_SCRIPT = """
import json, sys, time, warnings
from pathlib import Path
import numpy as np

def status_mb(field):
    # VmHWM starts afresh at exec, unlike ru_maxrss, which a child inherits from its parent.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

mode, data, k, seed, max_iter = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
if mode == "student":
    from gem_dagster.student import StudentModel, StudentParams
    texts = Path(data).read_text(encoding="utf-8").split("\\n")
    model = StudentModel.load(Path(sys.argv[6]), StudentParams())
    before = status_mb("VmRSS")
    started, cpu_started = time.perf_counter(), time.process_time()
    for start in range(0, len(texts), 8192):
        model.predict(texts[start:start + 8192])
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(json.dumps({"rows": len(texts), "seconds": seconds, "cpu_seconds": cpu, "rss_before": before,
                      "peak": status_mb("VmHWM")}))
else:
    from gem_dagster.clustering import GEM, SphericalKMeans
    vectors = np.load(data)
    before = status_mb("VmRSS")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started, cpu_started = time.perf_counter(), time.process_time()
        # max_iter 0 keeps the estimator's own default.
        limit = {"max_iter": max_iter} if max_iter else {}
        if mode == "gem":
            model = GEM(k, balance="auto", random_state=seed, **limit).fit(vectors)
        else:
            model = SphericalKMeans(k, random_state=seed, **limit).fit(vectors)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(json.dumps({"rows": len(vectors), "seconds": seconds, "cpu_seconds": cpu,
                      "iterations": int(model.n_iter_), "rss_before": before, "peak": status_mb("VmHWM")}))
"""


def resample_on_sphere(base: np.ndarray, count: int, mean_cosine: float, seed: int) -> np.ndarray:
    """Draw ``count`` rows, each from vMF(mu = a random row of ``base``, kappa), in float32.

    kappa solves A_d(kappa) = mean_cosine, so E[cos(row, mu)] = mean_cosine.
    """
    rng = np.random.default_rng(seed)
    dim = base.shape[1]
    kappa = float(bessel_ratio_inverse(dim, mean_cosine))
    centres = base[rng.integers(len(base), size=count)].astype(np.float64)

    # The last coordinate of vMF samples around the last axis has the cosine distribution
    # that every centre needs. The tangent part is a uniform direction orthogonal to the centre.
    pole = np.zeros(dim)
    pole[-1] = 1.0
    cosines = sample_vmf(count, pole, kappa, random_state=rng)[:, -1]
    tangent = rng.standard_normal((count, dim))
    tangent -= np.einsum("nd,nd->n", tangent, centres)[:, None] * centres
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    rows = cosines[:, None] * centres + np.sqrt(np.clip(1 - cosines**2, 0, None))[:, None] * tangent
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    print(f"  resampled {count:,} rows with kappa = {kappa:.0f} (A_d = {float(bessel_ratio(dim, kappa)):.3f})",
          flush=True)
    return rows.astype(np.float32)


def vectors_of_size(real: np.ndarray, size: int, mean_cosine: float, seed: int) -> tuple[np.ndarray, str]:
    rng = np.random.default_rng(seed)
    if size <= len(real):
        return real[rng.choice(len(real), size, replace=False)], "real subset"
    return resample_on_sphere(real, size, mean_cosine, seed), f"vMF resampled (cosine {mean_cosine})"


def run_child(arguments: list[str]) -> dict:
    output = subprocess.run([sys.executable, "-c", CHILD_SCRIPT, *arguments], capture_output=True, text=True)
    if output.returncode != 0:
        raise RuntimeError(f"child {arguments[0]} failed with exit code {output.returncode}:\n{output.stderr[-2000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def teacher_rows(real: np.ndarray, sizes: list[int], k: int, seed: int, mean_cosine: float,
                 folder: Path, methods: list[str], max_iter: int) -> list[dict]:
    rows = []
    for size in sizes:
        vectors, origin = vectors_of_size(real, size, mean_cosine, seed)
        data = folder / f"vectors-{size}.npy"
        np.save(data, vectors)
        del vectors
        for mode in methods:
            result = run_child([mode, str(data), str(k), str(seed), str(max_iter)])
            rows.append({
                "method": "GEM (balance auto)" if mode == "gem" else "spherical k-means",
                "N": size, "data": origin, "iterations": result["iterations"],
                "fit s": result["seconds"], "s/iter": result["seconds"] / max(result["iterations"], 1),
                "CPU s (all threads)": result["cpu_seconds"],
                "RSS after load (MB)": round(result["rss_before"]), "peak RSS (MB)": round(result["peak"]),
            })
            print(f"  {mode} N={size:,}: {result['seconds']:.1f} s, peak {result['peak']:.0f} MB", flush=True)
        data.unlink()
    return rows


def student_rows(texts: list[str], train_texts: list[str], train_vectors: np.ndarray, sizes: list[int], k: int,
                 seed: int, folder: Path) -> list[dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gem = GEM(k, balance="auto", random_state=seed).fit(train_vectors)
    labels = np.asarray(gem.labels_)
    split = split_for_distillation(labels, gem.predict_proba(train_vectors).max(axis=1), 200, seed=seed)
    model = StudentModel.train([train_texts[i] for i in split.train], labels[split.train], StudentParams(seed=seed))
    model_file = folder / "student.bin"
    model.save(model_file)

    rows = []
    for size in sizes:
        chosen = [" ".join(texts[i % len(texts)].split()) for i in range(size)]
        data = folder / f"texts-{size}.txt"
        data.write_text("\n".join(chosen), encoding="utf-8")
        result = run_child(["student", str(data), str(k), str(seed), "0", str(model_file)])
        rows.append({"N": size, "seconds": result["seconds"], "docs/s": size / result["seconds"],
                     "CPU s": result["cpu_seconds"],
                     "RSS after load (MB)": round(result["rss_before"]), "peak RSS (MB)": round(result["peak"])})
        print(f"  student N={size:,}: {size / result['seconds']:,.0f} docs/s", flush=True)
        data.unlink()
    return rows


def plot_scaling(teacher: list[dict], student: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for method in dict.fromkeys(row["method"] for row in teacher):
        rows = [row for row in teacher if row["method"] == method]
        sizes = [row["N"] for row in rows]
        axes[0].loglog(sizes, [row["fit s"] for row in rows], marker="o", label=method)
        axes[1].loglog(sizes, [row["peak RSS (MB)"] for row in rows], marker="o", label=method)
    axes[2].loglog([row["N"] for row in student], [row["seconds"] for row in student], marker="o",
                   label="student labelling")
    for axis, title in zip(axes, ["teacher fit time (s)", "teacher peak RSS (MB)", "student labelling time (s)"]):
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("documents N")
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=7)
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 20_000, 200_000])
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--base", default="eval", choices=["eval", "sample"],
                        help="real embeddings behind the sizes: evaluation corpora or the bundled sample")
    parser.add_argument("--documents", type=int, default=10_000,
                        help="embedded documents per corpus whose vectors seed the sizes (--base eval)")
    parser.add_argument("--corpora", nargs="+", default=["debian-sections", "mix"], choices=["debian-sections", "mix"])
    parser.add_argument("--noise-cosine", type=float, default=0.95,
                        help="expected cosine of a resampled row to its real centre")
    parser.add_argument("--methods", nargs="+", default=["gem", "spherical"], choices=["gem", "spherical"])
    parser.add_argument("--max-iter", type=int, default=0,
                        help="iteration limit of each teacher fit; 0 keeps each estimator's default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figure", default="docs/figures/scaling.png")
    arguments = parser.parse_args()
    print(f"machine: {machine_line()}\n")

    if arguments.base == "sample":
        sample, real = sample_embeddings()
        train_texts = sample["text"].to_list()
    else:
        frames, blocks = [], []
        for corpus in arguments.corpora:
            frame, vectors = eval_embeddings(corpus, arguments.documents, arguments.seed)
            frames.append(frame.select("text"))
            blocks.append(vectors)
        real = np.concatenate(blocks)
        train_texts = pl.concat(frames)["text"].to_list()
    all_texts = pl.concat([load_eval_corpus(corpus).select("text") for corpus in arguments.corpora])["text"]
    all_texts = all_texts.sample(fraction=1.0, shuffle=True, seed=arguments.seed).to_list()
    print(f"{len(real):,} real embeddings, {len(all_texts):,} real texts", flush=True)

    with tempfile.TemporaryDirectory(prefix="gem-scaling-") as folder:
        folder = Path(folder)
        print(f"\n## Teacher, K = {arguments.k}, d = {real.shape[1]}\n", flush=True)
        teacher = teacher_rows(real, arguments.sizes, arguments.k, arguments.seed, arguments.noise_cosine,
                               folder, arguments.methods, arguments.max_iter)
        print_table(teacher)
        print(f"\n## Student labelling (fastText, K = {arguments.k})\n", flush=True)
        student = student_rows(all_texts, train_texts, real, arguments.sizes, arguments.k, arguments.seed, folder)
        print_table(student)

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scaling.json").write_text(json.dumps({"teacher": teacher, "student": student}, indent=1))
    plot_scaling(teacher, student, arguments.figure)
    print(f"\nfigure: {arguments.figure}")


if __name__ == "__main__":
    main()
