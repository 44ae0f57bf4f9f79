"""GEM end to end: recovery, balance, chunking, inference methods and input checks."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch

from gem_dagster.clustering import (
    GEM,
    ConvergenceWarning,
    KMeans,
    VanillaVMF,
    balance_entropy,
    balance_entropy_of_labels,
    bessel_ratio_inverse,
    normalized_mutual_info,
)
from gem_dagster.clustering._runtime import plan_memory


def matched_cosines(estimated: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Cosine of each true direction to its best estimated direction."""
    true = true / np.linalg.norm(true, axis=1, keepdims=True)
    return (true @ estimated.T).max(axis=1)


def test_recovers_vmf_mixture(vmf_mixture):
    model = GEM(vmf_mixture.n_clusters, balance="auto", random_state=0).fit(vmf_mixture.X)

    assert normalized_mutual_info(vmf_mixture.labels, model.labels_) >= 0.95
    assert model.converged_
    rng = np.random.default_rng(11)
    true_directions = rng.standard_normal((4, 16))
    assert matched_cosines(model.mean_directions_, true_directions).min() > 0.99
    # The data were sampled with kappa = 50, and about 375 rows per cluster estimate it to 10%.
    np.testing.assert_allclose(model.concentrations_, 50.0, rtol=0.1)


def test_balances_narrow_cone_better_than_baselines(narrow_cone):
    X, n_clusters = narrow_cone.X, narrow_cone.n_clusters

    gem = GEM(n_clusters, random_state=0).fit(X)
    kmeans = KMeans(n_clusters, random_state=0).fit(X)
    vmf = VanillaVMF(n_clusters, random_state=0).fit(X)

    gem_entropy = balance_entropy_of_labels(gem.labels_, n_clusters)
    assert gem_entropy > 0.95
    assert gem_entropy > balance_entropy_of_labels(kmeans.labels_, n_clusters) + 0.15
    assert gem_entropy > balance_entropy_of_labels(vmf.labels_, n_clusters) + 0.15
    assert balance_entropy(gem.cluster_mass_) > 0.99


def test_zero_balance_runs_as_plain_em(narrow_cone):
    model = GEM(narrow_cone.n_clusters, balance=0.0, random_state=0).fit(narrow_cone.X)

    assert model.balance_ == 0.0
    assert np.count_nonzero(model.dual_variables_) == 0
    assert np.isfinite(model.objective_trace_).all()
    # Without the penalty the posterior of the fitted model reproduces the responsibilities.
    probabilities = model.predict_proba(narrow_cone.X)
    np.testing.assert_allclose(probabilities, model.responsibilities_, atol=1e-10)


def test_balance_raises_entropy(narrow_cone):
    unbalanced = GEM(narrow_cone.n_clusters, balance=0.0, random_state=0).fit(narrow_cone.X)
    balanced = GEM(narrow_cone.n_clusters, balance=5000.0, random_state=0).fit(narrow_cone.X)

    assert balance_entropy(balanced.cluster_mass_) > balance_entropy(unbalanced.cluster_mass_)
    # nu = lambda (pi - u) at the optimum.
    expected = 5000.0 * (balanced.cluster_mass_ - 1.0 / narrow_cone.n_clusters)
    np.testing.assert_allclose(balanced.dual_variables_, expected, atol=1e-5)


def test_auto_balance_is_scaled_median_initial_kappa(vmf_mixture):
    X, labels = vmf_mixture.X, vmf_mixture.labels
    means = np.stack([X[labels == k].mean(axis=0) for k in range(4)])
    init = means / np.linalg.norm(means, axis=1, keepdims=True)

    model = GEM(4, balance="auto", init=init, max_iter=2).fit(X)

    # Initial kappa from the partition that the given directions induce.
    nearest = np.argmax(X @ init.T, axis=1)
    rbar = [X[nearest == k].sum(axis=0) @ init[k] / np.sum(nearest == k) for k in range(4)]
    expected = 5.5 * np.median(bessel_ratio_inverse(16, np.array(rbar)))
    assert model.balance_ == pytest.approx(expected, rel=1e-5)


