"""Embedding throughput: the pipeline's embedder against a plain SentenceTransformer loop.

Both encode the same texts from the bundled sample with the same model, device, batch size
and sequence length, alternating over several rounds so that load from other processes
affects both sides alike. Prints a Markdown table for docs/benchmarks.md.

    .venv/bin/python benchmarks/embedding.py --documents 1000 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time

import polars as pl

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from gem_dagster.embedding import TextEmbedder, default_model_path  # noqa: E402
from gem_dagster.settings import BUNDLED_SAMPLE_SHARDS  # noqa: E402


def load_texts(count: int) -> list[str]:
    frame = pl.concat(
        [pl.read_ndjson(path, schema_overrides={"label": pl.String}) for path in sorted(BUNDLED_SAMPLE_SHARDS.glob("*.jsonl"))]
    )
    return frame.sample(n=min(count, frame.height), seed=0, shuffle=True)["text"].to_list()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1000, help="texts to embed per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per side")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-seq-length", type=int, default=128, help="tokens kept per text")
    arguments = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    texts = load_texts(arguments.documents)
    pipeline = TextEmbedder(None, "cpu", arguments.batch_size, arguments.max_seq_length)
    plain = SentenceTransformer(str(default_model_path()), device="cpu")
    plain.max_seq_length = arguments.max_seq_length

    def run_plain() -> None:
        for start in range(0, len(texts), arguments.batch_size):
            plain.encode(texts[start : start + arguments.batch_size], normalize_embeddings=True)

    def run_pipeline() -> None:
        pipeline.encode(texts)

    # One warm-up call each loads weights and fills allocator caches before timing.
    plain.encode(texts[:8])
    pipeline.encode(texts[:8])

    rates: dict[str, list[float]] = {"plain SentenceTransformer.encode loop": [], "gem_dagster TextEmbedder": []}
    for _ in range(arguments.rounds):
        for name, function in [("plain SentenceTransformer.encode loop", run_plain), ("gem_dagster TextEmbedder", run_pipeline)]:
            started = time.perf_counter()
            function()
            rates[name].append(len(texts) / (time.perf_counter() - started))

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {len(texts)} texts, batch {arguments.batch_size}, "
          f"max_seq_length {arguments.max_seq_length}; peak RSS {peak_mb:.0f} MB")
    print("| embedder | docs/s (median) | docs/s per round |")
    print("|---|---|---|")
    for name, values in rates.items():
        rounds = ", ".join(f"{value:.1f}" for value in values)
        print(f"| {name} | {statistics.median(values):.1f} | {rounds} |")


if __name__ == "__main__":
    main()
