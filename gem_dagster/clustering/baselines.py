"""Baseline clusterers with the GEM interface: Euclidean k-means, spherical k-means and
vanilla vMF EM (learned mixture weights, no balance penalty).

All three have ``fit``, ``predict``, ``fit_predict``, ``score``, ``labels_``,
``cluster_mass_``, ``n_iter_``, ``converged_`` and ``objective_trace_``, and follow the same
conventions as GEM for ``random_state``, ``device`` and ``memory_budget_mb``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ._inputs import (
    as_float32_matrix,
    as_unit_rows,
    check_choice,
    check_initial_directions,
    check_int,
    check_kappa_bounds,
    check_n_features,
    check_positive_float,
)
from ._runtime import ConvergenceWarning, chunk_bounds, plan_memory, resolve_device, resolve_rng
from ._seeding import (
    euclidean_kmeans_plus_plus,
    nearest_direction_partition,
    spherical_kmeans_plus_plus,
)
from .mstep import projected_lengths, solve_concentrations, update_mean_directions
from .objective import objective_value
from .responsibilities import LogitSource, accumulate_statistics
from .sphere import DEFAULT_KAPPA_BOUNDS, log_vmf_normalizer

__all__ = ["KMeans", "SphericalKMeans", "VanillaVMF"]


def _check_common(estimator) -> tuple[int, int, float, float]:
    """Validate the parameters that every baseline shares."""
    n_clusters = check_int("n_clusters", estimator.n_clusters, 2)
    max_iter = check_int("max_iter", estimator.max_iter, 1)
    tol = check_positive_float("tol", estimator.tol, allow_zero=True)
    budget = check_positive_float("memory_budget_mb", estimator.memory_budget_mb)
    if isinstance(estimator.init, str):
        check_choice("init", estimator.init, ("k-means++",))
    return n_clusters, max_iter, tol, budget


def _check_enough_rows(n_samples: int, n_clusters: int) -> None:
    if n_samples < n_clusters:
        raise ValueError(
            f"n_clusters={n_clusters} exceeds the {n_samples} rows of X. "
            "Pass more rows or fewer clusters."
        )


def _warn_not_converged(name: str, max_iter: int, tol: float) -> None:
    warnings.warn(
        f"{name} did not converge in max_iter={max_iter} iterations (tol={tol}). "
        "Increase max_iter or tol.",
        ConvergenceWarning,
        stacklevel=3,
    )


def _relative_change_small(current: float, previous: float | None, tol: float) -> bool:
    return previous is not None and abs(current - previous) <= tol * abs(current)


@dataclass
class _HardAssignment:
    """Nearest-centre assignment of every row, with the sums that the update needs."""

    labels: torch.Tensor
    counts: torch.Tensor
    sums: torch.Tensor
    total_score: float
    worst_row: int


def _assign_to_centres(
    X: torch.Tensor, centres: torch.Tensor, chunk_rows: int, euclidean: bool
) -> _HardAssignment:
    """Assign rows to the nearest centre: by squared Euclidean distance, or by cosine.

    The score of a row is its cosine to its centre (spherical) or minus its squared distance
    (Euclidean), so a larger total is better in both cases. ``worst_row`` has the lowest score.
    """
    n_samples, n_features = X.shape
    n_clusters = centres.shape[0]
    device = X.device
    centres32 = centres.to(torch.float32).T.contiguous()
    centre_norms = (centres.to(torch.float64) ** 2).sum(dim=1)

    labels = torch.empty(n_samples, dtype=torch.int64, device=device)
    counts = torch.zeros(n_clusters, dtype=torch.float64, device=device)
    sums = torch.zeros(n_clusters, n_features, dtype=torch.float64, device=device)
    total = torch.zeros((), dtype=torch.float64, device=device)
    worst_score = math.inf
    worst_row = 0

    for start, stop in chunk_bounds(n_samples, chunk_rows):
        rows = X[start:stop]
        cross = (rows @ centres32).double()
        if euclidean:
            row_norms = (rows.double() ** 2).sum(dim=1, keepdim=True)
            scores = -(row_norms - 2.0 * cross + centre_norms).clamp_min(0.0)
        else:
            scores = cross
        best, chunk_labels = scores.max(dim=1)

        labels[start:stop] = chunk_labels
        counts.index_add_(0, chunk_labels, torch.ones_like(best))
        sums.index_add_(0, chunk_labels, rows.double())
        total += best.sum()

        chunk_worst = int(torch.argmin(best))
        if float(best[chunk_worst]) < worst_score:
            worst_score = float(best[chunk_worst])
            worst_row = start + chunk_worst

    return _HardAssignment(labels, counts, sums, float(total), worst_row)


class _HardClusterer:
    """Lloyd iterations shared by Euclidean and spherical k-means."""

    _euclidean: bool
    _name: str

    def _prepare(self, X, device: torch.device) -> torch.Tensor:
        raise NotImplementedError

    def _seed(self, data: torch.Tensor, n_clusters: int, rng) -> torch.Tensor:
        raise NotImplementedError

    def _update_centres(self, assignment: _HardAssignment, centres: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _fit_centres(self, X):
        n_clusters, max_iter, tol, budget = _check_common(self)
        device = resolve_device(self.device)
        rng = resolve_rng(self.random_state)
        data = self._prepare(X, device)
        n_samples, n_features = data.shape
        _check_enough_rows(n_samples, n_clusters)
        chunk_rows = plan_memory(n_samples, n_features, n_clusters, budget).chunk_rows

        centres = self._seed(data, n_clusters, rng)
        trace: list[float] = []
        previous = None
        converged = False
        n_iter = 0
        for n_iter in range(1, max_iter + 1):
            assignment = _assign_to_centres(data, centres, chunk_rows, self._euclidean)
            trace.append(assignment.total_score / n_samples)
            if _relative_change_small(trace[-1], previous, tol):
                converged = True
                break
            previous = trace[-1]
            centres = self._update_centres(assignment, centres)
            centres = _refill_empty(centres, assignment, data)

        if not converged:
            _warn_not_converged(self._name, max_iter, tol)

        final = _assign_to_centres(data, centres, chunk_rows, self._euclidean)
        self.n_features_in_ = n_features
        self.labels_ = final.labels.cpu().numpy()
        self.cluster_mass_ = (final.counts / n_samples).cpu().numpy()
        self.n_iter_ = n_iter
        self.converged_ = converged
        self.objective_trace_ = np.asarray(trace, dtype=np.float64)
        return centres, final

    def _predict_assignment(self, X, centres: np.ndarray) -> _HardAssignment:
        if not hasattr(self, "labels_"):
            raise RuntimeError(f"this {self._name} instance is not fitted yet. Call fit(X) first.")
        device = resolve_device(self.device)
        data = self._prepare(X, device)
        check_n_features(data, self.n_features_in_)
        budget = check_positive_float("memory_budget_mb", self.memory_budget_mb)
        chunk_rows = plan_memory(data.shape[0], data.shape[1], centres.shape[0], budget).chunk_rows
        centres_tensor = torch.as_tensor(centres, device=device)
        return _assign_to_centres(data, centres_tensor, chunk_rows, self._euclidean)

    def fit_predict(self, X, y=None) -> np.ndarray:
        """Fit to ``X`` and return ``labels_``."""
        return self.fit(X).labels_


def _refill_empty(
    centres: torch.Tensor, assignment: _HardAssignment, data: torch.Tensor
) -> torch.Tensor:
    """Move the centre of an empty cluster onto the worst-served row.

    Only the first empty cluster moves in one iteration, because the other rows' scores are
    not updated for the moved centre.
    """
    empty = torch.nonzero(assignment.counts == 0)
    if empty.numel() == 0:
        return centres
    centres = centres.clone()
    centres[int(empty[0, 0])] = data[assignment.worst_row].double()
    return centres


class KMeans(_HardClusterer):
    """Euclidean k-means (Lloyd's algorithm) with k-means++ seeding.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters K >= 2.
    max_iter : int, default=300
        Maximum Lloyd iterations.
    tol : float, default=1e-4
        Stop when the mean squared distance changes by at most ``tol`` relative.
    init : "k-means++" or array-like of shape (n_clusters, n_features), default="k-means++"
        Initial centres.
    random_state : None, int or numpy.random.Generator, default=None
        Seed of the k-means++ draws.
    device : str or torch.device, default="cpu"
        Torch device.
    memory_budget_mb : float, default=1024
        Bound, in MiB, on chunk temporaries beyond the data matrix.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    labels_ : ndarray of shape (n_samples,)
    inertia_ : float
        Sum of squared distances of the rows to their centres.
    cluster_mass_ : ndarray of shape (n_clusters,)
        Share of rows in each cluster.
    objective_trace_ : ndarray of shape (n_iter,)
        Mean squared distance after each assignment step, which never increases.
    n_iter_ : int
    converged_ : bool
    n_features_in_ : int

    Notes
    -----
    The input is used as given, without normalisation. An empty cluster's centre moves onto
    the row farthest from its centre.

    Squared distances are computed as ``||x||^2 - 2 x.c + ||c||^2`` with a float32 cross
    product, so the inertia loses precision when the data lie far from the origin compared
    with the spread of a cluster. Centre such data before fitting.
    """

    _euclidean = True
    _name = "KMeans"

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        max_iter: int = 300,
        tol: float = 1e-4,
        init="k-means++",
        random_state=None,
        device: str | torch.device = "cpu",
        memory_budget_mb: float = 1024,
    ) -> None:
        self.n_clusters = n_clusters
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.random_state = random_state
        self.device = device
        self.memory_budget_mb = memory_budget_mb

    def _prepare(self, X, device: torch.device) -> torch.Tensor:
        return as_float32_matrix(X, device)

    def _seed(self, data: torch.Tensor, n_clusters: int, rng) -> torch.Tensor:
        if isinstance(self.init, str):
            return euclidean_kmeans_plus_plus(data, n_clusters, rng)
        centres = as_float32_matrix(self.init, data.device, name="init").double()
        if centres.shape != (n_clusters, data.shape[1]):
            raise ValueError(
                f"init must have shape ({n_clusters}, {data.shape[1]}), got {tuple(centres.shape)}"
            )
        return centres

    def _update_centres(self, assignment: _HardAssignment, centres: torch.Tensor) -> torch.Tensor:
        occupied = assignment.counts > 0
        means = assignment.sums / assignment.counts.clamp_min(1.0)[:, None]
        return torch.where(occupied[:, None], means, centres)

    def fit(self, X, y=None) -> KMeans:
        """Cluster the rows of ``X`` (array-like or tensor of shape (n_samples, n_features))."""
        centres, final = self._fit_centres(X)
        self.cluster_centers_ = centres.cpu().numpy()
        self.inertia_ = -final.total_score
        self.objective_trace_ = -self.objective_trace_
        return self

    def predict(self, X) -> np.ndarray:
        """Return the index of the nearest centre of each row, shape (n_samples,)."""
        return self._predict_assignment(X, self.cluster_centers_).labels.cpu().numpy()

    def score(self, X, y=None) -> float:
        """Return minus the sum of squared distances of the rows of ``X`` to their centres."""
        return self._predict_assignment(X, self.cluster_centers_).total_score


class SphericalKMeans(_HardClusterer):
    """Spherical k-means: k-means with cosine similarity on unit-norm rows.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters K >= 2.
    max_iter : int, default=300
        Maximum iterations.
    tol : float, default=1e-6
        Stop when the mean cosine changes by at most ``tol`` relative.
    init : "k-means++" or array-like of shape (n_clusters, n_features), default="k-means++"
        Initial mean directions (cosine k-means++ seeds, or given directions).
    random_state : None, int or numpy.random.Generator, default=None
        Seed of the k-means++ draws.
    device : str or torch.device, default="cpu"
        Torch device.
    memory_budget_mb : float, default=1024
        Bound, in MiB, on chunk temporaries beyond the data matrix.

    Attributes
    ----------
    mean_directions_ : ndarray of shape (n_clusters, n_features)
        Unit mean direction of each cluster.
    labels_ : ndarray of shape (n_samples,)
    cluster_mass_ : ndarray of shape (n_clusters,)
        Share of rows in each cluster.
    objective_trace_ : ndarray of shape (n_iter,)
        Mean cosine of the rows to their directions after each assignment, which never
        decreases.
    n_iter_ : int
    converged_ : bool
    n_features_in_ : int

    Notes
    -----
    Rows are scaled to unit norm as in GEM. An empty cluster moves onto the row of lowest
    cosine to its direction.
    """

    _euclidean = False
    _name = "SphericalKMeans"

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        max_iter: int = 300,
        tol: float = 1e-6,
        init="k-means++",
        random_state=None,
        device: str | torch.device = "cpu",
        memory_budget_mb: float = 1024,
    ) -> None:
        self.n_clusters = n_clusters
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.random_state = random_state
        self.device = device
        self.memory_budget_mb = memory_budget_mb

    def _prepare(self, X, device: torch.device) -> torch.Tensor:
        return as_unit_rows(X, device)

    def _seed(self, data: torch.Tensor, n_clusters: int, rng) -> torch.Tensor:
        if isinstance(self.init, str):
            return spherical_kmeans_plus_plus(data, n_clusters, rng)
        return check_initial_directions(self.init, n_clusters, data.shape[1], data.device)

    def _update_centres(self, assignment: _HardAssignment, centres: torch.Tensor) -> torch.Tensor:
        return update_mean_directions(assignment.sums, centres)

    def fit(self, X, y=None) -> SphericalKMeans:
        """Cluster the rows of ``X`` (array-like or tensor of shape (n_samples, n_features))."""
        centres, _ = self._fit_centres(X)
        self.mean_directions_ = centres.cpu().numpy()
        return self

    def predict(self, X) -> np.ndarray:
        """Return the index of the direction of largest cosine for each row."""
        return self._predict_assignment(X, self.mean_directions_).labels.cpu().numpy()

    def score(self, X, y=None) -> float:
        """Return the mean cosine of the rows of ``X`` to their nearest direction."""
        assignment = self._predict_assignment(X, self.mean_directions_)
        return assignment.total_score / assignment.labels.shape[0]


class VanillaVMF:
    """Mixture of von Mises-Fisher distributions fitted by EM with learned mixture weights.

    This is the standard model (Banerjee et al., JMLR 2005) without GEM's fixed prior and
    balance penalty: the weights follow the cluster mass (alpha_k <- pi_k), which lets large
    clusters grow.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of components K >= 2.
    max_iter : int, default=100
        Maximum EM iterations.
    tol : float, default=1e-6
        Stop when the mean log-likelihood changes by at most ``tol`` relative.
    init : "k-means++" or array-like of shape (n_clusters, n_features), default="k-means++"
        Initial mean directions, as in GEM. The initial weights are the shares of the
        partition that the initial directions induce.
    random_state : None, int or numpy.random.Generator, default=None
        Seed of the k-means++ draws.
    device : str or torch.device, default="cpu"
        Torch device.
    memory_budget_mb : float, default=1024
        Bound, in MiB, on working memory beyond the data matrix.
    kappa_bounds : tuple of float, default=(1e-3, 1e5)
        Interval to which concentrations are clipped.

    Attributes
    ----------
    mean_directions_ : ndarray of shape (n_clusters, n_features)
    concentrations_ : ndarray of shape (n_clusters,)
    mixture_weights_ : ndarray of shape (n_clusters,)
        Learned prior alpha_k. A component can reach weight 0.
    cluster_mass_ : ndarray of shape (n_clusters,)
        Soft cluster mass of the training data.
    labels_ : ndarray of shape (n_samples,)
    responsibilities_ : ndarray of shape (n_samples, n_clusters) or None
        Kept only when it fits in half of ``memory_budget_mb``.
    log_likelihood_ : float
        Mean log-likelihood per row at the end of the fit.
    objective_trace_ : ndarray of shape (n_iter + 1,)
        Mean log-likelihood after each E-step, including the final one. EM never lowers it.
    n_iter_ : int
    converged_ : bool
    n_features_in_ : int
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        max_iter: int = 100,
        tol: float = 1e-6,
        init="k-means++",
        random_state=None,
        device: str | torch.device = "cpu",
        memory_budget_mb: float = 1024,
        kappa_bounds: tuple[float, float] = DEFAULT_KAPPA_BOUNDS,
    ) -> None:
        self.n_clusters = n_clusters
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.random_state = random_state
        self.device = device
        self.memory_budget_mb = memory_budget_mb
        self.kappa_bounds = kappa_bounds

    def fit(self, X, y=None) -> VanillaVMF:
        """Fit the mixture to the unit-norm rows of ``X`` (shape (n_samples, n_features))."""
        n_clusters, max_iter, tol, budget = _check_common(self)
        bounds = check_kappa_bounds(self.kappa_bounds)
        device = resolve_device(self.device)
        rng = resolve_rng(self.random_state)
        data = as_unit_rows(X, device)
        n_samples, n_features = data.shape
        _check_enough_rows(n_samples, n_clusters)
        plan = plan_memory(n_samples, n_features, n_clusters, budget)

        if isinstance(self.init, str):
            seeds = spherical_kmeans_plus_plus(data, n_clusters, rng)
        else:
            seeds = check_initial_directions(self.init, n_clusters, n_features, device)
        partition = nearest_direction_partition(data, seeds, plan.chunk_rows)
        directions = update_mean_directions(partition.sums, seeds)
        concentrations = solve_concentrations(
            projected_lengths(directions, partition.sums),
            partition.counts,
            n_features,
            bounds,
            False,
            None,
        )
        weights = partition.counts / n_samples

        keep = plan.keep_responsibilities
        trace: list[float] = []
        converged = False
        n_iter = 0
        for n_iter in range(1, max_iter + 1):
            statistics, log_likelihood = self._e_step(
                data, directions, concentrations, weights, plan, keep
            )
            trace.append(log_likelihood)
            if _relative_change_small(trace[-1], trace[-2] if len(trace) > 1 else None, tol):
                converged = True
                break

            directions = update_mean_directions(statistics.resultants, directions)
            lengths = projected_lengths(directions, statistics.resultants)
            concentrations = solve_concentrations(
                lengths, statistics.mass * n_samples, n_features, bounds, False, concentrations
            )
            weights = statistics.mass

        if not converged:
            _warn_not_converged("VanillaVMF", max_iter, tol)
            # The loop ended on an M-step, so the responsibilities must catch up with it.
            statistics, log_likelihood = self._e_step(
                data, directions, concentrations, weights, plan, keep
            )
            trace.append(log_likelihood)

        self.n_features_in_ = n_features
        self.mean_directions_ = directions.cpu().numpy()
        self.concentrations_ = concentrations.cpu().numpy()
        self.mixture_weights_ = weights.cpu().numpy()
        self.cluster_mass_ = statistics.mass.cpu().numpy()
        self.labels_ = statistics.labels.cpu().numpy()
        self.responsibilities_ = (
            None
            if statistics.responsibilities is None
            else statistics.responsibilities.cpu().numpy()
        )
        self.log_likelihood_ = trace[-1]
        self.objective_trace_ = np.asarray(trace, dtype=np.float64)
        self.n_iter_ = n_iter
        self.converged_ = converged
        return self

    @staticmethod
    def _bias(dim: int, concentrations: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Return ``log alpha_k + log C_d(kappa_k)``, which is ``-inf`` for a weight of 0."""
        return torch.log(weights) + log_vmf_normalizer(dim, concentrations)

    def _e_step(self, data, directions, concentrations, weights, plan, keep):
        """Return the posterior statistics and the mean log-likelihood of the rows."""
        bias = self._bias(data.shape[1], concentrations, weights)
        source = LogitSource(
            data, directions, concentrations, bias, plan.chunk_rows, plan.cache_logits
        )
        statistics = accumulate_statistics(
            source, lambda start, stop, logits: torch.log_softmax(logits, dim=1), keep
        )
        # With gamma the exact posterior, sum_k gamma_ik L_ik + H(gamma_i) = logsumexp_k L_ik,
        # so F with zero balance is the mean log-likelihood.
        log_likelihood = objective_value(statistics, directions, concentrations, bias, 0.0)
        return statistics, log_likelihood

    def _fitted_source(self, X) -> LogitSource:
        if not hasattr(self, "mean_directions_"):
            raise RuntimeError("this VanillaVMF instance is not fitted yet. Call fit(X) first.")
        device = resolve_device(self.device)
        data = as_unit_rows(X, device)
        check_n_features(data, self.n_features_in_)
        budget = check_positive_float("memory_budget_mb", self.memory_budget_mb)
        plan = plan_memory(data.shape[0], data.shape[1], self.mean_directions_.shape[0], budget)
        directions = torch.as_tensor(self.mean_directions_, device=device)
        concentrations = torch.as_tensor(self.concentrations_, device=device)
        weights = torch.as_tensor(self.mixture_weights_, device=device)
        bias = self._bias(data.shape[1], concentrations, weights)
        return LogitSource(data, directions, concentrations, bias, plan.chunk_rows, cache=False)

    def predict_proba(self, X) -> np.ndarray:
        """Return the posterior component probabilities of each row, shape (n_samples, K)."""
        source = self._fitted_source(X)
        chunks = [
            torch.softmax(source.logits(start, stop), dim=1).cpu() for start, stop in source.bounds
        ]
        return torch.cat(chunks).numpy()

    def predict(self, X) -> np.ndarray:
        """Return the most probable component of each row, shape (n_samples,)."""
        source = self._fitted_source(X)
        chunks = [
            torch.argmax(source.logits(start, stop), dim=1).cpu() for start, stop in source.bounds
        ]
        return torch.cat(chunks).numpy()

    def fit_predict(self, X, y=None) -> np.ndarray:
        """Fit to ``X`` and return ``labels_``."""
        return self.fit(X).labels_

    def score(self, X, y=None) -> float:
        """Return the mean log-likelihood of the rows of ``X``."""
        source = self._fitted_source(X)
        total = sum(
            float(torch.logsumexp(source.logits(start, stop), dim=1).sum())
            for start, stop in source.bounds
        )
        return total / source.n_samples
