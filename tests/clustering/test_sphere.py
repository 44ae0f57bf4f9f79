"""vMF special functions against mpmath at 40 significant digits."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
from scipy.special import ive

from gem_dagster.clustering import (
    bessel_ratio,
    bessel_ratio_inverse,
    log_bessel_iv,
    log_vmf_normalizer,
)

DIMENSIONS = [2, 3, 16, 128, 384, 1024, 4096]
KAPPAS = [1e-3, 0.1, 1.0, 10.0, 50.0, 200.0, 1000.0, 1e4, 1e5]


def reference_log_iv(order: float, x: float) -> mpmath.mpf:
    with mpmath.workdps(40):
        return mpmath.log(mpmath.besseli(mpmath.mpf(order), mpmath.mpf(x)))


def reference_log_normalizer(dim: int, kappa: float) -> float:
    with mpmath.workdps(40):
        order = mpmath.mpf(dim) / 2 - 1
        power = order * mpmath.log(kappa) if order > 0 else 0
        value = power - mpmath.mpf(dim) / 2 * mpmath.log(2 * mpmath.pi)
        return float(value - reference_log_iv(order, kappa))


def reference_ratio(dim: int, kappa: float) -> float:
    with mpmath.workdps(40):
        order = mpmath.mpf(dim) / 2 - 1
        return float(
            mpmath.besseli(order + 1, mpmath.mpf(kappa)) / mpmath.besseli(order, mpmath.mpf(kappa))
        )


@pytest.mark.parametrize("dim", DIMENSIONS)
def test_log_normalizer_matches_mpmath(dim):
    computed = log_vmf_normalizer(dim, np.array(KAPPAS))

    for kappa, value in zip(KAPPAS, computed, strict=True):
        expected = reference_log_normalizer(dim, kappa)
        relative_error = abs(value - expected) / abs(expected)
        assert relative_error <= 1e-6, (dim, kappa, value, expected)


def test_grid_covers_ive_underflow():
    # The grid is only a test of the asymptotic branch if scipy's ive underflows on it.
    assert ive(511.0, 50.0) < 1e-250
    assert ive(2047.0, 1000.0) < 1e-250


@pytest.mark.parametrize(
    "order, x",
    [
        (0.0, 1e-3),
        (0.5, 30.0),
        (7.0, 1e-12),
        (24.5, 1e-9),
        (30.0, 1e-6),
        (511.0, 50.0),
        (2047.0, 1000.0),
        (2048.0, 1e5),
        (100.0, 100.0),
    ],
)
def test_log_bessel_iv_matches_mpmath(order, x):
    expected = float(reference_log_iv(order, x))

    computed = log_bessel_iv(order, x)

    assert abs(computed - expected) <= 1e-10 * max(1.0, abs(expected))


@pytest.mark.parametrize("dim", DIMENSIONS)
def test_bessel_ratio_matches_mpmath(dim):
    computed = bessel_ratio(dim, np.array(KAPPAS))

    for kappa, value in zip(KAPPAS, computed, strict=True):
        assert abs(value - reference_ratio(dim, kappa)) <= 1e-8, (dim, kappa)


@pytest.mark.parametrize("dim", [2, 3, 16, 384, 4096])
def test_ratio_is_derivative_of_log_normalizer(dim):
    # d/dkappa log C_d(kappa) = -A_d(kappa), so a central difference checks both functions.
    # Its rounding error is about 1e-16 |log C_d| / step, up to 3e-8 here.
    kappa = np.array([0.5, 20.0, 300.0, 5000.0])
    step = 1e-3 * kappa

    slope = (log_vmf_normalizer(dim, kappa + step) - log_vmf_normalizer(dim, kappa - step)) / (
        2 * step
    )

    np.testing.assert_allclose(slope, -bessel_ratio(dim, kappa), rtol=1e-6, atol=1e-7)


def test_log_normalizer_at_zero_is_uniform_density():
    for dim in [2, 3, 10, 384]:
        log_area = math.log(2.0) + 0.5 * dim * math.log(math.pi) - math.lgamma(0.5 * dim)

        assert log_vmf_normalizer(dim, 0.0) == pytest.approx(-log_area, rel=1e-12)
        assert log_vmf_normalizer(dim, 1e-9) == pytest.approx(-log_area, rel=1e-9)


@pytest.mark.parametrize("dim", [2, 3, 16, 384, 4096])
def test_inverse_ratio_round_trip(dim):
    kappa = np.geomspace(2e-3, 5e4, 60)

    recovered = bessel_ratio_inverse(dim, bessel_ratio(dim, kappa))

    np.testing.assert_allclose(recovered, kappa, rtol=1e-8)


def test_inverse_ratio_clips_to_bounds():
    dim = 384
    bounds = (1.0, 1000.0)
    rbar = np.array([0.0, bessel_ratio(dim, 0.5), bessel_ratio(dim, 2000.0), 1.0])

    kappa = bessel_ratio_inverse(dim, rbar, bounds)

    np.testing.assert_array_equal(kappa, [1.0, 1.0, 1000.0, 1000.0])


def test_torch_input_gives_float64_tensor():
    kappa = torch.tensor([1.0, 10.0, 100.0], dtype=torch.float32)

    result = log_vmf_normalizer(64, kappa)

    assert isinstance(result, torch.Tensor)
    assert result.dtype == torch.float64
    assert result.device == kappa.device
    np.testing.assert_allclose(result.numpy(), log_vmf_normalizer(64, [1.0, 10.0, 100.0]))


def test_scalar_input_gives_float():
    assert isinstance(bessel_ratio(16, 3.0), float)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: log_vmf_normalizer(1, 1.0), "dim must be an integer >= 2, got 1"),
        (lambda: log_vmf_normalizer(3, -1.0), "kappa must be finite and >= 0, got -1.0"),
        (lambda: bessel_ratio(3, float("nan")), "kappa must be finite"),
        (lambda: bessel_ratio_inverse(3, 1.5), "rbar must lie in \\[0, 1\\], got 1.5"),
        (lambda: bessel_ratio_inverse(3, 0.5, (5.0, 1.0)), "bounds must satisfy"),
        (lambda: log_bessel_iv(-1.0, 1.0), "order must be >= 0, got -1.0"),
    ],
)
def test_invalid_arguments_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()
