"""Token streams per domain for the proxy language models, in a compact vocabulary.

The proxies of DoReMi, RegMix and PerfRe read each domain as one long array of token ids: the
embedder's tokens of the domain's documents, one after another, with a separator between
documents. A proxy's output layer is as wide as its vocabulary, and on a CPU that layer is
most of the cost, so the streams keep only the most frequent tokens and give every other
token one shared id. The compact ids are:

- 0: the document separator,
- 1: any token outside the kept vocabulary,
- 2 and up: kept tokens, most frequent first.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SEPARATOR_ID = 0
OTHER_ID = 1
_FIRST_KEPT_ID = 2


@dataclass(frozen=True)
class TokenStreams:
    """Compact token ids per cluster id and the embedder token id behind each compact id."""

    domains: dict[int, np.ndarray]
    vocabulary: np.ndarray

    @property
    def vocab_size(self) -> int:
        return _FIRST_KEPT_ID + len(self.vocabulary)

    def tokens_per_domain(self) -> dict[int, int]:
        return {cluster_id: int(stream.size) for cluster_id, stream in self.domains.items()}

    def other_share(self) -> float:
        """Share of stream tokens that fell outside the kept vocabulary."""
        total = sum(stream.size for stream in self.domains.values())
        other = sum(int(np.count_nonzero(stream == OTHER_ID)) for stream in self.domains.values())
        return other / total if total else 0.0

    def save(self, path: Path) -> None:
        """Write an ``.npz`` file (plain arrays, no pickle) through a temporary file."""
        arrays = {f"domain_{cluster_id}": stream for cluster_id, stream in self.domains.items()}
        temporary = path.parent / f".{path.name}.tmp"
        with open(temporary, "wb") as handle:
            np.savez(handle, vocabulary=self.vocabulary, **arrays)
        os.replace(temporary, path)

    @classmethod
    def load(cls, path: Path) -> TokenStreams:
        if not path.is_file():
            raise FileNotFoundError(
                f"proxy token streams {path} not found: materialise proxy_token_streams"
            )
        with np.load(path, allow_pickle=False) as archive:
            domains = {
                int(name.removeprefix("domain_")): archive[name]
                for name in archive.files
                if name.startswith("domain_")
            }
            return cls(domains=dict(sorted(domains.items())), vocabulary=archive["vocabulary"])


def build_token_streams(
    encoded_documents: Iterable[tuple[int, Sequence[int]]], vocabulary_size: int
) -> TokenStreams:
    """Concatenate each domain's documents into one stream of compact ids.

    Parameters
    ----------
    encoded_documents : iterable of (cluster_id, token ids)
        Documents in the order they should appear in their domain's stream.
    vocabulary_size : int
        Size of the compact vocabulary, separator and shared id included (at least 3).
    """
    if vocabulary_size < _FIRST_KEPT_ID + 1:
        raise ValueError(
            f"a proxy vocabulary of {vocabulary_size} ids leaves no room for tokens: use at least 3"
        )
    per_domain: dict[int, list[Sequence[int]]] = {}
    frequencies: Counter[int] = Counter()
    for cluster_id, token_ids in encoded_documents:
        per_domain.setdefault(int(cluster_id), []).append(token_ids)
        frequencies.update(token_ids)
    if not per_domain:
        raise ValueError("no documents to build proxy token streams from: label the shards first")

    # Ties are broken by token id so that the vocabulary does not depend on input order.
    ranked = sorted(frequencies.items(), key=lambda item: (-item[1], item[0]))
    kept_tokens = np.array([token for token, _ in ranked[: vocabulary_size - _FIRST_KEPT_ID]], dtype=np.int64)
    lookup = np.full(int(max(frequencies, default=0)) + 1, OTHER_ID, dtype=np.int32)
    lookup[kept_tokens] = np.arange(_FIRST_KEPT_ID, _FIRST_KEPT_ID + kept_tokens.size, dtype=np.int32)

    domains = {}
    for cluster_id in sorted(per_domain):
        pieces = []
        for token_ids in per_domain[cluster_id]:
            pieces.append(lookup[np.asarray(token_ids, dtype=np.int64)])
            pieces.append(np.array([SEPARATOR_ID], dtype=np.int32))
        domains[cluster_id] = np.concatenate(pieces)
    return TokenStreams(domains=domains, vocabulary=kept_tokens)
