"""The EM loop behind ``GEM.fit``: initial parameters, half-steps, re-seeding and records."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from ._inputs import check_initial_directions
from ._runtime import MemoryPlan
from ._seeding import nearest_direction_partition, spherical_kmeans_plus_plus
from .diagnostics import E_STEP, M_STEP, RESEED, IterationRecord, Reseed
from .estep import accumulate_dual_statistics, solve_dual, solve_mm
from .metrics import balance_entropy
from .mstep import projected_lengths, solve_concentrations, update_mean_directions
from .objective import objective_value
from .responsibilities import LogitSource, ResponsibilityStatistics, accumulate_statistics
from .sphere import log_vmf_normalizer

# Rule of thumb for balance="auto": lambda on the scale of the logits, 5.5 x median kappa.
AUTO_BALANCE_FACTOR = 5.5


@dataclass(frozen=True)
class GEMConfig:
    """Validated GEM parameters, with ``balance`` None for "auto"."""

    n_clusters: int
    balance: float | None
    e_step: str
    tied: bool
    max_iter: int
    tol: float
    init: str | np.ndarray
    memory_budget_mb: float
    kappa_bounds: tuple[float, float]
    e_step_tol: float
    e_step_max_iter: int
    reseed_mass_floor: float | None
    reseed_until_iter: int


def cluster_bias(dim: int, concentrations: torch.Tensor, n_clusters: int) -> torch.Tensor:
    """Return ``-log K + log C_d(kappa_k)``, the logit offset of each cluster."""
    return log_vmf_normalizer(dim, concentrations) - math.log(n_clusters)


def initial_parameters(
    data: torch.Tensor, config: GEMConfig, rng: np.random.Generator, plan: MemoryPlan
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the initial (mu, kappa) from k-means++ seeds or from given directions.

    Each row goes to the seed of largest cosine. With k-means++ seeds, mu_k is the mean
    direction of seed k's cell, or the seed itself if the cell is empty. Given directions are
    kept as they are. kappa_k is the best concentration for mu_k on its cell. With tied kappa
    it is one shared value, because the tied M-step cannot reproduce per-cluster values, so
    starting from them could make the first M-step lower F.
    """
    n_features = data.shape[1]
    from_seeds = isinstance(config.init, str)
    if from_seeds:
        seeds = spherical_kmeans_plus_plus(data, config.n_clusters, rng)
    else:
        seeds = check_initial_directions(config.init, config.n_clusters, n_features, data.device)

    partition = nearest_direction_partition(data, seeds, plan.chunk_rows)
    directions = update_mean_directions(partition.sums, seeds) if from_seeds else seeds

    concentrations = solve_concentrations(
        projected_lengths(directions, partition.sums),
        partition.counts,
        n_features,
        config.kappa_bounds,
        config.tied,
        None,
    )
    return directions, concentrations


def resolve_balance(config: GEMConfig, initial_concentrations: torch.Tensor) -> float:
    """Return lambda: the configured value, or 5.5 x the median initial kappa for "auto"."""
    if config.balance is not None:
        return config.balance
    return AUTO_BALANCE_FACTOR * float(np.median(initial_concentrations.cpu().numpy()))


@dataclass
class EStepResult:
    """Statistics of the E-step's responsibilities and how its solver finished."""

    statistics: ResponsibilityStatistics
    n_iter: int
    converged: bool


