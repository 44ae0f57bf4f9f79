"""Shared inputs for the benchmarks: the bundled sample, its real embeddings, machine facts."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np
import polars as pl

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from gem_dagster.embedding import TextEmbedder  # noqa: E402
from gem_dagster.settings import BUNDLED_SAMPLE_SHARDS, PROJECT_ROOT  # noqa: E402

CACHE = PROJECT_ROOT / ".gem" / "bench"


def load_sample() -> pl.DataFrame:
    """Return every document of the bundled sample (id, text, source, label)."""
    frames = []
    for path in sorted(BUNDLED_SAMPLE_SHARDS.iterdir()):
        if path.suffix == ".parquet":
            frames.append(pl.read_parquet(path))
        else:
            frames.append(pl.read_ndjson(path, schema_overrides={"label": pl.String}))
    return pl.concat(frames, how="diagonal").select("id", "text", "source", "label").sort("id")


def sample_embeddings(max_seq_length: int = 128) -> tuple[pl.DataFrame, np.ndarray]:
    """Return the sample and its unit embeddings, computed once and cached under .gem/bench."""
    sample = load_sample()
    cache = CACHE / f"sample_embeddings_{max_seq_length}.npy"
    if cache.exists():
        vectors = np.load(cache, allow_pickle=False)
        if len(vectors) == sample.height:
            return sample, vectors

    print(f"embedding {sample.height:,} sample documents once (cached in {cache}) ...", flush=True)
    started = time.perf_counter()
    vectors = TextEmbedder(max_seq_length=max_seq_length).encode(sample["text"].to_list())
    print(f"embedded in {time.perf_counter() - started:.0f} s", flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return sample, vectors


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Measure this machine's float32 matrix-product rate with torch, as a physical reference."""
    import torch

    a = torch.randn(size, size)
    b = torch.randn(size, size)
    torch.mm(a, b)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    seconds = (time.perf_counter() - started) / repeats
    return 2 * size**3 / seconds / 1e9


def machine_line() -> str:
    import torch

    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads"
    )


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def path_for(name: str) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    return CACHE / name