def test_chunked_fit_equals_unchunked(narrow_cone):
    options = dict(n_clusters=narrow_cone.n_clusters, balance=500.0, random_state=4)
    whole = GEM(memory_budget_mb=64, **options).fit(narrow_cone.X)
    # 0.16 MiB: the 1,500 x 8 logits do not fit, so they are recomputed in chunks of 145 rows.
    chunked = GEM(memory_budget_mb=0.16, **options).fit(narrow_cone.X)

    assert whole.responsibilities_ is not None
    assert chunked.responsibilities_ is None
    assert chunked.n_iter_ == whole.n_iter_
    np.testing.assert_array_equal(chunked.labels_, whole.labels_)
    np.testing.assert_allclose(chunked.objective_trace_, whole.objective_trace_, rtol=1e-7)
    np.testing.assert_allclose(chunked.mean_directions_, whole.mean_directions_, atol=1e-6)
    np.testing.assert_allclose(chunked.concentrations_, whole.concentrations_, rtol=1e-5)


def test_float64_rows_change_nothing(narrow_cone):
    n_samples, n_features = narrow_cone.X.shape
    k = narrow_cone.n_clusters
    # The float64 rows fit next to both 1,500 x 8 matrices in 64 MiB, not in 0.6 MiB.
    assert plan_memory(n_samples, n_features, k, 64).cache_float64_rows
    matrices_only = plan_memory(n_samples, n_features, k, 0.6)
    assert matrices_only.cache_exponentials and not matrices_only.cache_float64_rows

    options = dict(n_clusters=k, balance=500.0, random_state=4)
    with_copy = GEM(memory_budget_mb=64, **options).fit(narrow_cone.X)
    without_copy = GEM(memory_budget_mb=0.6, **options).fit(narrow_cone.X)

    assert without_copy.n_iter_ == with_copy.n_iter_
    np.testing.assert_array_equal(without_copy.labels_, with_copy.labels_)
    # The smaller budget also computes the logits in smaller chunks, whose float32 products
    # round differently, as in test_chunked_fit_equals_unchunked.
    np.testing.assert_allclose(without_copy.objective_trace_, with_copy.objective_trace_, rtol=1e-7)
    np.testing.assert_allclose(without_copy.mean_directions_, with_copy.mean_directions_, atol=1e-6)


def test_mm_and_dual_fits_agree(vmf_mixture):
    X, labels = vmf_mixture.X, vmf_mixture.labels
    init = np.stack([X[labels == k][0] for k in range(4)])
    options = dict(n_clusters=4, balance=2.0, init=init, tol=1e-10, max_iter=200)

    dual = GEM(e_step="dual", e_step_tol=1e-12, **options).fit(X)
    mm = GEM(e_step="mm", e_step_tol=1e-12, e_step_max_iter=2000, **options).fit(X)

    assert abs(dual.objective_ - mm.objective_) <= 1e-6 * abs(dual.objective_)
    np.testing.assert_array_equal(dual.labels_, mm.labels_)


def test_predict_matches_training_labels(narrow_cone):
    model = GEM(narrow_cone.n_clusters, random_state=0).fit(narrow_cone.X)

    np.testing.assert_array_equal(model.predict(narrow_cone.X), model.labels_)
    probabilities = model.predict_proba(narrow_cone.X)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(probabilities, model.responsibilities_, atol=1e-8)


def test_score_on_training_data_is_final_objective(narrow_cone):
    model = GEM(narrow_cone.n_clusters, balance=500.0, random_state=0).fit(narrow_cone.X)

    assert model.score(narrow_cone.X) == pytest.approx(model.objective_, rel=1e-9)
    # Fewer rows from the same distribution score about the same.
    assert model.score(narrow_cone.X[:700]) == pytest.approx(model.objective_, rel=0.1)


