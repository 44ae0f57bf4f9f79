"""Predictability probe: how well RegMix's regression predicts proxy loss over each method's buckets.

At small scale, on a stratified subsample of an evaluation corpus: every method cuts the
same documents into K buckets (K = 8 by default). A random tenth of the documents, the same
for all methods, is the target set. For each method the probe samples mixtures over its
buckets as RegMix does (Dirichlet around the square root of the token shares). It trains one
tiny proxy language model (gem_dagster.mixing.proxy) per mixture on the buckets' tokens and
scores it on the target set. Then it fits the LightGBM regression from mixture to loss
(gem_dagster.mixing.regmix.fit_regression). Two held-out Spearman correlations are reported:

- the regression's own held-out split (a fifth of the mixtures), averaged over ten split seeds;
- pooled out-of-fold: four folds, each predicted by a regression fitted on the other three,
  with one Spearman correlation over all mixtures.

Every proxy of every method has the same seed, size and schedule, so runs differ only in the
buckets and the mixture.

    .venv/bin/python benchmarks/predictability.py --corpus mix --documents 10000 --k 8 --mixtures 24
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from common import eval_embeddings, machine_line, peak_rss_mb
from quality import METHODS, RESULTS, fit_methods, print_table

from gem_dagster.embedding import TokenCounter, default_model_path
from gem_dagster.mixing.proxy import ProxyConfig, evaluate_loss, train_proxy
from gem_dagster.mixing.regmix import fit_regression, sample_mixtures
from gem_dagster.mixing.streams import build_token_streams

SEPARATOR = np.array([0], dtype=np.int32)


def compact_documents(texts: list[str], vocabulary_size: int) -> list[np.ndarray]:
    """Tokenise with the embedder's tokenizer and map to one compact vocabulary for all methods."""
    counter = TokenCounter(default_model_path())
    encoded = counter.encode(texts)
    # build_token_streams ranks tokens by frequency over all documents; one call with every
    # document in one domain gives the vocabulary, which every method then shares.
    vocabulary = build_token_streams(((0, ids) for ids in encoded), vocabulary_size).vocabulary
    lookup = np.ones(max(max((max(ids) for ids in encoded if ids), default=0), int(vocabulary.max())) + 1,
                     dtype=np.int32)
    lookup[vocabulary] = np.arange(2, 2 + vocabulary.size, dtype=np.int32)
    return [lookup[np.asarray(ids, dtype=np.int64)] for ids in encoded]


