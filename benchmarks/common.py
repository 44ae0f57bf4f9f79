"""Shared inputs for the benchmarks: the bundled sample, its real embeddings, machine facts."""

from __future__ import annotations

import os
import platform
import time
import zlib
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


# ---------------------------------------------------------------------------
# Evaluation corpora fetched by scripts/fetch_eval_corpora.py
# ---------------------------------------------------------------------------

EVAL_CORPORA = {"debian-sections", "mix"}
EMBEDDING_PART_ROWS = 2_000


def eval_corpus_folder() -> Path:
    """Return the folder with the evaluation corpora (GEM_EVAL_CORPORA, else the fetch default)."""
    configured = os.environ.get("GEM_EVAL_CORPORA")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gem_dagster" / "eval" / "corpora"


def load_eval_corpus(name: str) -> pl.DataFrame:
    """Return one evaluation corpus as a frame (id, text, label, detail)."""
    if name not in EVAL_CORPORA:
        raise ValueError(f"unknown evaluation corpus {name!r}: choose one of {sorted(EVAL_CORPORA)}")
    path = eval_corpus_folder() / f"{name}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(
            f"evaluation corpus {path} not found: run .venv/bin/python scripts/fetch_eval_corpora.py "
            "or set GEM_EVAL_CORPORA to the folder that contains it"
        )
    return pl.read_ndjson(path, schema={"id": pl.String, "text": pl.String, "label": pl.String,
                                        "detail": pl.String})


def stratified_subsample(corpus: pl.DataFrame, size: int, seed: int) -> pl.DataFrame:
    """Draw about ``size`` rows with every label at its share of the corpus, in a shuffled order.

    Each label gets round(size x share) rows, at least one, so the natural imbalance of the
    labels is kept and even the rarest label is present. Rounding can move the total by a few
    rows. Every label's rows are ranked by a fixed random order, and a subsample takes the top
    of each ranking, so a smaller subsample is contained in a larger one with the same seed
    and their embeddings are shared.
    """
    size = min(size, corpus.height)
    fraction = size / corpus.height
    chosen = []
    for (label,), group in sorted(corpus.group_by(["label"]), key=lambda pair: str(pair[0])):
        group = group.sort("id")
        label_seed = zlib.crc32(str(label).encode("utf-8"))
        ranking = np.random.default_rng([seed, label_seed]).permutation(group.height)
        count = min(group.height, max(1, round(group.height * fraction)))
        chosen.append(group[np.sort(ranking[:count])])
    subsample = pl.concat(chosen).sort("id")
    return subsample[np.random.default_rng(seed).permutation(subsample.height)]


def embed_by_id(ids: list[str], texts: list[str], cache_folder: Path, max_seq_length: int = 128) -> np.ndarray:
    """Return embeddings in the order of ``ids``, embedding only the ids not cached yet.

    The cache folder contains parts of at most EMBEDDING_PART_ROWS rows (part-N.npy with the
    vectors, part-N.ids with one id a line), each saved as soon as it is done, so an
    interrupted run keeps its finished parts. The caller picks one folder per corpus and
    embedding setting, because ids are matched, not texts.
    """
    cache_folder.mkdir(parents=True, exist_ok=True)
    cached: dict[str, np.ndarray] = {}
    for part in sorted(cache_folder.glob("part-*.npy")):
        part_ids = part.with_suffix(".ids").read_text(encoding="utf-8").split("\n")
        vectors = np.load(part, allow_pickle=False)
        if len(part_ids) == len(vectors):
            cached.update(zip(part_ids, vectors))

    missing = [index for index, document_id in enumerate(ids) if document_id not in cached]
    if missing:
        print(f"  {len(ids) - len(missing):,} of {len(ids):,} embeddings cached, embedding {len(missing):,} "
              f"into {cache_folder}", flush=True)
        embedder = TextEmbedder(max_seq_length=max_seq_length)
        next_part = len(list(cache_folder.glob("part-*.npy")))
        started = time.perf_counter()
        for done, start in enumerate(range(0, len(missing), EMBEDDING_PART_ROWS), start=1):
            rows = missing[start : start + EMBEDDING_PART_ROWS]
            vectors = embedder.encode([texts[row] for row in rows])
            part = cache_folder / f"part-{next_part:05d}.npy"
            part.with_suffix(".ids").write_text("\n".join(ids[row] for row in rows), encoding="utf-8")
            np.save(part, vectors)
            next_part += 1
            cached.update(zip((ids[row] for row in rows), vectors))
            finished = start + len(rows)
            print(f"  embedded {finished:,}/{len(missing):,} "
                  f"({finished / (time.perf_counter() - started):.1f} docs/s)", flush=True)
    return np.stack([cached[document_id] for document_id in ids]).astype(np.float32, copy=False)


def eval_embeddings(name: str, documents: int, seed: int = 0,
                    max_seq_length: int = 128) -> tuple[pl.DataFrame, np.ndarray]:
    """Return a stratified subsample of an evaluation corpus and its unit embeddings.

    Embeddings are cached by document id under .gem/bench/eval/<corpus>-tokens<limit>/.
    """
    subsample = stratified_subsample(load_eval_corpus(name), documents, seed)
    folder = CACHE / "eval" / f"{name}-tokens{max_seq_length}"
    vectors = embed_by_id(subsample["id"].to_list(), subsample["text"].to_list(), folder, max_seq_length)
    return subsample, vectors