class EMRun:
    """One GEM fit in progress: the parameters, the E-step warm start and the records.

    Every half-step appends F to ``trace`` and its kind to ``steps``.
    """

    def __init__(
        self,
        data: torch.Tensor,
        config: GEMConfig,
        plan: MemoryPlan,
        directions: torch.Tensor,
        concentrations: torch.Tensor,
        balance: float,
    ) -> None:
        self.data = data
        self.config = config
        self.plan = plan
        self.directions = directions
        self.concentrations = concentrations
        self.balance = balance

        # Warm starts: dual variables for the dual solver, log-responsibilities for MM.
        self.nu = torch.zeros(config.n_clusters, dtype=torch.float64, device=data.device)
        self.log_responsibilities: torch.Tensor | None = None

        # N x K float64 buffers that every E-step reuses, by name.
        self._buffers: dict[str, torch.Tensor] = {}
        # The data in float64 for the resultant sums, made once if the memory plan allows.
        self._rows64 = data.double() if plan.cache_float64_rows else None

        self.trace: list[float] = []
        self.steps: list[str] = []
        self.history: list[IterationRecord] = []
        self.reseeds: list[Reseed] = []

    def _bias(self) -> torch.Tensor:
        return cluster_bias(self.data.shape[1], self.concentrations, self.config.n_clusters)

    def _record(self, statistics: ResponsibilityStatistics, step: str) -> float:
        value = objective_value(
            statistics, self.directions, self.concentrations, self._bias(), self.balance
        )
        self.trace.append(value)
        self.steps.append(step)
        return value

    def _matrix_buffer(self, name: str) -> torch.Tensor:
        """Return the N x K float64 buffer ``name``, allocated on first use."""
        if name not in self._buffers:
            shape = (self.data.shape[0], self.config.n_clusters)
            self._buffers[name] = torch.empty(shape, dtype=torch.float64, device=self.data.device)
        return self._buffers[name]

    def e_step(self, keep_responsibilities: bool, find_worst_row: bool = False) -> EStepResult:
        """Maximise F over the responsibilities for the current parameters.

        ``find_worst_row`` also locates the row that the mixture explains worst, which only
        re-seeding needs.
        """
        # The MM solver updates every row in every round, so it needs the whole logit matrix.
        cache = self.plan.cache_logits or self.config.e_step == "mm"
        source = LogitSource(
            self.data,
            self.directions,
            self.concentrations,
            self._bias(),
            self.plan.chunk_rows,
            cache,
            self._matrix_buffer("logits") if cache else None,
            self._rows64,
        )
        if self.config.e_step == "dual":
            return self._dual_e_step(source, keep_responsibilities, find_worst_row)
        return self._mm_e_step(source, keep_responsibilities, find_worst_row)

    def _dual_e_step(self, source: LogitSource, keep: bool, find_worst_row: bool) -> EStepResult:
        config = self.config
        cache_exponentials = self.plan.cache_exponentials
        solution = solve_dual(
            source,
            self.balance,
            self.nu,
            config.e_step_tol,
            config.e_step_max_iter,
            cache_exponentials=cache_exponentials,
            exponentials_out=(
                self._matrix_buffer("exponentials")
                if cache_exponentials and source.cached
                else None
            ),
        )
        self.nu = solution.nu
        statistics = accumulate_dual_statistics(source, solution, keep, find_worst_row)
        return EStepResult(statistics, solution.n_iter, solution.converged)

    def _mm_e_step(self, source: LogitSource, keep: bool, find_worst_row: bool) -> EStepResult:
        config = self.config
        logits = source.full()
        start = self.log_responsibilities
        if start is None:
            start = torch.log_softmax(logits, dim=1)
        solution = solve_mm(logits, start, self.balance, config.e_step_tol, config.e_step_max_iter)
        self.log_responsibilities = log_gamma = solution.log_responsibilities

        def stored_log_responsibilities(begin, stop, logits):
            return log_gamma[begin:stop]

        statistics = accumulate_statistics(
            source, stored_log_responsibilities, keep, find_worst_row
        )
        # At the MM fixed point nu = lambda (pi - u); predict_proba uses it for new rows.
        self.nu = self.balance * (statistics.mass - 1.0 / config.n_clusters)
        return EStepResult(statistics, solution.n_iter, solution.converged)

    def m_step(self, statistics: ResponsibilityStatistics) -> None:
        """Set (mu, kappa) to the maximiser of F for the responsibilities behind ``statistics``."""
        self.directions = update_mean_directions(statistics.resultants, self.directions)
        weights = statistics.mass * statistics.labels.shape[0]
        self.concentrations = solve_concentrations(
            projected_lengths(self.directions, statistics.resultants),
            weights,
            self.data.shape[1],
            self.config.kappa_bounds,
            self.config.tied,
            self.concentrations,
        )

    def _may_reseed(self, iteration: int) -> bool:
        floor = self.config.reseed_mass_floor
        return floor is not None and iteration <= self.config.reseed_until_iter

    def reseed(self, statistics: ResponsibilityStatistics, iteration: int) -> Reseed | None:
        """Move the lightest cluster onto the worst-fitting row if its mass is under the floor.

        The moved cluster takes the median concentration (unchanged when kappa is tied).
        """
        if not self._may_reseed(iteration):
            return None
        lightest = int(torch.argmin(statistics.mass))
        mass = float(statistics.mass[lightest])
        if mass >= self.config.reseed_mass_floor:
            return None

        row = self.data[statistics.worst_row].double()
        self.directions = self.directions.clone()
        self.directions[lightest] = row / torch.linalg.vector_norm(row)
        if not self.config.tied:
            self.concentrations = self.concentrations.clone()
            self.concentrations[lightest] = float(np.median(self.concentrations.cpu().numpy()))
        return Reseed(iteration=iteration, cluster=lightest, row=statistics.worst_row, mass=mass)

    def iterate(self, iteration: int) -> tuple[float, bool]:
        """Run one E-step, M-step and optional re-seeding.

        Returns F after the M-step and whether a cluster was re-seeded.
        """
        started = time.perf_counter()

        e_result = self.e_step(
            keep_responsibilities=False, find_worst_row=self._may_reseed(iteration)
        )
        statistics = e_result.statistics
        objective_e = self._record(statistics, E_STEP)

        self.m_step(statistics)
        objective_m = self._record(statistics, M_STEP)

        reseed = self.reseed(statistics, iteration)
        if reseed is not None:
            self._record(statistics, RESEED)
            self.reseeds.append(reseed)

        self.history.append(
            _iteration_record(
                iteration,
                objective_e,
                objective_m,
                statistics,
                self.concentrations,
                e_result,
                time.perf_counter() - started,
                reseed,
            )
        )
        return objective_m, reseed is not None

    def run(self) -> bool:
        """Iterate until F changes by at most ``tol * |F|`` and return whether it did so
        within ``max_iter`` iterations."""
        previous = None
        for iteration in range(1, self.config.max_iter + 1):
            objective, reseeded = self.iterate(iteration)
            if (
                not reseeded
                and previous is not None
                and abs(objective - previous) <= self.config.tol * abs(objective)
            ):
                return True
            previous = objective
        return False

    def finish(self) -> ResponsibilityStatistics:
        """Run a final E-step, so labels and responsibilities match the final parameters."""
        statistics = self.e_step(self.plan.keep_responsibilities).statistics
        self._record(statistics, E_STEP)
        return statistics


def _iteration_record(
    iteration: int,
    objective_e: float,
    objective_m: float,
    statistics: ResponsibilityStatistics,
    concentrations: torch.Tensor,
    e_result: EStepResult,
    seconds: float,
    reseed: Reseed | None,
) -> IterationRecord:
    mass = statistics.mass.cpu().numpy()
    kappa = concentrations.cpu().numpy()
    return IterationRecord(
        iteration=iteration,
        objective=objective_m,
        objective_after_e_step=objective_e,
        balance_entropy=balance_entropy(mass),
        min_mass=float(mass.min()),
        max_mass=float(mass.max()),
        kappa_mean=float(kappa.mean()),
        kappa_min=float(kappa.min()),
        kappa_max=float(kappa.max()),
        e_step_iterations=e_result.n_iter,
        e_step_converged=e_result.converged,
        seconds=seconds,
        reseeded_cluster=None if reseed is None else reseed.cluster,
    )
