"""Special functions of the von Mises-Fisher distribution on the unit sphere S^(d-1).

The vMF density in R^d is ``f(x) = C_d(kappa) exp(kappa mu . x)`` with normaliser

    C_d(kappa) = kappa^(d/2 - 1) / ((2 pi)^(d/2) I_(d/2 - 1)(kappa)),

where ``I_v`` is the modified Bessel function of the first kind. In high dimension ``I_v`` over-
and underflows double precision for ordinary concentrations, so everything here works with
``log I_v(x) - x`` ("scaled log"), which is finite for every order and argument in use.

Functions accept scalars, NumPy arrays or torch tensors and broadcast over them. Results are
float64; a torch input gives a float64 tensor on the input's device.

References
----------
- DLMF 10.41 (uniform asymptotic expansion of I_v for large order): https://dlmf.nist.gov/10.41
- A. Banerjee, I. Dhillon, J. Ghosh, S. Sra, "Clustering on the unit hypersphere using von
  Mises-Fisher distributions", JMLR 6 (2005): the closed-form start for the inverse of A_d.
- S. Sra, "A short note on parameter approximation for von Mises-Fisher distributions",
  Computational Statistics 27 (2012): the Newton step for the inverse of A_d.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch
from scipy.special import gammaln, ive

__all__ = [
    "DEFAULT_KAPPA_BOUNDS",
    "bessel_ratio",
    "bessel_ratio_inverse",
    "log_bessel_iv",
    "log_vmf_normalizer",
]

DEFAULT_KAPPA_BOUNDS: tuple[float, float] = (1e-3, 1e5)
"""Concentration interval on which ``log_vmf_normalizer`` is tested against mpmath."""

# Below this value scipy's ive is close to the subnormal range and loses digits.
_IVE_FLOOR = 1e-250

# With the terms U_0..U_5 the truncation error of the Debye series is about |U_6(p)| / v^6.
# max |U_6| on [0, 1] is 0.04, so the error is below 2e-10 from order 25 on.
_DEBYE_MIN_ORDER = 25.0
_DEBYE_TERMS = 6

# Power-series terms for orders below 25 when ive underflows. That only happens for x < 1 at
# such orders, where the terms fall faster than 1 / m!.
_SERIES_TERMS = 30

_NEWTON_MAX_ITER = 100
_NEWTON_RTOL = 1e-13


def _debye_polynomials(n_terms: int) -> list[list[Fraction]]:
    """Compute the coefficients of the Debye polynomials U_0 .. U_(n_terms - 1).

    Uses the recurrence of DLMF 10.41.9,
    ``U_(k+1)(p) = p^2 (1 - p^2) U_k'(p) / 2 + (1/8) int_0^p (1 - 5 t^2) U_k(t) dt``,
    in exact rational arithmetic. Entry ``j`` of each list is the coefficient of ``p^j``.
    """
    polynomials = [[Fraction(1)]]
    for _ in range(n_terms - 1):
        current = polynomials[-1]
        following = [Fraction(0)] * (len(current) + 3)

        # p^2 (1 - p^2) U'(p) / 2
        for power in range(1, len(current)):
            half_derivative = Fraction(power) * current[power] / 2
            following[power + 1] += half_derivative
            following[power + 3] -= half_derivative

        # (1/8) times the integral from 0 to p of (1 - 5 t^2) U(t)
        for power, coefficient in enumerate(current):
            following[power + 1] += coefficient / (8 * (power + 1))
            following[power + 3] -= 5 * coefficient / (8 * (power + 3))

        polynomials.append(following)
    return polynomials


_DEBYE_COEFFICIENTS = [
    np.array([float(c) for c in polynomial]) for polynomial in _debye_polynomials(_DEBYE_TERMS)
]


def _to_float64_array(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64).numpy()
    return np.asarray(value, dtype=np.float64)


def _like_input(result: np.ndarray, *inputs):
    """Return ``result`` as a float64 tensor on the device of the first torch input, if any."""
    for value in inputs:
        if isinstance(value, torch.Tensor):
            return torch.as_tensor(result, dtype=torch.float64, device=value.device)
    if result.ndim == 0:
        return float(result)
    return result


def _validate_dim(dim) -> int:
    if isinstance(dim, bool) or not float(dim).is_integer() or dim < 2:
        raise ValueError(f"dim must be an integer >= 2, got {dim!r}")
    return int(dim)


def _validate_kappa(kappa: np.ndarray) -> None:
    if not np.all(np.isfinite(kappa)) or np.any(kappa < 0):
        bad = float(kappa[~(np.isfinite(kappa) & (kappa >= 0))].ravel()[0])
        raise ValueError(f"kappa must be finite and >= 0, got {bad!r}")


def _log_ive_debye(order: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Compute ``log I_v(x) - x`` for order v >= 25 and x > 0 by the Debye expansion.

    DLMF 10.41.3: ``I_v(v z) ~ exp(v eta) / (sqrt(2 pi v) (1 + z^2)^(1/4)) sum_k U_k(p) / v^k``
    with ``p = 1 / sqrt(1 + z^2)`` and ``eta = sqrt(1 + z^2) + log(z / (1 + sqrt(1 + z^2)))``.
    """
    z = x / order
    root = np.sqrt(1.0 + z * z)
    p = 1.0 / root

    # v * eta - x, rearranged so that nothing cancels for large z:
    # sqrt(1 + z^2) - z = 1 / (root + z), and z / (1 + root) = 1 / (1 + (1 + 1/(root + z)) / z).
    inverse_gap = 1.0 / (root + z)
    exponent = order * (inverse_gap - np.log1p((1.0 + inverse_gap) / z))

    series = np.zeros_like(z)
    for k, coefficients in enumerate(_DEBYE_COEFFICIENTS):
        series += np.polynomial.polynomial.polyval(p, coefficients) / order**k

    return exponent - 0.5 * np.log(2.0 * math.pi * order) - 0.5 * np.log(root) + np.log(series)


