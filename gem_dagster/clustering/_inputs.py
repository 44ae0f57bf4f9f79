"""Input checks shared by the estimators: data matrices and constructor parameters."""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
import torch

# Unit vectors stored as float16 come back with norms within about 1e-3 of 1. A larger
# deviation suggests that the caller passed vectors that were never normalised.
_UNIT_NORM_TOLERANCE = 1e-3

_NORM_BLOCK_ROWS = 65536


def as_float32_matrix(X, device: torch.device, name: str = "X") -> torch.Tensor:
    """Return ``X`` as a contiguous float32 tensor of shape (N, d) on ``device``.

    Raises ``ValueError`` naming the first row that contains a NaN or an infinity.
    """
    if isinstance(X, torch.Tensor):
        matrix = X.detach().to(device=device, dtype=torch.float32)
    else:
        array = np.asarray(X)
        if array.dtype == object or not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"{name} must be a numeric array, got dtype {array.dtype}")
        matrix = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(device)

    if matrix.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_features), "
            f"got shape {tuple(matrix.shape)}"
        )
    if matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError(
            f"{name} must have at least one row and one column, got shape {tuple(matrix.shape)}"
        )

    finite_rows = torch.isfinite(matrix).all(dim=1)
    if not bool(finite_rows.all()):
        row = int(torch.nonzero(~finite_rows)[0, 0])
        raise ValueError(
            f"row {row} of {name} contains NaN or infinite values. Remove or repair that row."
        )
    return matrix.contiguous()


def as_unit_rows(X, device: torch.device, name: str = "X") -> torch.Tensor:
    """Return the rows of ``X`` scaled to unit L2 norm, as float32 (N, d) on ``device``.

    Every row is divided by its norm, so the result is unit-norm to float32 precision. A
    ``UserWarning`` reports how many rows had a norm further than 1e-3 from 1, because such
    input was probably not meant as directions.

    Raises
    ------
    ValueError
        If ``X`` is not a finite 2-D numeric array, has fewer than 2 columns, or contains a row
        of zero norm. The message names the first offending row.
    """
    matrix = as_float32_matrix(X, device, name)
    if matrix.shape[1] < 2:
        raise ValueError(
            f"{name} must have at least 2 features to lie on a sphere, got {matrix.shape[1]}"
        )

    # Norms in float64, a block of rows at a time, so no float64 copy of X is ever whole.
    norms = torch.cat(
        [
            torch.linalg.vector_norm(matrix[start : start + _NORM_BLOCK_ROWS].double(), dim=1)
            for start in range(0, matrix.shape[0], _NORM_BLOCK_ROWS)
        ]
    )
    zero_rows = norms == 0
    if bool(zero_rows.any()):
        row = int(torch.nonzero(zero_rows)[0, 0])
        raise ValueError(
            f"row {row} of {name} has zero norm, so it has no direction. "
            "Remove empty or padding embeddings before clustering."
        )

    off_unit = int(((norms - 1.0).abs() > _UNIT_NORM_TOLERANCE).sum())
    if off_unit:
        warnings.warn(
            f"{off_unit} of {matrix.shape[0]} rows of {name} were not unit-norm "
            f"(|norm - 1| > {_UNIT_NORM_TOLERANCE}), so every row was normalised to unit length",
            UserWarning,
            stacklevel=3,
        )
    unit = torch.empty_like(matrix)
    for start in range(0, matrix.shape[0], _NORM_BLOCK_ROWS):
        block = slice(start, start + _NORM_BLOCK_ROWS)
        unit[block] = (matrix[block].double() / norms[block, None]).to(torch.float32)
    return unit


def check_n_features(matrix: torch.Tensor, expected: int, name: str = "X") -> None:
    """Raise ``ValueError`` unless ``matrix`` has the feature count seen during fit."""
    if matrix.shape[1] != expected:
        raise ValueError(
            f"{name} has {matrix.shape[1]} features, but the estimator was fitted with {expected}"
        )


def check_int(name: str, value, minimum: int) -> int:
    """Return ``value`` as an int, raising ``ValueError`` unless it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_positive_float(name: str, value, allow_zero: bool = False) -> float:
    """Return ``value`` as a float, or raise ``ValueError`` if it is not finite and > 0 (>= 0)."""
    valid = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    valid = valid and (value >= 0 if allow_zero else value > 0)
    if not valid:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def check_choice(name: str, value, allowed: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise ``ValueError`` listing them."""
    if not isinstance(value, str) or value not in allowed:
        choices = ", ".join(repr(option) for option in allowed)
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_kappa_bounds(bounds) -> tuple[float, float]:
    """Return ``bounds`` as ``(low, high)``, or raise ``ValueError`` unless 0 < low < high < inf."""
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(
            f"kappa_bounds must be a pair (low, high) of numbers, got {bounds!r}"
        ) from None
    if not (0.0 < low < high < math.inf):
        raise ValueError(f"kappa_bounds must satisfy 0 < low < high < inf, got {bounds!r}")
    return low, high


def check_initial_directions(
    init, n_clusters: int, n_features: int, device: torch.device
) -> torch.Tensor:
    """Return an initial (K, d) array of mean directions as unit float64 rows on ``device``."""
    matrix = as_float32_matrix(init, device, name="init")
    if matrix.shape != (n_clusters, n_features):
        raise ValueError(
            f"init must have shape (n_clusters, n_features) = ({n_clusters}, {n_features}), "
            f"got {tuple(matrix.shape)}"
        )
    rows = as_unit_rows(matrix, device, name="init").double()
    return rows / torch.linalg.vector_norm(rows, dim=1, keepdim=True)