def test_same_seed_gives_same_fit(vmf_mixture):
    first = GEM(4, random_state=3).fit(vmf_mixture.X)
    second = GEM(4, random_state=3).fit(torch.as_tensor(vmf_mixture.X))

    np.testing.assert_array_equal(first.labels_, second.labels_)
    np.testing.assert_array_equal(first.objective_trace_, second.objective_trace_)


def test_history_records_each_iteration(vmf_mixture):
    model = GEM(4, balance=100.0, random_state=0).fit(vmf_mixture.X)

    assert len(model.history_) == model.n_iter_
    rows = [dataclasses.asdict(record) for record in model.history_]
    assert [row["iteration"] for row in rows] == list(range(1, model.n_iter_ + 1))
    for row in rows:
        assert 0.0 <= row["balance_entropy"] <= 1.0
        assert row["min_mass"] <= 0.25 <= row["max_mass"]
        assert row["kappa_min"] <= row["kappa_mean"] <= row["kappa_max"]
        assert row["seconds"] >= 0.0
        assert row["e_step_converged"]
    assert rows[-1]["kappa_mean"] == pytest.approx(model.concentrations_.mean())


def test_fitted_attributes_have_documented_shapes(vmf_mixture):
    model = GEM(4, random_state=0).fit(vmf_mixture.X)

    assert model.mean_directions_.shape == (4, 16)
    np.testing.assert_allclose(np.linalg.norm(model.mean_directions_, axis=1), 1.0, atol=1e-12)
    assert model.concentrations_.shape == (4,)
    assert model.cluster_mass_.sum() == pytest.approx(1.0)
    assert model.labels_.shape == (1500,)
    assert model.responsibilities_.shape == (1500, 4)
    assert model.n_features_in_ == 16


def test_constructor_stores_parameters_verbatim():
    model = GEM(7, balance="auto", kappa_bounds=[1.0, 10.0], init="k-means++")

    assert model.n_clusters == 7
    assert model.balance == "auto"
    assert model.kappa_bounds == [1.0, 10.0]


def test_non_unit_rows_are_normalised_with_warning(vmf_mixture):
    scaled = vmf_mixture.X * np.linspace(0.5, 3.0, len(vmf_mixture.X))[:, None]

    with pytest.warns(UserWarning, match="rows of X were not unit-norm"):
        from_scaled = GEM(4, random_state=0).fit(scaled)
    from_unit = GEM(4, random_state=0).fit(vmf_mixture.X)

    np.testing.assert_array_equal(from_scaled.labels_, from_unit.labels_)


def test_unit_rows_give_no_warning(vmf_mixture):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GEM(4, random_state=0).fit(vmf_mixture.X.astype(np.float32))


def test_not_converged_warns(vmf_mixture):
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        GEM(4, max_iter=1, random_state=0).fit(vmf_mixture.X)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(n_clusters=1), "n_clusters must be an integer >= 2, got 1"),
        (dict(n_clusters=2.5), "n_clusters must be an integer >= 2, got 2.5"),
        (dict(balance=-1.0), "balance must be a finite number >= 0, got -1.0"),
        (dict(balance=float("inf")), "balance must be a finite number >= 0, got inf"),
        (dict(balance="high"), "balance must be one of 'auto', got 'high'"),
        (dict(e_step="newton"), "e_step must be one of 'dual', 'mm', got 'newton'"),
        (dict(kappa="shared"), "kappa must be one of 'per_cluster', 'tied', got 'shared'"),
        (dict(max_iter=0), "max_iter must be an integer >= 1, got 0"),
        (dict(tol=-1e-3), "tol must be a finite number >= 0, got -0.001"),
        (dict(init="random"), "init must be one of 'k-means\\+\\+', got 'random'"),
        (dict(memory_budget_mb=0), "memory_budget_mb must be a finite number > 0, got 0"),
        (dict(kappa_bounds=(10.0, 1.0)), "kappa_bounds must satisfy 0 < low < high < inf"),
        (dict(kappa_bounds=5.0), "kappa_bounds must be a pair"),
        (dict(e_step_tol=0.0), "e_step_tol must be a finite number > 0, got 0.0"),
        (dict(reseed_mass_floor=0.5), "reseed_mass_floor must be below the uniform mass"),
        (dict(random_state="seed"), "invalid random_state 'seed'"),
        (dict(device="gpu"), "invalid device 'gpu'"),
        (dict(n_clusters=2000), "n_clusters=2000 exceeds the 1500 rows of X"),
        (dict(init=np.ones((3, 16))), r"init must have shape .* = \(4, 16\), got \(3, 16\)"),
    ],
)
def test_invalid_parameters_raise(vmf_mixture, options, message):
    options = {"n_clusters": 4, **options}

    with pytest.raises(ValueError, match=message):
        GEM(**options).fit(vmf_mixture.X)