def _log_ive_series(order: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Compute ``log I_v(x) - x`` by the power series, for x > 0 small next to sqrt(v + 1)."""
    quarter_square = 0.25 * x * x
    term = np.ones_like(x)
    total = np.ones_like(x)
    for m in range(1, _SERIES_TERMS):
        term = term * quarter_square / (m * (order + m))
        total += term
    return order * np.log(0.5 * x) - gammaln(order + 1.0) + np.log(total) - x


def _log_ive(order: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Compute ``log I_v(x) - x`` elementwise for float64 arrays with v >= 0 and x >= 0.

    scipy's ``ive`` (AMOS) is used where its value is a normal double. Where it underflows,
    which happens when x is much smaller than v (for example v = 511, x = 50), the Debye
    expansion takes over for v >= 25 and the power series below that.
    """
    order, x = np.broadcast_arrays(np.asarray(order, np.float64), np.asarray(x, np.float64))
    result = np.empty(order.shape, dtype=np.float64)

    with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
        scaled = ive(order, x)
    direct = np.isfinite(scaled) & (scaled > _IVE_FLOOR)
    result[direct] = np.log(scaled[direct])

    # ive(v, 0) is 1 for v = 0, which the direct branch took, and 0 otherwise.
    at_zero = ~direct & (x == 0.0)
    result[at_zero] = -np.inf

    debye = ~direct & ~at_zero & (order >= _DEBYE_MIN_ORDER)
    if debye.any():
        result[debye] = _log_ive_debye(order[debye], x[debye])

    series = ~direct & ~at_zero & ~debye
    if series.any():
        result[series] = _log_ive_series(order[series], x[series])
    return result


def log_bessel_iv(order, x):
    """Compute ``log I_v(x)``, the log of the modified Bessel function of the first kind.

    Parameters
    ----------
    order : float or array-like of float
        Order v >= 0. Broadcasts against ``x``.
    x : float, array-like or torch.Tensor
        Argument x >= 0.

    Returns
    -------
    float, ndarray or torch.Tensor (float64)
        ``log I_v(x)``; ``-inf`` where x = 0 and v > 0.
    """
    order_values = _to_float64_array(order)
    x_values = _to_float64_array(x)
    if np.any(order_values < 0):
        bad = float(order_values[order_values < 0].ravel()[0])
        raise ValueError(f"order must be >= 0, got {bad!r}")
    _validate_kappa(x_values)

    result = _log_ive(order_values, x_values) + x_values
    return _like_input(result, x, order)


def log_vmf_normalizer(dim, kappa):
    """Compute ``log C_d(kappa)``, the log normaliser of the vMF density on S^(d-1) in R^d.

    ``log C_d(kappa) = (d/2 - 1) log kappa - (d/2) log(2 pi) - log I_(d/2-1)(kappa)``. At
    kappa = 0 the limit, minus the log surface area of the sphere, is returned.

    Parameters
    ----------
    dim : int
        Ambient dimension d >= 2.
    kappa : float, array-like or torch.Tensor
        Concentrations, >= 0.

    Returns
    -------
    float, ndarray or torch.Tensor (float64)
        ``log C_d(kappa)`` with the shape of ``kappa``. Tested against mpmath to 1e-6 relative
        error for d in [2, 4096] and kappa in [1e-3, 1e5].
    """
    dim = _validate_dim(dim)
    kappa_values = _to_float64_array(kappa)
    _validate_kappa(kappa_values)

    order = dim / 2.0 - 1.0
    positive = kappa_values > 0
    safe_kappa = np.where(positive, kappa_values, 1.0)

    with np.errstate(divide="ignore"):
        log_kappa_power = order * np.log(safe_kappa) if order > 0 else np.zeros_like(safe_kappa)
    log_iv = _log_ive(order, safe_kappa) + safe_kappa
    result = log_kappa_power - 0.5 * dim * math.log(2.0 * math.pi) - log_iv

    # C_d(0) = Gamma(d/2) / (2 pi^(d/2)), one over the surface area of S^(d-1).
    uniform = gammaln(0.5 * dim) - math.log(2.0) - 0.5 * dim * math.log(math.pi)
    result = np.where(positive, result, uniform)
    return _like_input(result, kappa)


def _bessel_ratio_values(dim: int, kappa: np.ndarray) -> np.ndarray:
    order = dim / 2.0 - 1.0
    positive = kappa > 0
    safe_kappa = np.where(positive, kappa, 1.0)

    # The scaled logs keep the ratio exact where I_v itself overflows (kappa up to 1e5 and more).
    log_ratio = _log_ive(order + 1.0, safe_kappa) - _log_ive(order, safe_kappa)
    return np.where(positive, np.exp(log_ratio), 0.0)


def bessel_ratio(dim, kappa):
    """Compute ``A_d(kappa) = I_(d/2)(kappa) / I_(d/2-1)(kappa)``.

    A_d(kappa) is the expected cosine ``E[mu . x]`` under vMF(mu, kappa) in R^d. It increases
    from 0 at kappa = 0 towards 1, and ``d/dkappa log C_d(kappa) = -A_d(kappa)``.

    Parameters
    ----------
    dim : int
        Ambient dimension d >= 2.
    kappa : float, array-like or torch.Tensor
        Concentrations, >= 0.

    Returns
    -------
    float, ndarray or torch.Tensor (float64)
        ``A_d(kappa)``, computed as the exponential of a difference of scaled logs. Tested
        against mpmath to 1e-8 absolute error.
    """
    dim = _validate_dim(dim)
    kappa_values = _to_float64_array(kappa)
    _validate_kappa(kappa_values)
    return _like_input(_bessel_ratio_values(dim, kappa_values), kappa)


def _banerjee_start(dim: int, rbar: np.ndarray) -> np.ndarray:
    """Return the approximation ``kappa ~ Rbar (d - Rbar^2) / (1 - Rbar^2)`` (Banerjee 2005)."""
    return rbar * (dim - rbar * rbar) / (1.0 - rbar * rbar)


def bessel_ratio_inverse(dim, rbar, bounds: tuple[float, float] = DEFAULT_KAPPA_BOUNDS):
    """Solve ``A_d(kappa) = rbar`` for kappa, clipped to ``bounds``.

    This is the maximum-likelihood concentration of a vMF distribution whose data have mean
    resultant length ``rbar``. The Banerjee et al. (2005) approximation gives the start. Newton
    steps (Sra 2012), using ``A_d'(kappa) = 1 - A_d^2 - (d - 1) A_d / kappa``, follow. A step
    that leaves the current bracket of the root is replaced by a geometric bisection, so the
    iteration converges for every ``rbar`` in (0, 1).

    Because ``log C_d(kappa) + kappa rbar`` is concave in kappa, the clipped root is also the
    maximiser of that function over ``bounds``.

    Parameters
    ----------
    dim : int
        Ambient dimension d >= 2.
    rbar : float, array-like or torch.Tensor
        Mean resultant lengths in [0, 1]. Values up to 1e-6 above 1 (rounding) are clipped to 1.
    bounds : tuple of float
        ``(kappa_min, kappa_max)`` with ``0 < kappa_min < kappa_max``.

    Returns
    -------
    float, ndarray or torch.Tensor (float64)
        Concentrations with the shape of ``rbar``. Newton stops when a step changes kappa by
        less than 1e-13 relative; the round trip through ``bessel_ratio`` is tested to 1e-8.
    """
    dim = _validate_dim(dim)
    lower_bound, upper_bound = (float(b) for b in bounds)
    if not (0.0 < lower_bound < upper_bound < math.inf):
        raise ValueError(f"bounds must satisfy 0 < kappa_min < kappa_max < inf, got {bounds!r}")

    rbar_values = _to_float64_array(rbar)
    valid = np.isfinite(rbar_values) & (rbar_values >= 0.0) & (rbar_values <= 1.0 + 1e-6)
    if not np.all(valid):
        bad = float(rbar_values[~valid].ravel()[0])
        raise ValueError(f"rbar must lie in [0, 1], got {bad!r}")
    target = np.clip(rbar_values, 0.0, 1.0)

    # Outside [A_d(kappa_min), A_d(kappa_max)] the clipped root is the nearer bound.
    ratio_at_bounds = _bessel_ratio_values(dim, np.array([lower_bound, upper_bound]))
    kappa = np.where(target <= ratio_at_bounds[0], lower_bound, upper_bound)
    active = (target > ratio_at_bounds[0]) & (target < ratio_at_bounds[1])

    if np.any(active):
        kappa[active] = _newton_inverse(dim, target[active], lower_bound, upper_bound)
    return _like_input(kappa, rbar)


def _newton_inverse(dim: int, target: np.ndarray, lower: float, upper: float) -> np.ndarray:
    """Run safeguarded Newton on ``A_d(kappa) = target`` with the root inside (lower, upper)."""
    bracket_low = np.full_like(target, lower)
    bracket_high = np.full_like(target, upper)
    kappa = np.clip(_banerjee_start(dim, target), lower, upper)

    for _ in range(_NEWTON_MAX_ITER):
        ratio = _bessel_ratio_values(dim, kappa)
        residual = ratio - target
        bracket_low = np.where(residual < 0, kappa, bracket_low)
        bracket_high = np.where(residual > 0, kappa, bracket_high)

        derivative = 1.0 - ratio * ratio - (dim - 1.0) * ratio / kappa
        with np.errstate(divide="ignore", invalid="ignore"):
            candidate = kappa - residual / derivative
        inside = (derivative > 0) & (candidate > bracket_low) & (candidate < bracket_high)
        candidate = np.where(inside, candidate, np.sqrt(bracket_low * bracket_high))
        candidate = np.where(residual == 0, kappa, candidate)

        converged = np.abs(candidate - kappa) <= _NEWTON_RTOL * kappa
        kappa = candidate
        if np.all(converged):
            break
    return kappa