def bucket_streams(documents: list[np.ndarray], labels: np.ndarray, rows: np.ndarray, k: int,
                   tokens_per_domain: int) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Concatenate each bucket's documents (in ``rows`` order) up to ``tokens_per_domain`` tokens.

    Returns the streams and each bucket's share of all training tokens, the RegMix prior.
    """
    streams, totals = {}, np.zeros(k)
    for bucket in range(k):
        pieces, kept = [], 0
        for row in rows[labels[rows] == bucket]:
            totals[bucket] += documents[row].size + 1
            if kept < tokens_per_domain:
                pieces.extend([documents[row], SEPARATOR])
                kept += documents[row].size + 1
        streams[bucket] = np.concatenate(pieces)[:tokens_per_domain] if pieces else np.zeros(0, dtype=np.int32)
    return streams, totals / totals.sum()


def out_of_fold_spearman(mixtures: np.ndarray, losses: np.ndarray, folds: int, seed: int) -> float:
    order = np.random.default_rng(seed).permutation(len(losses))
    predicted = np.empty(len(losses))
    for fold in np.array_split(order, folds):
        train = np.setdiff1d(order, fold)
        fit = fit_regression(mixtures[train], losses[train], seed=seed)
        predicted[fold] = fit.predict(mixtures[fold])
    if np.ptp(predicted) == 0:
        return float("nan")
    return float(spearmanr(predicted, losses).statistic)


def probe_method(streams: dict[int, np.ndarray], prior: np.ndarray, target: np.ndarray, config: ProxyConfig,
                 mixtures_count: int, seed: int) -> dict:
    active = np.array([streams[bucket].size > config.seq_len + 1 for bucket in sorted(streams)])
    trained = {bucket: stream for bucket, stream in streams.items() if active[bucket]}
    mixtures = sample_mixtures(np.where(active, prior, 0.0), mixtures_count, np.random.default_rng(seed))

    losses = np.empty(mixtures_count)
    started = time.perf_counter()
    for index, mixture in enumerate(mixtures):
        model = train_proxy(config, mixture[active], trained, label=f"proxy {index + 1}")
        losses[index] = evaluate_loss(model, {0: target}, max_windows=128)
    seconds = time.perf_counter() - started

    own_split = [fit_regression(mixtures, losses, seed=split_seed).spearman for split_seed in range(10)]
    return {
        "held-out Spearman (own split, mean of 10)": float(np.nanmean(own_split)),
        "std over splits": float(np.nanstd(own_split)),
        "out-of-fold Spearman (4 folds)": out_of_fold_spearman(mixtures, losses, 4, seed),
        "loss min": float(losses.min()),
        "loss max": float(losses.max()),
        "proxy s": seconds / mixtures_count,
        "_mixtures": mixtures.tolist(),
        "_losses": losses.tolist(),
    }


def plot_predictability(rows: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 3.6))
    names = [row["method"].split(" (")[0] for row in rows]
    positions = np.arange(len(rows))
    axis.bar(positions - 0.2, [row["held-out Spearman (own split, mean of 10)"] for row in rows], width=0.4,
             yerr=[row["std over splits"] for row in rows], label="own split (mean, std of 10)")
    axis.bar(positions + 0.2, [row["out-of-fold Spearman (4 folds)"] for row in rows], width=0.4,
             label="out-of-fold, 4 folds")
    axis.set_xticks(positions, names, rotation=15, fontsize=8)
    axis.set_ylabel("Spearman, predicted vs observed loss")
    axis.axhline(0, color="black", linewidth=0.6)
    axis.legend(fontsize=7)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="mix", choices=["debian-sections", "mix"])
    parser.add_argument("--documents", type=int, default=20_000, help="documents in the stratified subsample")
    parser.add_argument("--k", type=int, default=8, help="buckets per method")
    parser.add_argument("--mixtures", type=int, default=24, help="proxy runs per method")
    parser.add_argument("--steps", type=int, default=100, help="optimiser steps per proxy")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per proxy (one is faster for models this small on a busy CPU)")
    parser.add_argument("--vocabulary", type=int, default=2048, help="compact vocabulary of the proxies")
    parser.add_argument("--tokens-per-domain", type=int, default=50_000)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figure", default="docs/figures/predictability.png")
    arguments = parser.parse_args()
    print(f"machine: {machine_line()}\n")

    subsample, vectors = eval_embeddings(arguments.corpus, arguments.documents, arguments.seed)
    documents = compact_documents(subsample["text"].to_list(), arguments.vocabulary)
    order = np.random.default_rng(arguments.seed).permutation(len(documents))
    target_rows, train_rows = order[: len(order) // 10], order[len(order) // 10 :]
    target = np.concatenate([piece for row in target_rows for piece in (documents[row], SEPARATOR)])
    # The clusterers keep the default threads; only the proxies run on --threads.
    config = ProxyConfig(vocab_size=arguments.vocabulary, steps=arguments.steps, seed=arguments.seed, log_every=0)
    print(f"{len(train_rows):,} training and {len(target_rows):,} target documents, "
          f"{target.size:,} target tokens", flush=True)

    rows = []
    partitions = fit_methods(vectors, arguments.k, arguments.seed, methods=arguments.methods)
    torch.set_num_threads(arguments.threads)
    for partition in partitions:
        streams, prior = bucket_streams(documents, partition.labels, train_rows, arguments.k,
                                        arguments.tokens_per_domain)
        result = probe_method(streams, prior, target, config, arguments.mixtures, arguments.seed)
        row = {"method": partition.method, "largest bucket token share": float(prior.max()), **result}
        rows.append(row)
        print(f"  probed {partition.method}: own-split Spearman {row['held-out Spearman (own split, mean of 10)']:.3f}, "
              f"out-of-fold {row['out-of-fold Spearman (4 folds)']:.3f}", flush=True)

    print(f"\n## RegMix predictability, {arguments.corpus}, {subsample.height:,} documents, K = {arguments.k}, "
          f"{arguments.mixtures} mixtures per method, {arguments.steps} steps per proxy, "
          f"{arguments.threads} torch thread(s)\n")
    print_table([{key: value for key, value in row.items() if not key.startswith("_")} for row in rows])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"predictability-{arguments.corpus}-k{arguments.k}.json").write_text(json.dumps(rows, indent=1))
    plot_predictability(rows, arguments.figure)
    print(f"\nfigure: {arguments.figure}\npeak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
