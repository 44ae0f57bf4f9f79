"""F never decreases across the half-steps of a GEM fit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gem_dagster.clustering import GEM, ConvergenceWarning, find_objective_decreases


def assert_monotone(trace, steps, rtol=1e-9):
    """Fail on any step, other than a re-seeding, where F fell by more than ``rtol`` relative."""
    trace = np.asarray(trace)
    for position in range(1, trace.size):
        if steps[position] == "reseed":
            continue
        allowed = rtol * max(abs(trace[position - 1]), 1.0)
        assert trace[position] >= trace[position - 1] - allowed, (
            f"F fell from {trace[position - 1]!r} to {trace[position]!r} at the "
            f"{steps[position]} in position {position}"
        )


def fit_quietly(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X)


CONFIGURATIONS = [
    pytest.param(dict(e_step="dual", kappa="per_cluster"), id="dual-per_cluster"),
    pytest.param(dict(e_step="dual", kappa="tied"), id="dual-tied"),
    pytest.param(dict(e_step="mm", kappa="per_cluster", e_step_max_iter=30), id="mm-per_cluster"),
    pytest.param(dict(e_step="mm", kappa="tied", e_step_max_iter=30), id="mm-tied"),
]


@pytest.mark.parametrize("options", CONFIGURATIONS)
@pytest.mark.parametrize("balance", [0.0, 300.0, 5000.0])
def test_objective_never_decreases_on_narrow_cone(narrow_cone, options, balance):
    model = fit_quietly(
        GEM(narrow_cone.n_clusters, balance=balance, max_iter=15, random_state=0, **options),
        narrow_cone.X,
    )

    assert_monotone(model.objective_trace_, model.objective_steps_)
    # A fit that never moved would pass the monotonicity check trivially.
    assert model.objective_trace_[-1] > model.objective_trace_[0]


@pytest.mark.parametrize("options", CONFIGURATIONS)
def test_objective_never_decreases_on_vmf_mixture(vmf_mixture, options):
    model = fit_quietly(
        GEM(6, balance="auto", max_iter=15, random_state=1, **options), vmf_mixture.X
    )

    assert_monotone(model.objective_trace_, model.objective_steps_)


def test_trace_has_e_and_m_step_per_iteration(vmf_mixture):
    model = GEM(4, balance=100.0, random_state=0).fit(vmf_mixture.X)

    n_steps = 2 * model.n_iter_ + 1
    assert model.objective_trace_.shape == (n_steps,)
    expected_steps = ["e-step", "m-step"] * model.n_iter_ + ["e-step"]
    assert model.objective_steps_.tolist() == expected_steps
    # history_ contains the same values as the trace.
    objectives = [record.objective for record in model.history_]
    np.testing.assert_array_equal(objectives, model.objective_trace_[1:-1:2])
    assert model.objective_ == model.objective_trace_[-1]


def test_long_fit_on_converged_parameters_stays_monotone(narrow_cone):
    # With tol = 0 the fit keeps iterating at its optimum, where only rounding moves F.
    model = fit_quietly(
        GEM(narrow_cone.n_clusters, balance=500.0, tol=0.0, max_iter=80, random_state=2),
        narrow_cone.X,
    )

    assert_monotone(model.objective_trace_, model.objective_steps_)
    assert find_objective_decreases(model.objective_trace_, model.objective_steps_).size == 0


def test_reseeding_is_recorded_and_excluded(vmf_mixture):
    # Start from the four component means plus a fifth direction far from every row, so the
    # fifth cluster starts with no mass.
    X, labels = vmf_mixture.X, vmf_mixture.labels
    means = np.stack([X[labels == k].mean(axis=0) for k in range(4)])
    far = -X.mean(axis=0)
    init = np.vstack([means, far])
    init /= np.linalg.norm(init, axis=1, keepdims=True)

    model = GEM(
        5, balance=0.0, init=init, reseed_mass_floor=0.01, reseed_until_iter=3, random_state=0
    ).fit(X)

    assert len(model.reseeds_) >= 1
    first = model.reseeds_[0]
    assert first.iteration == 1
    assert first.cluster == 4
    assert first.mass < 0.01
    assert all(reseed.iteration <= 3 for reseed in model.reseeds_)
    assert np.count_nonzero(model.objective_steps_ == "reseed") == len(model.reseeds_)
    assert model.history_[0].reseeded_cluster == 4
    assert_monotone(model.objective_trace_, model.objective_steps_)


def test_no_reseeding_without_floor(vmf_mixture):
    model = GEM(4, balance=0.0, random_state=0).fit(vmf_mixture.X)

    assert model.reseeds_ == []
    assert "reseed" not in model.objective_steps_.tolist()


def test_find_objective_decreases_reports_positions():
    trace = [1.0, 2.0, 1.5, 1.6, 1.0, 3.0]
    steps = ["e-step", "m-step", "e-step", "m-step", "reseed", "e-step"]

    np.testing.assert_array_equal(find_objective_decreases(trace), [2, 4])
    np.testing.assert_array_equal(find_objective_decreases(trace, steps), [2])
    assert find_objective_decreases([5.0, 5.0 - 1e-12]).size == 0