def test_zero_row_raises_naming_row(vmf_mixture):
    X = vmf_mixture.X.copy()
    X[17] = 0.0

    with pytest.raises(ValueError, match="row 17 of X has zero norm"):
        GEM(4).fit(X)


def test_non_finite_row_raises_naming_row(vmf_mixture):
    X = vmf_mixture.X.copy()
    X[42, 3] = np.nan

    with pytest.raises(ValueError, match="row 42 of X contains NaN or infinite values"):
        GEM(4).fit(X)


def test_one_dimensional_input_raises():
    with pytest.raises(ValueError, match="X must be a 2-D array"):
        GEM(2).fit(np.ones(10))


def test_feature_mismatch_in_predict_raises(vmf_mixture):
    model = GEM(4, random_state=0, max_iter=3).fit(vmf_mixture.X)

    fewer_features = vmf_mixture.X[:, :8] / np.linalg.norm(vmf_mixture.X[:, :8], axis=1)[:, None]

    with pytest.raises(ValueError, match="X has 8 features, but the estimator was fitted with 16"):
        model.predict(fewer_features)


def test_predict_before_fit_raises():
    with pytest.raises(RuntimeError, match="not fitted yet"):
        GEM(4).predict(np.eye(4))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_cuda_device_raises(vmf_mixture):
    with pytest.raises(RuntimeError, match="device 'cuda:0' was requested but torch sees no CUDA"):
        GEM(4, device="cuda:0").fit(vmf_mixture.X)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fit_matches_cpu(vmf_mixture):
    cpu = GEM(4, balance=100.0, random_state=0).fit(vmf_mixture.X)
    gpu = GEM(4, balance=100.0, random_state=0, device="cuda").fit(vmf_mixture.X)

    np.testing.assert_array_equal(gpu.labels_, cpu.labels_)
    assert gpu.objective_ == pytest.approx(cpu.objective_, rel=1e-6)


@pytest.mark.parametrize("kappa", ["per_cluster", "tied"])
def test_fitted_parameters_are_local_maximum(narrow_cone, kappa):
    # At convergence Theta maximises max_Gamma F, which score() evaluates, so nudging any
    # concentration or mean direction must lower it.
    model = GEM(
        narrow_cone.n_clusters, balance=300.0, kappa=kappa, tol=1e-10, max_iter=500, random_state=0
    ).fit(narrow_cone.X)
    assert model.converged_
    best = model.score(narrow_cone.X)
    fitted_kappa = model.concentrations_.copy()
    fitted_directions = model.mean_directions_.copy()
    rng = np.random.default_rng(0)

    for factor in [0.99, 1.01]:
        model.concentrations_ = fitted_kappa * factor
        assert model.score(narrow_cone.X) < best
        if kappa == "per_cluster":
            for k in range(0, narrow_cone.n_clusters, 3):
                model.concentrations_ = fitted_kappa.copy()
                model.concentrations_[k] *= factor
                assert model.score(narrow_cone.X) < best
    model.concentrations_ = fitted_kappa

    for k in range(0, narrow_cone.n_clusters, 3):
        nudged = fitted_directions.copy()
        nudged[k] += 1e-2 * rng.standard_normal(nudged.shape[1])
        nudged[k] /= np.linalg.norm(nudged[k])
        model.mean_directions_ = nudged
        assert model.score(narrow_cone.X) < best
