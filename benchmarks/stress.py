"""Stress test: where each method puts a flood of templated near-duplicate documents.

A real corpus (a stratified subsample from scripts/fetch_eval_corpora.py) gets a flood of
synthetic documents, by default 30% of the combined corpus. They are written from five
templates with random slot fillers: shop adverts, local-service adverts, listicles, product
reviews and prize notices, the kind of boilerplate that fills web crawls. Every method is fitted on the
combined embeddings at the same K and the run reports, per method:

- balance entropy and the size share of the two largest clusters;
- the share of the flood that lands in the two largest clusters, and in the two clusters
  that hold the most flood documents;
- how many clusters it takes to hold 90% of the flood, and what share of each flood-holding
  cluster is flood (purity of those clusters);
- NMI of the real documents against their human labels, to show what the flood costs them.

    .venv/bin/python benchmarks/stress.py --corpus mix --documents 10000 --flood-share 0.3 --k classes 64
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from common import CACHE, embed_by_id, eval_embeddings, machine_line, peak_rss_mb
from quality import RESULTS, fit_methods, print_table, resolve_ks

from gem_dagster.clustering import balance_entropy_of_labels, normalized_mutual_info

TEMPLATES = (
    "Buy {product} online at the lowest price. {store} ships every {product} order over "
    "${amount} for free, and members save {percent}% today. Order now while stocks last!",
    "Looking for a trusted {service} in {city}? Our certified team has {years} years of "
    "experience. Call today for a free, no-obligation quote on {service}.",
    "Top {number} {topic} tips you need to know in {year}. Discover how {topic} can change your "
    "life with these simple steps, and number {small} will surprise you.",
    "{name} from {city} rated the {product} {stars} out of 5 stars: great value, arrived in "
    "{days} days, would recommend {store} to a friend.",
    "Congratulations! You have been selected to claim a free {prize}. This offer for residents "
    "of {city} expires in {hours} hours. Click the link to confirm your details.",
)

SLOT_FILLERS = {
    "product": ["wireless earbuds", "air fryer", "running shoes", "gaming chair", "smart watch",
                "robot vacuum", "office desk", "yoga mat", "coffee grinder", "phone case",
                "electric toothbrush", "travel backpack", "LED desk lamp", "blender",
                "bluetooth speaker", "winter jacket", "water bottle", "laptop stand"],
    "store": ["ShopMart", "BestDeals", "MegaStore", "DealHub", "PrimeGoods", "ValueCity",
              "QuickBuy", "TopShop"],
    "amount": ["25", "35", "49", "50", "75", "99"],
    "percent": ["10", "15", "20", "25", "30", "40", "50"],
    "service": ["plumber", "roofing contractor", "dentist", "moving company", "locksmith",
                "house cleaning service", "electrician", "lawyer", "car repair shop",
                "pest control company", "wedding photographer", "tax advisor"],
    "city": ["Springfield", "Riverside", "Fairview", "Madison", "Georgetown", "Clinton",
             "Salem", "Franklin", "Greenville", "Bristol", "Oakland", "Denver", "Austin",
             "Portland", "Phoenix", "Columbus"],
    "years": ["5", "10", "12", "15", "20", "25", "30"],
    "number": ["5", "7", "10", "12", "15", "21"],
    "topic": ["weight loss", "productivity", "home gardening", "personal finance", "skin care",
              "meditation", "budget travel", "dog training", "interior design", "investing",
              "meal prep", "remote work"],
    "year": ["2021", "2022", "2023", "2024", "2025"],
    "small": ["3", "4", "5", "6"],
    "name": ["Sarah", "Mike", "Jennifer", "David", "Lisa", "Chris", "Emily", "James", "Anna",
             "Robert", "Maria", "Kevin"],
    "stars": ["4", "4.5", "5"],
    "days": ["2", "3", "4", "5"],
    "prize": ["gift card", "smartphone", "vacation package", "tablet", "shopping voucher",
              "cruise ticket", "laptop"],
    "hours": ["12", "24", "48", "72"],
}


def make_flood(count: int, seed: int) -> list[str]:
    """Write ``count`` documents, each from a random template with random slot fillers."""
    rng = np.random.default_rng(seed)
    documents = []
    for _ in range(count):
        template = TEMPLATES[rng.integers(len(TEMPLATES))]
        fillers = {slot: values[rng.integers(len(values))] for slot, values in SLOT_FILLERS.items()}
        documents.append(template.format(**fillers))
    return documents


def flood_rows(vectors: np.ndarray, human: np.ndarray, is_flood: np.ndarray, k: int, seed: int) -> list[dict]:
    rows = []
    flood_total = int(is_flood.sum())
    for partition in fit_methods(vectors, k, seed):
        labels = partition.labels
        sizes = np.bincount(labels, minlength=k)
        flood_counts = np.bincount(labels[is_flood], minlength=k)
        largest_two = np.argsort(-sizes, kind="stable")[:2]
        most_flood_two = np.argsort(-flood_counts, kind="stable")[:2]
        cumulative = np.cumsum(np.sort(flood_counts)[::-1]) / flood_total
        holding = flood_counts > 0
        real = ~is_flood
        rows.append({
            "method": partition.method,
            "balance entropy": balance_entropy_of_labels(labels, k),
            "two largest clusters, share of all docs": float(sizes[largest_two].sum() / len(labels)),
            "flood in two largest clusters": float(flood_counts[largest_two].sum() / flood_total),
            "flood in its top two clusters": float(flood_counts[most_flood_two].sum() / flood_total),
            "clusters holding 90% of flood": int(np.searchsorted(cumulative, 0.9) + 1),
            "flood share of flood-holding clusters": float(flood_counts[holding].sum() / sizes[holding].sum()),
            "NMI of real docs": normalized_mutual_info(human[real], labels[real]),
        })
    return rows


def plot_flood(results: list[dict], path) -> None:
    """Draw, per method, the flood share in the two largest clusters and the balance entropy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(4.6 * len(results), 3.8), squeeze=False)
    for axis, result in zip(axes[0], results):
        names = [row["method"].split(" (")[0] for row in result["rows"]]
        positions = np.arange(len(names))
        axis.bar(positions - 0.2, [row["flood in two largest clusters"] for row in result["rows"]],
                 width=0.4, label="flood share in the two largest clusters")
        axis.bar(positions + 0.2, [row["balance entropy"] for row in result["rows"]],
                 width=0.4, label="balance entropy")
        axis.set_xticks(positions, names, rotation=20, fontsize=8)
        axis.set_ylim(0, 1.05)
        axis.set_title(f"{result['corpus']} + {result['flood']:,} flood docs, K={result['k']}", fontsize=9)
        axis.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="mix", choices=["debian-sections", "mix"])
    parser.add_argument("--documents", type=int, default=20_000, help="real documents (stratified subsample)")
    parser.add_argument("--flood-share", type=float, default=0.3, help="flood share of the combined corpus, in (0, 1)")
    parser.add_argument("--k", nargs="+", default=["classes", "64"],
                        help="cluster counts: integers, or 'classes' for the number of human labels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figure", default="docs/figures/stress.png")
    arguments = parser.parse_args()
    if not 0 < arguments.flood_share < 1:
        raise SystemExit(f"invalid --flood-share {arguments.flood_share}: use a value between 0 and 1")
    print(f"machine: {machine_line()}\n")

    subsample, real_vectors = eval_embeddings(arguments.corpus, arguments.documents, arguments.seed)
    flood_count = round(arguments.flood_share / (1 - arguments.flood_share) * subsample.height)
    flood_texts = make_flood(flood_count, arguments.seed)
    print(f"flood: {flood_count:,} documents from {len(TEMPLATES)} templates, "
          f"{len(set(flood_texts)):,} distinct texts", flush=True)
    # The i-th flood document depends only on the seed, not on the count, so ids stay valid.
    flood_ids = [f"flood:{arguments.seed}:{index}" for index in range(flood_count)]
    flood_vectors = embed_by_id(flood_ids, flood_texts, CACHE / "eval" / "flood-tokens128")

    vectors = np.concatenate([real_vectors, flood_vectors])
    human = np.concatenate([subsample["label"].to_numpy().astype(object), np.full(flood_count, "flood", dtype=object)])
    is_flood = np.zeros(len(vectors), dtype=bool)
    is_flood[subsample.height:] = True
    classes = len(set(subsample["label"].to_list()))

    results = []
    for k in resolve_ks(arguments.k, classes):
        print(f"\n## {arguments.corpus}: {subsample.height:,} real + {flood_count:,} flood documents, K = {k}\n",
              flush=True)
        rows = flood_rows(vectors, human, is_flood, k, arguments.seed)
        print_table(rows)
        result = {"corpus": arguments.corpus, "documents": subsample.height, "flood": flood_count, "k": k,
                  "rows": rows}
        results.append(result)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"stress-{arguments.corpus}-k{k}.json").write_text(json.dumps(result, indent=1))

    plot_flood(results, arguments.figure)
    print(f"\nfigure: {arguments.figure}\npeak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
