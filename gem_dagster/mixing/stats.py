"""Per-domain corpus statistics that the mixing strategies take as input.

A domain is one cluster of the corpus. Its statistics are the number of documents and the
number of tokens that the cluster contains over the whole corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

__all__ = ["DomainStats"]

REQUIRED_COLUMNS = ("cluster_id", "documents", "tokens")


def _as_count_array(values, field: str) -> np.ndarray:
    """Convert ``values`` to a read-only 1-D int64 array of non-negative counts."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{field} must be 1-D, got shape {array.shape}")

    # Integral floats such as 3.0 are accepted because Polars and pandas aggregates often
    # come back as float. A fractional count is a caller error.
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"{field} must contain integers, got dtype {array.dtype}")
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            bad = array[~np.isfinite(array) | (array != np.round(array))][0]
            raise ValueError(f"{field} must contain whole numbers, got {bad}")

    counts = array.astype(np.int64)
    if np.any(counts < 0):
        position = int(np.flatnonzero(counts < 0)[0])
        raise ValueError(
            f"{field} must be non-negative, got {counts[position]} at position {position}"
        )

    counts.setflags(write=False)
    return counts


@dataclass(frozen=True, eq=False)
class DomainStats:
    """Documents and tokens per domain, aligned by position.

    Parameters
    ----------
    cluster_ids : array_like of int, shape (K,)
        Identifier of each domain. Must be unique.
    documents : array_like of int, shape (K,)
        Number of documents in each domain. Non-negative.
    tokens : array_like of int, shape (K,)
        Number of tokens in each domain. Non-negative. A domain with tokens must also have
        at least one document.
    names : sequence of str, optional
        Human-readable name of each domain, for example from the taxonomy.

    Raises
    ------
    ValueError
        If the arrays are not 1-D, differ in length, are empty, contain negative or
        fractional counts, repeat a cluster id, or give tokens to a domain without documents.

    Notes
    -----
    The arrays are stored as read-only int64 copies, so a ``DomainStats`` cannot change
    after validation.
    """

    cluster_ids: np.ndarray
    documents: np.ndarray
    tokens: np.ndarray
    names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        cluster_ids = np.asarray(self.cluster_ids)
        if cluster_ids.ndim != 1:
            raise ValueError(f"cluster_ids must be 1-D, got shape {cluster_ids.shape}")
        if cluster_ids.size and not np.issubdtype(cluster_ids.dtype, np.integer):
            raise ValueError(f"cluster_ids must be integers, got dtype {cluster_ids.dtype}")
        cluster_ids = cluster_ids.astype(np.int64)
        cluster_ids.setflags(write=False)

        documents = _as_count_array(self.documents, "documents")
        tokens = _as_count_array(self.tokens, "tokens")

        lengths = {
            "cluster_ids": cluster_ids.size,
            "documents": documents.size,
            "tokens": tokens.size,
        }
        names = None
        if self.names is not None:
            names = tuple(str(name) for name in self.names)
            lengths["names"] = len(names)
        if len(set(lengths.values())) != 1:
            raise ValueError(f"all fields must have one length per domain, got lengths {lengths}")
        if cluster_ids.size == 0:
            raise ValueError("DomainStats needs at least one domain, got 0")

        unique_ids, counts = np.unique(cluster_ids, return_counts=True)
        if np.any(counts > 1):
            repeated = unique_ids[counts > 1].tolist()
            raise ValueError(f"cluster_ids must be unique, got repeated ids {repeated}")

        # Tokens come from documents, so tokens without documents means the two columns were
        # computed from different data or misaligned.
        orphan = (tokens > 0) & (documents == 0)
        if np.any(orphan):
            orphan_ids = cluster_ids[orphan].tolist()
            raise ValueError(
                f"domains {orphan_ids} have tokens but 0 documents. "
                "Check that documents and tokens are aligned by cluster"
            )

        object.__setattr__(self, "cluster_ids", cluster_ids)
        object.__setattr__(self, "documents", documents)
        object.__setattr__(self, "tokens", tokens)
        object.__setattr__(self, "names", names)

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> DomainStats:
        """Build statistics from a Polars frame with one row per domain.

        Parameters
        ----------
        frame : polars.DataFrame
            Columns ``cluster_id``, ``documents`` and ``tokens``, and optionally ``name``.
            Other columns are ignored. Rows keep their order.

        Returns
        -------
        DomainStats

        Raises
        ------
        ValueError
            If a required column is missing or contains nulls, or if the values fail the
            checks of the constructor.
        """
        if not isinstance(frame, pl.DataFrame):
            raise TypeError(f"frame must be a polars.DataFrame, got {type(frame).__name__}")

        missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
        if missing:
            raise ValueError(
                f"frame is missing columns {missing}. Required columns are "
                f"{list(REQUIRED_COLUMNS)} and optionally 'name', got {frame.columns}"
            )

        used_columns = [*REQUIRED_COLUMNS, *(["name"] if "name" in frame.columns else [])]
        for column in used_columns:
            null_count = frame[column].null_count()
            if null_count:
                raise ValueError(f"column {column!r} contains {null_count} null values")

        names = frame["name"].to_list() if "name" in frame.columns else None
        return cls(
            cluster_ids=frame["cluster_id"].to_numpy(),
            documents=frame["documents"].to_numpy(),
            tokens=frame["tokens"].to_numpy(),
            names=names,
        )

    @property
    def n_domains(self) -> int:
        """Number of domains K."""
        return int(self.cluster_ids.size)

    @property
    def total_tokens(self) -> int:
        """Number of tokens over all domains."""
        return int(self.tokens.sum())

    def to_frame(self) -> pl.DataFrame:
        """Return the statistics as a Polars frame with the columns that ``from_frame`` reads."""
        columns = {
            "cluster_id": self.cluster_ids,
            "documents": self.documents,
            "tokens": self.tokens,
        }
        if self.names is not None:
            columns["name"] = list(self.names)
        return pl.DataFrame(columns)
