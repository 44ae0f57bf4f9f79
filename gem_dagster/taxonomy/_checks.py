"""Input checks shared by the taxonomy functions.

The public functions pass their arguments through these checks before any computation, and
the numerical code after them trusts the arrays. Every error names the argument, the
offending value or row, and the fix.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

# Rounding to float16 moves the norm of a unit vector by less than about 1e-3 (float16 has a
# relative precision of about 5e-4). Rows further from 1 were never normalised, so plain dot
# products between them would not be cosines.
UNIT_NORM_TOLERANCE = 1e-3

# Probabilities of the assigned cluster may underflow to 0 in float32 when a balanced
# assignment puts a document into a cluster it barely belongs to. They are raised to this
# value so that log(gamma) stays finite.
PROBABILITY_FLOOR = 1e-30

# Rounding in a softmax can push a probability slightly above 1.
_PROBABILITY_SLACK = 1e-6

_NORM_BLOCK_ROWS = 65536


def check_numeric_array(values, name: str, ndim: int) -> np.ndarray:
    """Return ``values`` as a NumPy array with ``ndim`` dimensions and only finite numbers."""
    array = np.asarray(values)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_)
    ):
        raise ValueError(f"{name} must be a numeric array, got dtype {array.dtype}")
    if array.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {array.shape}")

    finite = np.isfinite(array)
    if not finite.all():
        position = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(
            f"{name} contains {array[position].item()!r} at index {position}. "
            "Remove or repair that entry."
        )
    return array


def check_unit_rows(vectors, name: str, dtype=np.float32) -> np.ndarray:
    """Return ``vectors`` as a C-contiguous (N, d) array whose rows have unit L2 norm.

    Parameters
    ----------
    vectors : array-like, shape (N, d)
        Rows that should already be unit-normalised.
    name : str
        Argument name used in error messages.
    dtype : numpy dtype
        dtype of the returned array.

    Returns
    -------
    ndarray, shape (N, d)

    Raises
    ------
    ValueError
        If ``vectors`` is not a finite 2-D numeric array with at least one row and two
        columns, or if a row's norm differs from 1 by more than 1e-3. The message names the
        first offending row and its norm.
    """
    matrix = check_numeric_array(vectors, name, ndim=2)
    if matrix.shape[0] == 0 or matrix.shape[1] < 2:
        raise ValueError(
            f"{name} must have at least one row and two columns, got shape {matrix.shape}"
        )
    matrix = np.ascontiguousarray(matrix, dtype=dtype)

    # Norms in float64, a block of rows at a time, so no float64 copy of the matrix is whole.
    for start in range(0, matrix.shape[0], _NORM_BLOCK_ROWS):
        block = matrix[start : start + _NORM_BLOCK_ROWS].astype(np.float64)
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        off = np.abs(norms - 1.0) > UNIT_NORM_TOLERANCE
        if off.any():
            row = int(np.flatnonzero(off)[0])
            raise ValueError(
                f"row {start + row} of {name} has L2 norm {norms[row]:.6g}, but unit rows are "
                f"required (tolerance {UNIT_NORM_TOLERANCE}). Divide each row by its norm first."
            )
    return matrix


def check_labels(labels, n_samples: int, n_clusters: int) -> np.ndarray:
    """Return hard labels as an int64 array of shape (N,) with values in 0 .. n_clusters - 1."""
    array = check_numeric_array(labels, "labels", ndim=1)
    if array.shape[0] != n_samples:
        raise ValueError(
            f"labels has {array.shape[0]} entries but vectors has {n_samples} rows. "
            "Pass one label per row."
        )

    integral = array == np.round(array)
    if not integral.all():
        index = int(np.flatnonzero(~integral)[0])
        raise ValueError(f"labels must be integers, got {array[index].item()!r} at index {index}")
    array = array.astype(np.int64)

    outside = (array < 0) | (array >= n_clusters)
    if outside.any():
        index = int(np.flatnonzero(outside)[0])
        raise ValueError(
            f"label {array[index]} at index {index} is outside 0 .. {n_clusters - 1}, the "
            f"range given by {n_clusters} mean directions"
        )
    return array


def check_assigned_probabilities(probabilities, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Return gamma_ik of each document's assigned cluster k as float64 of shape (N,).

    ``probabilities`` is either that vector already or the full (N, K) responsibility matrix,
    from which the entry of the labelled column is taken. Zeros are raised to 1e-30.
    """
    array = np.asarray(probabilities)
    n_samples = labels.shape[0]

    if array.ndim == 2:
        array = check_numeric_array(array, "probabilities", ndim=2)
        if array.shape != (n_samples, n_clusters):
            raise ValueError(
                f"probabilities has shape {array.shape}, but a full matrix must have shape "
                f"({n_samples}, {n_clusters}): one row per document, one column per cluster"
            )
        assigned = array[np.arange(n_samples), labels].astype(np.float64)
    else:
        assigned = check_numeric_array(array, "probabilities", ndim=1).astype(np.float64)
        if assigned.shape[0] != n_samples:
            raise ValueError(
                f"probabilities has {assigned.shape[0]} entries but vectors has {n_samples} "
                "rows. Pass the probability of each document's assigned cluster, or the full "
                "(N, K) matrix."
            )

    invalid = (assigned < 0.0) | (assigned > 1.0 + _PROBABILITY_SLACK)
    if invalid.any():
        index = int(np.flatnonzero(invalid)[0])
        raise ValueError(
            f"probability {assigned[index].item()!r} of document {index} is outside [0, 1]. "
            "Pass probabilities, not log-probabilities or scores."
        )
    return np.clip(assigned, PROBABILITY_FLOOR, 1.0)


def check_concentrations(concentrations, n_clusters: int) -> np.ndarray:
    """Return the vMF concentrations as float64 of shape (K,), each finite and >= 0."""
    array = check_numeric_array(concentrations, "concentrations", ndim=1).astype(np.float64)
    if array.shape[0] != n_clusters:
        raise ValueError(
            f"concentrations has {array.shape[0]} entries but mean_directions has "
            f"{n_clusters} rows. Pass one concentration per cluster."
        )
    negative = array < 0
    if negative.any():
        index = int(np.flatnonzero(negative)[0])
        raise ValueError(f"concentration {array[index].item()!r} of cluster {index} must be >= 0")
    return array


def check_same_length(values: Sequence, name: str, n_samples: int) -> None:
    """Raise ``ValueError`` unless ``values`` has one entry per document."""
    if len(values) != n_samples:
        raise ValueError(
            f"{name} has {len(values)} entries but vectors has {n_samples} rows. "
            f"Pass one entry of {name} per document."
        )


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int, raising ``ValueError`` unless it is an integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_nonnegative_float(value, name: str) -> float:
    """Return ``value`` as a float, raising ``ValueError`` unless it is finite and >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return number


def check_fraction(value, name: str, *, low: float, high: float) -> float:
    """Return ``value`` as a float in the closed interval [low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    number = float(value)
    if not (low <= number <= high):
        raise ValueError(f"{name} must lie in [{low}, {high}], got {value!r}")
    return number
