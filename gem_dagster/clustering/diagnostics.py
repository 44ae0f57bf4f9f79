"""Records of a fit, kept as data, and the check that the objective never decreased."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

E_STEP = "e-step"
M_STEP = "m-step"
RESEED = "reseed"


@dataclass(frozen=True)
class IterationRecord:
    """Statistics of one EM iteration (an E-step followed by an M-step).

    ``dataclasses.asdict`` turns a list of records into rows of a table.

    Attributes
    ----------
    iteration : int
        1-based iteration number.
    objective : float
        F after the M-step.
    objective_after_e_step : float
        F after the E-step of this iteration.
    balance_entropy : float
        ``H(pi) / log K`` of the E-step's cluster mass; 1 means perfectly balanced.
    min_mass, max_mass : float
        Smallest and largest cluster mass ``pi_k``.
    kappa_mean, kappa_min, kappa_max : float
        Concentrations after the M-step.
    e_step_iterations : int
        Newton steps over all rows (dual solver), not counting the cheaper steps on a
        subsample that may precede them, or MM rounds (mm solver) of the E-step.
    e_step_converged : bool
        Whether the E-step met its tolerance.
    seconds : float
        Wall-clock time of the iteration.
    reseeded_cluster : int or None
        Cluster moved onto the worst-fitting row after the M-step, if any.
    """

    iteration: int
    objective: float
    objective_after_e_step: float
    balance_entropy: float
    min_mass: float
    max_mass: float
    kappa_mean: float
    kappa_min: float
    kappa_max: float
    e_step_iterations: int
    e_step_converged: bool
    seconds: float
    reseeded_cluster: int | None = None


@dataclass(frozen=True)
class Reseed:
    """A cluster whose mass fell under the floor and was moved onto a data row.

    Attributes
    ----------
    iteration : int
        Iteration after whose M-step the cluster was moved.
    cluster : int
        Index of the moved cluster.
    row : int
        Row of the training data that became its mean direction.
    mass : float
        The cluster's mass before the move.
    """

    iteration: int
    cluster: int
    row: int
    mass: float


def find_objective_decreases(trace, steps=None, rtol: float = 1e-9) -> np.ndarray:
    """Return the positions where the objective decreased by more than ``rtol``, relatively.

    Position ``j`` is reported when ``trace[j] < trace[j - 1] - rtol * max(|trace[j - 1]|, 1)``.
    Entries whose step is ``"reseed"`` are skipped, because moving a cluster onto a data row is
    the one step allowed to lower F.

    Parameters
    ----------
    trace : array-like of shape (n_steps,)
        Objective after every half-step, for example ``GEM.objective_trace_``.
    steps : array-like of str of shape (n_steps,), optional
        Kind of each entry, for example ``GEM.objective_steps_``.
    rtol : float
        Allowed relative decrease (rounding).

    Returns
    -------
    ndarray of int
        Positions ``j >= 1`` of the offending entries; empty when F never decreased.
    """
    values = np.asarray(trace, dtype=np.float64)
    if values.size < 2:
        return np.empty(0, dtype=np.int64)

    previous = values[:-1]
    allowed = rtol * np.maximum(np.abs(previous), 1.0)
    decreased = values[1:] < previous - allowed
    if steps is not None:
        decreased &= np.asarray(steps)[1:] != RESEED
    return np.flatnonzero(decreased) + 1
