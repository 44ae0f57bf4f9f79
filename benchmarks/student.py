"""Why distil: student throughput against the teacher's embedder, and agreement per labelling.

In one run:
1. documents per second of the student (gem_dagster's batched predict) against the
   embedder that the teacher needs, and against a bare fastText predict loop on the same
   texts (the wrapper's overhead);
2. peak memory while labelling one large shard through the same streaming code as the
   cluster_assignments asset, in a child process so that its peak is its own;
3. student agreement with the teacher on random held-out documents, for GEM labels and for
   k-means labels at the same K, on the embeddings of the whole bundled sample.

    .venv/bin/python benchmarks/student.py --large-shard 1000000
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from common import load_sample, machine_line, peak_rss_mb, sample_embeddings

from gem_dagster.clustering import GEM, KMeans
from gem_dagster.embedding import TextEmbedder
from gem_dagster.student import StudentModel, StudentParams, agreement_rate, split_for_distillation
from gem_dagster.taxonomy import geometric_influence_scores


def throughput(texts: list[str], model: StudentModel, embed_count: int) -> list[dict]:
    rows = []

    started = time.perf_counter()
    for start in range(0, len(texts), 8192):
        model.predict(texts[start : start + 8192])
    rows.append({"labeller": "student (gem_dagster, normalise + predict)",
                 "docs/s": len(texts) / (time.perf_counter() - started)})

    bare = model._model
    flat = [" ".join(text.split()) for text in texts]
    started = time.perf_counter()
    for start in range(0, len(flat), 8192):
        bare.predict(flat[start : start + 8192], k=1)
    rows.append({"labeller": "bare fastText predict on whitespace-flattened text",
                 "docs/s": len(texts) / (time.perf_counter() - started)})

    embedder = TextEmbedder()
    embedder.encode(texts[:8])
    started = time.perf_counter()
    embedder.encode(texts[:embed_count])
    rows.append({"labeller": f"teacher embedder all-MiniLM-L6-v2 ({embed_count} docs)",
                 "docs/s": embed_count / (time.perf_counter() - started)})
    return rows


LABEL_SCRIPT = """
from pathlib import Path
from gem_dagster.student import StudentModel, StudentParams
from gem_dagster.student.assign import assign_shard

def status_mb(field):
    # VmHWM starts afresh at exec, unlike ru_maxrss, which a child inherits from its parent.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

model = StudentModel.load(Path({model!r}), StudentParams())
before = status_mb("VmRSS")
report = assign_shard(model, Path({documents!r}), Path({target!r}), "large", batch_rows=8192)
print(report.documents, round(report.seconds, 1), round(before), round(status_mb("VmHWM")))
"""


def large_shard_memory(model: StudentModel, texts: list[str], documents: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        documents_file = folder / "documents.parquet"
        writer = pq.ParquetWriter(documents_file, pa.schema([("id", pa.string()), ("text", pa.string())]))
        short = [text[:300] for text in texts]
        for start in range(0, documents, 100_000):
            count = min(100_000, documents - start)
            writer.write_table(pa.table({
                "id": [f"doc-{index}" for index in range(start, start + count)],
                "text": [short[index % len(short)] for index in range(start, start + count)],
            }))
        writer.close()
        model_file = folder / "student.bin"
        model.save(model_file)

        script = LABEL_SCRIPT.format(benchmarks=str(Path(__file__).parent), model=str(model_file),
                                     documents=str(documents_file), target=str(folder / "out.parquet"))
        output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        labelled, seconds, before, after = output.stdout.split()
        return {"documents": int(labelled), "seconds": float(seconds), "RSS after model load (MB)": int(before),
                "peak RSS (MB)": int(after), "input MB": round(documents_file.stat().st_size / 2**20)}


def agreement_by_labelling(k: int, seed: int, per_cluster: int) -> list[dict]:
    sample, vectors = sample_embeddings()
    texts = sample["text"].to_list()
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gem = GEM(k, balance="auto", random_state=seed).fit(vectors)
        kmeans = KMeans(k, random_state=seed).fit(vectors)

    gem_probabilities = gem.predict_proba(vectors)
    gem_labels = gem_probabilities.argmax(axis=1)
    gem_influence = geometric_influence_scores(
        vectors, gem_labels, gem_probabilities, gem.mean_directions_, gem.concentrations_
    ).total
    centres = kmeans.cluster_centers_ / np.linalg.norm(kmeans.cluster_centers_, axis=1, keepdims=True)
    kmeans_labels = np.asarray(kmeans.labels_)
    # k-means has no GIS; cosine to the own centre is the closest analogue of centrality.
    kmeans_influence = np.einsum("nd,nd->n", vectors, centres[kmeans_labels])

    for name, labels, influence in [("GEM", gem_labels, gem_influence), ("k-means", kmeans_labels, kmeans_influence)]:
        split = split_for_distillation(labels, influence, per_cluster, seed=seed)
        model = StudentModel.train([texts[i] for i in split.train], labels[split.train], StudentParams(seed=seed))
        test = agreement_rate(model.predict([texts[i] for i in split.test])[0], labels[split.test])
        agreement = agreement_rate(model.predict([texts[i] for i in split.agreement])[0], labels[split.agreement])
        shares = np.bincount(labels, minlength=k) / len(labels)
        rows.append({"labels": name, "train docs": len(split.train), "held-out GIS test accuracy": test,
                     "agreement on random held-out": agreement, "largest cluster share": shares.max()})
    return rows


def print_table(rows: list[dict]) -> None:
    header = list(rows[0])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(format_cell(value) for value in row.values()) + " |")


def format_cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-cluster", type=int, default=200, help="GIS-selected training documents per cluster")
    parser.add_argument("--throughput-documents", type=int, default=50_000)
    parser.add_argument("--embed-documents", type=int, default=500)
    parser.add_argument("--large-shard", type=int, default=1_000_000, help="documents in the memory test shard")
    parser.add_argument("--parts", nargs="*", default=["agreement", "throughput", "memory"],
                        choices=["agreement", "throughput", "memory"], help="parts to run")
    arguments = parser.parse_args()
    print(f"machine: {machine_line()}\n")

    if "agreement" in arguments.parts:
        print(f"## Student agreement with the teacher, K = {arguments.k}, whole sample\n")
        print_table(agreement_by_labelling(arguments.k, arguments.seed, arguments.per_cluster))

    sample = load_sample()
    texts = sample["text"].to_list()
    labels = np.arange(len(texts)) % arguments.k
    model = StudentModel.train(texts, labels, StudentParams(epochs=5))
    if "throughput" in arguments.parts:
        repeated = [texts[i % len(texts)] for i in range(arguments.throughput_documents)]
        print(f"\n## Throughput on {len(repeated):,} sample texts\n")
        print_table(throughput(repeated, model, arguments.embed_documents))

    if "memory" in arguments.parts:
        print(f"\n## Labelling one shard of {arguments.large_shard:,} short documents (child process)\n")
        print_table([large_shard_memory(model, texts, arguments.large_shard)])
    print(f"\nbenchmark process peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
