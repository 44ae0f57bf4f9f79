"""Run-time settings of the estimators: torch device, random generator and memory plan."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import torch

_BYTES_PER_MB = 1024 * 1024
# Size of the scratch tensors of one block in the element-wise passes over N x K matrices.
_BLOCK_BYTES = 4 * _BYTES_PER_MB


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped at its iteration limit before meeting its tolerance."""


def resolve_device(device: str | torch.device) -> torch.device:
    """Return the torch device for ``device`` ("cpu", "cuda" or "cuda:N").

    Raises
    ------
    ValueError
        If ``device`` is not a valid torch device string.
    RuntimeError
        If a CUDA device is requested that this machine does not have.
    """
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"invalid device {device!r}: use 'cpu', 'cuda' or 'cuda:N'") from error

    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {device!r} was requested but torch sees no CUDA device. "
                "Pass device='cpu' or run on a machine with a GPU."
            )
        index = 0 if resolved.index is None else resolved.index
        if index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {device!r} does not exist, because this machine has "
                f"{torch.cuda.device_count()} CUDA device(s), numbered from 0"
            )
    elif resolved.type != "cpu":
        raise ValueError(f"invalid device {device!r}: use 'cpu', 'cuda' or 'cuda:N'")
    return resolved


def resolve_rng(random_state) -> np.random.Generator:
    """Return a NumPy generator for ``random_state`` (None, an int or a Generator).

    This is the only place where the estimators turn ``random_state`` into randomness, so
    the same integer always gives the same fit.
    """
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer, got {random_state!r}")
        return np.random.default_rng(int(random_state))
    raise ValueError(
        f"invalid random_state {random_state!r}: use None, a non-negative integer "
        "or a numpy.random.Generator"
    )


@dataclass(frozen=True)
class MemoryPlan:
    """Chunk size and caching choices that keep a pass over N rows within a memory budget.

    Attributes
    ----------
    chunk_rows : int
        Rows per chunk in every pass over the data.
    cache_logits : bool
        Whether the N x K logit matrix (float64) is kept between the passes of one E-step.
    cache_exponentials : bool
        Whether a second N x K float64 matrix, the exponentiated logits, also fits. The dual
        E-step then evaluates its objective with one matrix-vector product per trial point.
    keep_responsibilities : bool
        Whether the final N x K responsibilities (float64) are kept on the fitted estimator.
    cache_float64_rows : bool
        Whether a float64 copy of the N x d data also fits next to both N x K matrices. The
        resultant sums then read it instead of converting each block of rows again.
    """

    chunk_rows: int
    cache_logits: bool
    cache_exponentials: bool
    keep_responsibilities: bool
    cache_float64_rows: bool = False


def plan_memory(n_samples: int, n_features: int, n_clusters: int, budget_mb: float) -> MemoryPlan:
    """Split ``budget_mb`` between cached N x K matrices and per-chunk temporaries.

    Half of the budget may contain the N x K float64 logits, then their exponentials, then a
    float64 copy of the data, each only if it fits with the ones before. The other half bounds
    the chunk temporaries, which are a float64 copy of the chunk's rows for the resultant sums
    and about five float64 rows of K values per row (logits, log-responsibilities,
    responsibilities, scratch). The data matrix itself and the
    K x d parameters are outside the budget.
    """
    budget_bytes = budget_mb * _BYTES_PER_MB
    half = budget_bytes / 2
    matrix_bytes = n_samples * n_clusters * 8
    row_bytes = 8 * n_features + 5 * 8 * n_clusters
    chunk_rows = int(max(1, min(n_samples, half // row_bytes)))
    fits = matrix_bytes <= half
    both_fit = 2 * matrix_bytes <= half
    return MemoryPlan(
        chunk_rows=chunk_rows,
        cache_logits=fits,
        cache_exponentials=both_fit,
        keep_responsibilities=fits,
        cache_float64_rows=both_fit and 2 * matrix_bytes + 8 * n_samples * n_features <= half,
    )


def block_bounds(start: int, stop: int, block_rows: int) -> list[tuple[int, int]]:
    """Return ``(start, stop)`` ranges of at most ``block_rows`` rows that cover ``start:stop``."""
    return [(first, min(first + block_rows, stop)) for first in range(start, stop, block_rows)]


def block_rows_for(row_elements: int) -> int:
    """Return how many rows of ``row_elements`` float64 values fit in one block of scratch.

    Element-wise passes over N x K matrices run block by block, so that their temporaries
    stay in the CPU cache. Whole-matrix temporaries are also slow to allocate: at N = 200,000
    and K = 64, a fresh 100 MB result made a subtraction six times slower than writing into
    an existing tensor (torch 2.13 on Linux, 2 CPU cores).
    """
    return max(1, _BLOCK_BYTES // (8 * max(1, row_elements)))


def chunk_bounds(n_samples: int, chunk_rows: int) -> list[tuple[int, int]]:
    """Return ``(start, stop)`` ranges of at most ``chunk_rows`` rows that cover ``n_samples``."""
    return block_bounds(0, n_samples, chunk_rows)
