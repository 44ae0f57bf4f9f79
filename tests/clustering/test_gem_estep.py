"""The two E-step solvers on a fixed parameter set: same optimum, optimality, monotonicity."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import gem_dagster.clustering._gem_fit as gem_fit
import gem_dagster.clustering.estep as estep
from gem_dagster.clustering import (
    GEM,
    log_vmf_normalizer,
    sample_anisotropic_cone,
    sample_vmf_mixture,
)
from gem_dagster.clustering.estep import accumulate_dual_statistics, solve_dual, solve_mm
from gem_dagster.clustering.objective import objective_value
from gem_dagster.clustering.responsibilities import LogitSource, accumulate_statistics

N_CLUSTERS = 5
DIM = 8


@pytest.fixture(scope="module")
def fixed_problem():
    """Data from a skewed 3-component mixture and 5 fixed components, so the balance binds."""
    rng = np.random.default_rng(5)
    X, _ = sample_vmf_mixture(
        400, rng.standard_normal((3, DIM)), 8.0, weights=[0.7, 0.2, 0.1], random_state=6
    )
    directions = rng.standard_normal((N_CLUSTERS, DIM))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    concentrations = np.array([3.0, 6.0, 10.0, 4.0, 8.0])

    data = torch.as_tensor(X, dtype=torch.float32)
    mu = torch.as_tensor(directions)
    kappa = torch.as_tensor(concentrations)
    bias = log_vmf_normalizer(DIM, kappa) - math.log(N_CLUSTERS)
    return data, mu, kappa, bias


def make_source(problem, chunk_rows=400, cache=True) -> LogitSource:
    data, mu, kappa, bias = problem
    return LogitSource(data, mu, kappa, bias, chunk_rows, cache)


def objective_of(problem, source, log_gamma, balance) -> float:
    """F of arbitrary responsibilities, given in log space, for the fixed parameters."""
    _, mu, kappa, bias = problem
    statistics = accumulate_statistics(source, lambda start, stop, _: log_gamma[start:stop], False)
    return objective_value(statistics, mu, kappa, bias, balance)


def dual_log_responsibilities(source, nu) -> torch.Tensor:
    return torch.log_softmax(source.full() - nu, dim=1)


def run_mm(source, balance, rounds):
    logits = source.full()
    return solve_mm(logits, torch.log_softmax(logits, dim=1), balance, 1e-13, rounds)


@pytest.mark.parametrize("balance", [0.0, 0.5, 3.0, 20.0])
def test_dual_and_mm_reach_same_objective(fixed_problem, balance):
    source = make_source(fixed_problem)
    dual = solve_dual(source, balance, torch.zeros(N_CLUSTERS, dtype=torch.float64), 1e-12, 100)
    mm = run_mm(source, balance, rounds=20000)

    dual_log_gamma = dual_log_responsibilities(source, dual.nu)
    f_dual = objective_of(fixed_problem, source, dual_log_gamma, balance)
    f_mm = objective_of(fixed_problem, source, mm.log_responsibilities, balance)

    assert dual.converged
    assert mm.converged
    assert abs(f_dual - f_mm) <= 1e-6 * abs(f_dual)
    difference = (dual_log_gamma.exp() - mm.log_responsibilities.exp()).abs().max()
    assert float(difference) < 1e-6


def test_balance_binds_in_fixed_problem(fixed_problem):
    # Guard for the test above: with lambda = 20 the optimum differs from the plain posterior.
    source = make_source(fixed_problem)
    posterior_mass = torch.softmax(source.full(), dim=1).mean(dim=0)

    dual = solve_dual(source, 20.0, torch.zeros(N_CLUSTERS, dtype=torch.float64), 1e-12, 100)
    balanced_mass = dual_log_responsibilities(source, dual.nu).exp().mean(dim=0)

    uniform = 1.0 / N_CLUSTERS
    assert float((balanced_mass - uniform).abs().max()) < 0.8 * float(
        (posterior_mass - uniform).abs().max()
    )


@pytest.mark.parametrize("balance", [0.3, 50.0, 5000.0])
def test_dual_solution_is_stationary(fixed_problem, balance):
    source = make_source(fixed_problem)

    dual = solve_dual(source, balance, torch.zeros(N_CLUSTERS, dtype=torch.float64), 1e-11, 100)
    mass = dual_log_responsibilities(source, dual.nu).exp().mean(dim=0)

    # At the optimum nu = lambda (pi - u).
    assert dual.converged
    expected_nu = balance * (mass - 1.0 / N_CLUSTERS)
    np.testing.assert_allclose(dual.nu.numpy(), expected_nu.numpy(), atol=1e-10 * balance + 1e-12)


def test_dual_value_equals_objective(fixed_problem):
    # Strong duality: min D(nu) = max F.
    balance = 7.0
    source = make_source(fixed_problem)
    dual = solve_dual(source, balance, torch.zeros(N_CLUSTERS, dtype=torch.float64), 1e-12, 100)
    nu = dual.nu

    logits = source.full()
    dual_value = float(
        torch.logsumexp(logits - nu, dim=1).mean() + nu.mean() + nu @ nu / (2 * balance)
    )
    # F straight from the logits, so that both sides see the same float32 cosines.
    log_gamma = dual_log_responsibilities(source, nu)
    gamma = log_gamma.exp()
    mass = gamma.mean(dim=0)
    penalty = 0.5 * balance * float(((mass - 1.0 / N_CLUSTERS) ** 2).sum())
    primal_value = float((gamma * (logits - log_gamma)).sum(dim=1).mean()) - penalty

    assert primal_value == pytest.approx(dual_value, rel=1e-12)


def test_dual_optimum_beats_perturbations(fixed_problem):
    balance = 10.0
    source = make_source(fixed_problem)
    dual = solve_dual(source, balance, torch.zeros(N_CLUSTERS, dtype=torch.float64), 1e-12, 100)
    optimum = dual_log_responsibilities(source, dual.nu).exp()
    best = objective_of(fixed_problem, source, optimum.log(), balance)

    generator = torch.Generator().manual_seed(0)
    for weight in [1e-3, 1e-2, 0.1, 0.5]:
        noise = torch.rand(optimum.shape, generator=generator, dtype=torch.float64)
        noise = noise / noise.sum(dim=1, keepdim=True)
        perturbed = (1 - weight) * optimum + weight * noise

        assert objective_of(fixed_problem, source, perturbed.log(), balance) < best


@pytest.mark.parametrize("balance", [0.0, 5.0, 5000.0])
def test_mm_rounds_never_lower_objective(fixed_problem, balance):
    source = make_source(fixed_problem)
    logits = source.full()
    log_gamma = torch.log_softmax(logits, dim=1)
    values = [objective_of(fixed_problem, source, log_gamma, balance)]

    for _ in range(40):
        log_gamma = solve_mm(logits, log_gamma, balance, 0.0, 1).log_responsibilities
        values.append(objective_of(fixed_problem, source, log_gamma, balance))

    steps = np.diff(values)
    assert np.all(steps >= -1e-12 * np.abs(values[1:]))
    assert values[-1] > values[0] or balance == 0.0


def test_zero_balance_gives_plain_posterior(fixed_problem):
    source = make_source(fixed_problem)
    posterior = torch.softmax(source.full(), dim=1)

    dual = solve_dual(source, 0.0, torch.ones(N_CLUSTERS, dtype=torch.float64), 1e-12, 100)
    uniform = torch.full_like(posterior, -math.log(N_CLUSTERS))
    mm = solve_mm(source.full(), uniform, 0.0, 1e-13, 5)

    assert torch.count_nonzero(dual.nu) == 0
    assert dual.n_iter == 0
    torch.testing.assert_close(mm.log_responsibilities.exp(), posterior, atol=1e-12, rtol=0)
    assert mm.n_iter == 1


def test_huge_balance_forces_uniform_mass(fixed_problem):
    source = make_source(fixed_problem)

    dual = solve_dual(source, 1e9, torch.zeros(N_CLUSTERS, dtype=torch.float64), 1e-12, 100)
    mass = dual_log_responsibilities(source, dual.nu).exp().mean(dim=0)

    np.testing.assert_allclose(mass.numpy(), 1.0 / N_CLUSTERS, atol=1e-8)


def test_chunked_dual_equals_cached(fixed_problem):
    start = torch.zeros(N_CLUSTERS, dtype=torch.float64)
    cached = solve_dual(make_source(fixed_problem), 30.0, start, 1e-12, 100)
    chunked_source = make_source(fixed_problem, chunk_rows=37, cache=False)
    chunked = solve_dual(chunked_source, 30.0, start, 1e-12, 100)

    np.testing.assert_allclose(chunked.nu.numpy(), cached.nu.numpy(), atol=1e-9)


def test_warm_start_needs_fewer_newton_steps(fixed_problem):
    source = make_source(fixed_problem)
    cold = solve_dual(source, 100.0, torch.zeros(N_CLUSTERS, dtype=torch.float64), 1e-11, 100)

    warm = solve_dual(source, 100.0, cold.nu + 1e-3, 1e-11, 100)

    assert warm.converged
    assert warm.n_iter < cold.n_iter


def make_peaked_source(problem, scale, cache=True) -> LogitSource:
    """The fixed problem with every kappa multiplied by ``scale``, so that the logits span
    thousands of nats, as in GEM fits to ``sample_anisotropic_cone`` data in 384 dimensions."""
    data, mu, kappa, _ = problem
    kappa = kappa * scale
    bias = log_vmf_normalizer(DIM, kappa) - math.log(N_CLUSTERS)
    return LogitSource(data, mu, kappa, bias, 400, cache)


def test_exponential_cache_matches_logit_passes(fixed_problem):
    # With kappa in the thousands and lambda = 1e5, nu moves by thousands of nats, far beyond
    # the span that one set of cached exponentials covers, so the cache is rebuilt en route.
    balance = 1e5
    start = torch.zeros(N_CLUSTERS, dtype=torch.float64)
    source = make_peaked_source(fixed_problem, 1000.0)

    cached = solve_dual(source, balance, start, 1e-11, 100)
    passes = solve_dual(source, balance, start, 1e-11, 100, cache_exponentials=False)

    assert cached.converged
    assert passes.converged
    assert float((cached.nu.max() - cached.nu.min())) > 1000.0
    np.testing.assert_allclose(cached.nu.numpy(), passes.nu.numpy(), rtol=0, atol=1e-9 * balance)
    assert cached.mean_log_sum_exp == pytest.approx(passes.mean_log_sum_exp, rel=1e-12)


def test_dual_statistics_independent_of_cache(fixed_problem):
    balance = 1e5
    start = torch.zeros(N_CLUSTERS, dtype=torch.float64)
    source = make_peaked_source(fixed_problem, 1000.0)
    solution = solve_dual(source, balance, start, 1e-11, 100)
    uncached = make_peaked_source(fixed_problem, 1000.0, cache=False)
    # The same nu, with the responsibilities recomputed from the logits.
    recomputed = dataclasses.replace(solution, probabilities=None)

    from_cache = accumulate_dual_statistics(source, solution, True, find_worst_row=True)
    from_logits = accumulate_dual_statistics(uncached, recomputed, False, find_worst_row=True)
    log_gamma = torch.log_softmax(source.full() - solution.nu, dim=1)
    direct = accumulate_statistics(source, lambda start, stop, _: log_gamma[start:stop], False)

    for statistics in (from_cache, from_logits):
        torch.testing.assert_close(statistics.mass, direct.mass, rtol=0, atol=1e-13)
        torch.testing.assert_close(statistics.resultants, direct.resultants, rtol=1e-12, atol=1e-9)
        assert statistics.mean_entropy == pytest.approx(direct.mean_entropy, rel=1e-9, abs=1e-10)
        torch.testing.assert_close(statistics.labels, direct.labels, rtol=0, atol=0)
        assert statistics.worst_row == direct.worst_row
    # Logits of thousands of nats carry rounding of about 1e-12 nats into the exponentials.
    torch.testing.assert_close(from_cache.responsibilities, log_gamma.exp(), rtol=0, atol=1e-11)


def test_presolve_reaches_same_optimum(fixed_problem, monkeypatch):
    balance = 1e5
    start = torch.zeros(N_CLUSTERS, dtype=torch.float64)
    source = make_peaked_source(fixed_problem, 1000.0)
    direct = solve_dual(source, balance, start, 1e-11, 100)

    # 50 rows make every 8th row of the 400 a subsample.
    monkeypatch.setattr(estep, "_PRESOLVE_ROWS", 50)
    presolved = solve_dual(source, balance, start, 1e-11, 100)

    assert direct.n_presolve_iter == 0
    assert presolved.n_presolve_iter > 0
    assert presolved.converged
    np.testing.assert_allclose(presolved.nu.numpy(), direct.nu.numpy(), rtol=0, atol=1e-9 * balance)


@pytest.mark.filterwarnings("ignore::gem_dagster.clustering.ConvergenceWarning")
@pytest.mark.parametrize("presolve_rows", [None, 500])
def test_newton_steps_few_after_first_iterations(monkeypatch, presolve_rows):
    solutions = []

    def recording_solve_dual(*args, **kwargs):
        solution = solve_dual(*args, **kwargs)
        solutions.append(solution)
        return solution

    monkeypatch.setattr(gem_fit, "solve_dual", recording_solve_dual)
    if presolve_rows is not None:
        # Every 8th of the 4,000 rows, as a large fit would use every 24th of 200,000.
        monkeypatch.setattr(estep, "_PRESOLVE_ROWS", presolve_rows)
    X, _ = sample_anisotropic_cone(4000, dim=64, n_topics=16, random_state=3)
    model = GEM(16, balance="auto", max_iter=25, tol=0.0, random_state=0).fit(X)

    # One E-step per iteration plus the final one.
    assert len(solutions) == model.n_iter_ + 1
    assert all(solution.converged for solution in solutions)
    if presolve_rows is not None:
        assert solutions[0].n_presolve_iter > 0
    # The first E-steps start far from the optimum, where D is close to piecewise linear and
    # Newton needs 10 to 30 damped steps unless a presolve takes most of them. Later ones
    # start close to it and converge quadratically.
    later = solutions[5:]
    assert max(solution.n_iter for solution in later) <= 8
    assert max(solution.n_evaluations for solution in later) <= 10


def test_decided_rows_keep_dual_exact(fixed_problem):
    # kappa x 30 gives logit gaps from a few nats to hundreds, so the rebase at nu = 0 finds
    # both decided and active rows.
    source = make_peaked_source(fixed_problem, 30.0)
    logits = source.full()
    balance = 1e3
    evaluator = estep._CachedExponentials(logits, balance, None)
    evaluator.start(torch.zeros(N_CLUSTERS, dtype=torch.float64))
    assert 0.0 < evaluator.active_fraction < 1.0

    # Points whose offsets from the base span up to the smallest spread limit.
    for scale in (0.0, 1.0, 5.0, 9.0):
        nu = scale * torch.tensor([1.0, -1.0, 0.5, 0.0, -0.5], dtype=torch.float64)
        point = evaluator.moments(evaluator.evaluate(nu), with_outer=False)

        shifted = logits - nu
        direct_mean_lse = float(torch.logsumexp(shifted, dim=1).mean())
        direct_mass = torch.softmax(shifted, dim=1).mean(dim=0)
        assert point.mean_log_sum_exp == pytest.approx(direct_mean_lse, rel=1e-14)
        torch.testing.assert_close(point.mean_probabilities, direct_mass, rtol=0, atol=1e-14)


def test_subnormal_responsibilities_flushed(fixed_problem):
    source = make_source(fixed_problem)
    # Log-responsibilities of -720 are float64 subnormals once exponentiated.
    log_gamma = torch.log_softmax(source.full(), dim=1)
    log_gamma[:, 1:] = torch.minimum(log_gamma[:, 1:], torch.tensor(-720.0, dtype=torch.float64))
    log_gamma = torch.log_softmax(log_gamma, dim=1)
    gamma = log_gamma.exp()
    assert bool(((gamma > 0) & (gamma < 2.3e-308)).any())

    statistics = accumulate_statistics(source, lambda start, stop, _: log_gamma[start:stop], True)

    assert float(statistics.responsibilities[:, 1:].max()) == 0.0
    reference = gamma.T @ source.X.double()
    torch.testing.assert_close(statistics.resultants, reference, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(statistics.mass, gamma.mean(dim=0), rtol=0, atol=1e-15)
