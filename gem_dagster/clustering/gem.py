"""GEM: a balance-regularised von Mises-Fisher mixture on the unit hypersphere.

Reference: Min, Qiao, Chen and Li, "Geometric Entropy Mixing", arXiv 2605.26121 (ICML 2026).
The dual E-step solver, the "auto" balance rule and the re-seeding step are this package's
additions; the paper describes the minorize-maximize E-step.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ._gem_fit import (
    EMRun,
    GEMConfig,
    cluster_bias,
    initial_parameters,
    resolve_balance,
)
from ._inputs import (
    as_unit_rows,
    check_choice,
    check_int,
    check_kappa_bounds,
    check_n_features,
    check_positive_float,
)
from ._runtime import (
    ConvergenceWarning,
    MemoryPlan,
    plan_memory,
    resolve_device,
    resolve_rng,
)
from .estep import accumulate_dual_statistics, solve_dual
from .objective import objective_value
from .responsibilities import LogitSource
from .sphere import DEFAULT_KAPPA_BOUNDS

_E_STEP_SOLVERS = ("dual", "mm")
_KAPPA_MODES = ("per_cluster", "tied")


class GEM:
    """Balance-regularised mixture of von Mises-Fisher distributions (GEM).

    Clusters unit-norm embeddings into ``n_clusters`` semantic domains of similar size. The
    mixture prior is fixed at 1/K, and the cluster mass ``pi = mean_i gamma_i`` is pulled
    towards uniform by a quadratic penalty. EM maximises

        F = (1/N) sum_i [ sum_k gamma_ik L_ik + H(gamma_i) ] - (lambda/2) ||pi - u||^2,

    with logits ``L_ik = -log K + log C_d(kappa_k) + kappa_k mu_k . x_i`` and ``u = 1/K``.
    F never decreases from one half-step to the next, except at a recorded re-seeding.

    Parameters
    ----------
    n_clusters : int, default=24
        Number of clusters K >= 2.
    balance : float or "auto", default=5000.0
        Penalty weight lambda >= 0, on the scale of the logits. 0 gives vMF EM with a fixed
        uniform prior. "auto" sets ``lambda = 5.5 * median(initial kappa)``.
    e_step : {"dual", "mm"}, default="dual"
        E-step solver. "dual" minimises a K-dimensional convex dual by Newton's method and
        is fast for any lambda. "mm" is the minorize-maximize mirror ascent of the GEM paper.
        It converges linearly, taking tens to hundreds of O(N K) rounds per E-step, and it
        keeps the N x K logits and responsibilities in memory regardless of
        ``memory_budget_mb``.
    kappa : {"per_cluster", "tied"}, default="per_cluster"
        One concentration per cluster, or one shared by all.
    max_iter : int, default=100
        Maximum EM iterations.
    tol : float, default=1e-6
        Stop when F changes by at most ``tol * |F|`` between iterations.
    init : "k-means++" or array-like of shape (n_clusters, n_features), default="k-means++"
        Initial mean directions: seeds of cosine k-means++ followed by one assignment to the
        nearest seed (mu and kappa come from that partition), or given directions (kappa from
        the partition they induce).
    random_state : None, int or numpy.random.Generator, default=None
        Seed of the k-means++ draws.
    device : str or torch.device, default="cpu"
        Torch device: "cpu", "cuda" or "cuda:N". A CUDA device that is not available raises.
    memory_budget_mb : float, default=1024
        Bound, in MiB, on the working memory beyond the data matrix: chunk temporaries, and
        the N x K float64 logits and responsibilities when they fit in half of it. When two
        N x K float64 matrices fit in that half, the dual E-step also caches the exponentiated
        logits, which makes each of its line-search trials one matrix-vector product.
    kappa_bounds : tuple of float, default=(1e-3, 1e5)
        Interval to which concentrations are clipped.
    e_step_tol : float, default=1e-10
        E-step tolerance in units of cluster mass: the largest entry of the dual gradient
        ("dual"), or the mean L1 distance to the fixed point ("mm").
    e_step_max_iter : int, default=100
        Maximum Newton steps ("dual") or MM rounds ("mm") per E-step.
    reseed_mass_floor : float or None, default=None
        When set, a cluster whose mass falls below this value during the first
        ``reseed_until_iter`` iterations is moved onto the worst-fitting row (lowest mixture
        log-density). At most one cluster moves per iteration. A move may lower F, so each
        one is listed in ``reseeds_`` and marked "reseed" in ``objective_steps_``.
    reseed_until_iter : int, default=10
        Last iteration in which re-seeding may happen.

    Attributes
    ----------
    mean_directions_ : ndarray of shape (n_clusters, n_features)
        Unit mean directions mu_k.
    concentrations_ : ndarray of shape (n_clusters,)
        Concentrations kappa_k.
    cluster_mass_ : ndarray of shape (n_clusters,)
        Soft cluster mass pi_k of the training data, summing to 1.
    dual_variables_ : ndarray of shape (n_clusters,)
        ``nu = lambda (pi - u)``: the per-cluster offset subtracted from the logits, so that
        ``predict_proba(X) = softmax(L(X) - nu)``. Zero when lambda = 0.
    labels_ : ndarray of shape (n_samples,)
        Hard label ``argmax_k gamma_ik`` of each training row.
    responsibilities_ : ndarray of shape (n_samples, n_clusters) or None
        Final responsibilities, kept only when they fit in half of ``memory_budget_mb``.
    balance_ : float
        The lambda used, after resolving "auto".
    n_iter_ : int
        EM iterations run.
    converged_ : bool
        Whether ``tol`` was met before ``max_iter``.
    objective_ : float
        F at the end of the fit.
    objective_trace_ : ndarray of shape (n_steps,)
        F after every half-step: E-step, M-step, optional re-seeding, and a final E-step
        that makes the responsibilities match the final parameters.
    objective_steps_ : ndarray of str of shape (n_steps,)
        Kind of each entry of ``objective_trace_``: "e-step", "m-step" or "reseed".
    history_ : list of IterationRecord
        Per-iteration statistics: F, balance entropy, min and max mass, kappa summary, E-step
        iterations and seconds.
    reseeds_ : list of Reseed
        Clusters moved by re-seeding.
    n_features_in_ : int
        Dimension d of the training data.

    Notes
    -----
    Input rows are always scaled to unit L2 norm, and a ``UserWarning`` reports rows whose
    norm was further than 1e-3 from 1. Rows of zero norm or with non-finite values raise a
    ``ValueError`` naming the row.

    The data stay float32 and the cosines come from float32 matrix products on ``device``.
    Logits, log-sum-exp, resultant sums, kappa and F are float64. F is evaluated from the
    float64 resultants, so the M-step never lowers it beyond float64 rounding.

    NOTE: the E-step maximises F for logits built from float32 cosines, so an E-step can
    lower the float64 F by rounding noise. The largest drop measured on synthetic data
    (d = 64, N = 3,000, 150 iterations at the optimum) was 8e-11 relative, below the 1e-9
    tolerance of ``find_objective_decreases``. TF32 matrix products, if enabled globally in
    torch, make this noise orders of magnitude larger.
    """

    def __init__(
        self,
        n_clusters: int = 24,
        *,
        balance: float | str = 5000.0,
        e_step: str = "dual",
        kappa: str = "per_cluster",
        max_iter: int = 100,
        tol: float = 1e-6,
        init="k-means++",
        random_state=None,
        device: str | torch.device = "cpu",
        memory_budget_mb: float = 1024,
        kappa_bounds: tuple[float, float] = DEFAULT_KAPPA_BOUNDS,
        e_step_tol: float = 1e-10,
        e_step_max_iter: int = 100,
        reseed_mass_floor: float | None = None,
        reseed_until_iter: int = 10,
    ) -> None:
        self.n_clusters = n_clusters
        self.balance = balance
        self.e_step = e_step
        self.kappa = kappa
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.random_state = random_state
        self.device = device
        self.memory_budget_mb = memory_budget_mb
        self.kappa_bounds = kappa_bounds
        self.e_step_tol = e_step_tol
        self.e_step_max_iter = e_step_max_iter
        self.reseed_mass_floor = reseed_mass_floor
        self.reseed_until_iter = reseed_until_iter

    # ------------------------------------------------------------------ validation

    def _validated_config(self) -> GEMConfig:
        n_clusters = check_int("n_clusters", self.n_clusters, 2)

        if isinstance(self.balance, str):
            check_choice("balance", self.balance, ("auto",))
            balance = None
        else:
            balance = check_positive_float("balance", self.balance, allow_zero=True)

        e_step = check_choice("e_step", self.e_step, _E_STEP_SOLVERS)
        kappa_mode = check_choice("kappa", self.kappa, _KAPPA_MODES)

        if isinstance(self.init, str):
            init = check_choice("init", self.init, ("k-means++",))
        else:
            init = self.init

        floor = self.reseed_mass_floor
        if floor is not None:
            floor = check_positive_float("reseed_mass_floor", floor)
            if floor >= 1.0 / n_clusters:
                raise ValueError(
                    f"reseed_mass_floor must be below the uniform mass 1/n_clusters = "
                    f"{1.0 / n_clusters:.4g}, got {self.reseed_mass_floor!r}"
                )

        return GEMConfig(
            n_clusters=n_clusters,
            balance=balance,
            e_step=e_step,
            tied=kappa_mode == "tied",
            max_iter=check_int("max_iter", self.max_iter, 1),
            tol=check_positive_float("tol", self.tol, allow_zero=True),
            init=init,
            memory_budget_mb=check_positive_float("memory_budget_mb", self.memory_budget_mb),
            kappa_bounds=check_kappa_bounds(self.kappa_bounds),
            e_step_tol=check_positive_float("e_step_tol", self.e_step_tol),
            e_step_max_iter=check_int("e_step_max_iter", self.e_step_max_iter, 1),
            reseed_mass_floor=floor,
            reseed_until_iter=check_int("reseed_until_iter", self.reseed_until_iter, 0),
        )

    # ------------------------------------------------------------------ fit

    def fit(self, X, y=None) -> GEM:
        """Fit the mixture to unit-norm rows of ``X``.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features)
            Embeddings; rows are scaled to unit norm.
        y : ignored
            Present for API compatibility.

        Returns
        -------
        GEM
            The fitted estimator.
        """
        config = self._validated_config()
        device = resolve_device(self.device)
        rng = resolve_rng(self.random_state)
        data = as_unit_rows(X, device)
        n_samples, n_features = data.shape
        if n_samples < config.n_clusters:
            raise ValueError(
                f"n_clusters={config.n_clusters} exceeds the {n_samples} rows of X. "
                "Pass more rows or fewer clusters."
            )

        plan = plan_memory(n_samples, n_features, config.n_clusters, config.memory_budget_mb)
        directions, concentrations = initial_parameters(data, config, rng, plan)
        balance = resolve_balance(config, concentrations)

        run = EMRun(data, config, plan, directions, concentrations, balance)
        converged = run.run()
        if not converged:
            warnings.warn(
                f"GEM did not converge in max_iter={config.max_iter} iterations "
                f"(tol={config.tol}). Increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        statistics = run.finish()

        self.n_features_in_ = n_features
        self.balance_ = balance
        self.mean_directions_ = run.directions.cpu().numpy()
        self.concentrations_ = run.concentrations.cpu().numpy()
        self.cluster_mass_ = statistics.mass.cpu().numpy()
        self.dual_variables_ = run.nu.cpu().numpy()
        self.labels_ = statistics.labels.cpu().numpy()
        responsibilities = statistics.responsibilities
        if responsibilities is not None:
            responsibilities = responsibilities.cpu().numpy()
        self.responsibilities_ = responsibilities
        self.n_iter_ = len(run.history)
        self.converged_ = converged
        self.objective_trace_ = np.asarray(run.trace, dtype=np.float64)
        self.objective_steps_ = np.asarray(run.steps)
        self.objective_ = float(run.trace[-1])
        self.history_ = run.history
        self.reseeds_ = run.reseeds
        return self

    # ------------------------------------------------------------------ inference

    def _check_fitted(self) -> None:
        if not hasattr(self, "mean_directions_"):
            raise RuntimeError("this GEM instance is not fitted yet. Call fit(X) first.")

    def _fitted_source(self, X, cache: bool) -> tuple[LogitSource, MemoryPlan]:
        """Return the logits of ``X`` under the fitted parameters, cached if asked and they fit,
        and the memory plan for ``X``."""
        self._check_fitted()
        device = resolve_device(self.device)
        data = as_unit_rows(X, device)
        check_n_features(data, self.n_features_in_)

        n_clusters = self.mean_directions_.shape[0]
        budget = check_positive_float("memory_budget_mb", self.memory_budget_mb)
        plan = plan_memory(data.shape[0], data.shape[1], n_clusters, budget)
        directions = torch.as_tensor(self.mean_directions_, device=device)
        concentrations = torch.as_tensor(self.concentrations_, device=device)
        bias = cluster_bias(data.shape[1], concentrations, n_clusters)
        source = LogitSource(
            data, directions, concentrations, bias, plan.chunk_rows, cache and plan.cache_logits
        )
        return source, plan

    def predict_proba(self, X) -> np.ndarray:
        """Return responsibilities ``softmax(L(X) - nu)`` under the fitted parameters.

        The fitted dual variables ``nu`` carry the training balance over to new rows, so
        ``predict_proba`` on the training data reproduces the final responsibilities:
        exactly with the dual solver, and up to the E-step tolerance with "mm".

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_clusters)
        """
        source, _ = self._fitted_source(X, cache=False)
        nu = torch.as_tensor(self.dual_variables_, device=source.X.device)
        chunks = [
            torch.softmax(source.logits(start, stop) - nu, dim=1).cpu()
            for start, stop in source.bounds
        ]
        return torch.cat(chunks).numpy()

    def predict(self, X) -> np.ndarray:
        """Return the hard label ``argmax_k softmax(L(X) - nu)_k`` of each row.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,), int64
        """
        source, _ = self._fitted_source(X, cache=False)
        nu = torch.as_tensor(self.dual_variables_, device=source.X.device)
        chunks = [
            torch.argmax(source.logits(start, stop) - nu, dim=1).cpu()
            for start, stop in source.bounds
        ]
        return torch.cat(chunks).numpy()

    def fit_predict(self, X, y=None) -> np.ndarray:
        """Fit to ``X`` and return ``labels_``."""
        return self.fit(X).labels_

    def score(self, X, y=None) -> float:
        """Return F on ``X`` for the fitted parameters, maximised over the responsibilities.

        The responsibilities of ``X`` come from the dual E-step with ``balance_``, whatever
        ``e_step`` was used for fitting. On the training data this is the final F of the
        fit, up to the E-step tolerance.
        """
        # Each Newton step of the dual E-step is one pass over the logits, so cache them.
        source, plan = self._fitted_source(X, cache=True)
        device = source.X.device
        n_clusters = self.mean_directions_.shape[0]
        solution = solve_dual(
            source,
            self.balance_,
            torch.as_tensor(self.dual_variables_, device=device),
            check_positive_float("e_step_tol", self.e_step_tol),
            check_int("e_step_max_iter", self.e_step_max_iter, 1),
            cache_exponentials=plan.cache_exponentials,
        )
        statistics = accumulate_dual_statistics(source, solution, False, find_worst_row=False)
        directions = torch.as_tensor(self.mean_directions_, device=device)
        concentrations = torch.as_tensor(self.concentrations_, device=device)
        bias = cluster_bias(self.n_features_in_, concentrations, n_clusters)
        return objective_value(statistics, directions, concentrations, bias, self.balance_)
