"""E-step solvers: responsibilities that maximise F over Gamma for fixed parameters.

With the parameters fixed, F is strictly concave in the responsibilities Gamma = (gamma_ik).
Both solvers below reach its unique maximiser, where

    gamma_ik = softmax_k(L_ik - nu_k)   and   nu = lambda (pi - u).

``nu`` taxes clusters whose mass is above the uniform target u = 1/K and subsidises those below.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .responsibilities import LogitSource

# Sufficient decrease constant of the Armijo backtracking rule.
_ARMIJO = 1e-4
_MAX_HALVINGS = 40
# Rounding noise of the mean log-sum-exp, relative to its size. A step that changes D(nu) by
# less than this is accepted, so Newton can still reduce the gradient near the optimum.
_VALUE_NOISE = 1e-14


@dataclass
class DualSolution:
    """Result of the dual E-step.

    Attributes
    ----------
    nu : torch.Tensor of shape (K,), float64
        Dual variables. The responsibilities are ``softmax(L - nu)`` row by row.
    n_iter : int
        Newton steps taken.
    converged : bool
        Whether ``max |grad D(nu)| <= tol`` was reached.
    gradient_norm : float
        Final ``max |grad D(nu)|``, in units of cluster mass.
    """

    nu: torch.Tensor
    n_iter: int
    converged: bool
    gradient_norm: float


@dataclass
class _DualPass:
    mean_log_sum_exp: torch.Tensor
    mean_probabilities: torch.Tensor
    mean_outer: torch.Tensor


def _dual_pass(source: LogitSource, nu: torch.Tensor) -> _DualPass:
    """Average, over all rows, logsumexp(L_i - nu), p_i = softmax(L_i - nu) and p_i p_i^T."""
    n_clusters = source.n_clusters
    device = nu.device
    log_sum_exp = torch.zeros((), dtype=torch.float64, device=device)
    probabilities = torch.zeros(n_clusters, dtype=torch.float64, device=device)
    outer = torch.zeros(n_clusters, n_clusters, dtype=torch.float64, device=device)

    for start, stop in source.bounds:
        shifted = source.logits(start, stop) - nu
        row_lse = torch.logsumexp(shifted, dim=1)
        p = (shifted - row_lse[:, None]).exp()
        log_sum_exp += row_lse.sum()
        probabilities += p.sum(dim=0)
        outer += p.T @ p

    n_samples = source.n_samples
    return _DualPass(log_sum_exp / n_samples, probabilities / n_samples, outer / n_samples)


def _dual_value(statistics: _DualPass, nu: torch.Tensor, balance: float) -> float:
    """D(nu) = mean_i logsumexp(L_i - nu) + <nu, u> + ||nu||^2 / (2 lambda)."""
    return float(statistics.mean_log_sum_exp + nu.mean() + (nu @ nu) / (2.0 * balance))


def _newton_direction(hessian: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Solve ``hessian @ step = -gradient`` for a symmetric positive definite K x K matrix.

    The eigendecomposition runs on the CPU because K is small. A relative eigenvalue floor
    keeps the step finite if rounding makes an eigenvalue 0.
    """
    eigenvalues, eigenvectors = torch.linalg.eigh(hessian.cpu())
    eigenvalues = eigenvalues.clamp_min(1e-15 * float(eigenvalues.max()))
    coordinates = eigenvectors.T @ gradient.cpu()
    step = -(eigenvectors @ (coordinates / eigenvalues))
    return step.to(gradient.device)


def solve_dual(
    source: LogitSource,
    balance: float,
    initial_nu: torch.Tensor,
    tol: float,
    max_iter: int,
) -> DualSolution:
    """Minimise the convex dual of the E-step by damped Newton steps.

    The dual objective is

        D(nu) = (1/N) sum_i logsumexp_k(L_ik - nu_k) + <nu, u> + ||nu||^2 / (2 lambda),

    with gradient ``u + nu/lambda - mean_i p_i`` and Hessian
    ``mean_i (diag p_i - p_i p_i^T) + I/lambda``, where ``p_i = softmax(L_i - nu)``. Its
    minimiser gives the E-step optimum ``gamma_i = p_i``, and strong duality holds:
    ``F(Gamma(nu)) = D(nu) - (lambda/2) ||grad D(nu)||^2``. Each Newton step is followed by
    Armijo backtracking. Every evaluation is one pass over the logits, O(N K).

    Parameters
    ----------
    source : LogitSource
        Logits of the current parameters.
    balance : float
        lambda >= 0. For lambda = 0 the penalty vanishes, nu = 0 and the responsibilities are
        the plain posterior, with no division by lambda.
    initial_nu : torch.Tensor of shape (K,), float64
        Warm start, usually the previous E-step's solution.
    tol : float
        Stop when every gradient entry is at most ``tol`` in absolute value.
    max_iter : int
        Maximum Newton steps.
    """
    if balance == 0.0:
        return DualSolution(torch.zeros_like(initial_nu), 0, True, 0.0)

    n_clusters = source.n_clusters
    uniform = 1.0 / n_clusters
    identity_term = torch.eye(n_clusters, dtype=torch.float64, device=initial_nu.device) / balance

    nu = initial_nu.clone()
    statistics = _dual_pass(source, nu)
    value = _dual_value(statistics, nu, balance)

    n_iter = 0
    while True:
        gradient = uniform + nu / balance - statistics.mean_probabilities
        gradient_norm = float(gradient.abs().max())
        if gradient_norm <= tol or n_iter >= max_iter:
            break

        hessian = torch.diag(statistics.mean_probabilities) - statistics.mean_outer + identity_term
        step = _newton_direction(hessian, gradient)
        slope = float(gradient @ step)
        noise = _VALUE_NOISE * max(1.0, abs(float(statistics.mean_log_sum_exp)))

        accepted = None
        step_size = 1.0
        for _ in range(_MAX_HALVINGS):
            candidate = nu + step_size * step
            candidate_statistics = _dual_pass(source, candidate)
            candidate_value = _dual_value(candidate_statistics, candidate, balance)
            if candidate_value <= value + _ARMIJO * step_size * slope + noise:
                accepted = (candidate, candidate_statistics, candidate_value)
                break
            step_size *= 0.5

        # When no step size decreases D beyond rounding, nu is as good as float64 can tell.
        if accepted is None:
            break
        nu, statistics, value = accepted
        n_iter += 1

    return DualSolution(nu, n_iter, gradient_norm <= tol, gradient_norm)


@dataclass
class MMSolution:
    """Result of the minorize-maximize E-step.

    Attributes
    ----------
    log_responsibilities : torch.Tensor of shape (N, K), float64
    n_iter : int
        MM rounds taken.
    converged : bool
        Whether the fixed-point residual fell to ``tol``.
    residual : float
        ``mean_i ||softmax(L_i - lambda (pi - u)) - gamma_i||_1`` at the returned iterate.
    """

    log_responsibilities: torch.Tensor
    n_iter: int
    converged: bool
    residual: float


def solve_mm(
    logits: torch.Tensor,
    log_responsibilities: torch.Tensor,
    balance: float,
    tol: float,
    max_iter: int,
) -> MMSolution:
    """Maximise F over Gamma by minorize-maximize with one mirror-ascent step per round.

    The penalty -(lambda/2)||pi - u||^2 is expanded around the current mass pi_t with gradient
    g = -lambda (pi_t - u). Jensen's inequality, ||pi - pi_t||^2 <= mean_i ||gamma_i -
    gamma_i^t||^2, then gives a minoriser of F that is tight at Gamma_t and separates into one
    term per row,

        phi_i(gamma) = <gamma, L_i + g> + H(gamma) - (lambda/2) ||gamma - gamma_i^t||^2.

    phi_i is (1 + lambda)-smooth relative to the negative entropy, so an exponentiated-gradient
    step with eta = 1 / (1 + lambda) never lowers it, and F never decreases. At the anchor
    gamma_i^t the proximal term has zero gradient, so one step reads

        log gamma_i <- (1 - eta) log gamma_i + eta (L_i - lambda (pi_t - u)) + const.

    Each round costs O(N K), and convergence is linear. On a 400 x 5 test problem the
    residual shrank by a factor of 0.87 to 0.94 per round for lambda from 5 to 100.

    Parameters
    ----------
    logits : torch.Tensor of shape (N, K), float64
    log_responsibilities : torch.Tensor of shape (N, K), float64
        Starting point, usually the previous E-step's result. It is kept in log space, so a
        responsibility that underflows in linear space can still grow again.
    balance : float
        lambda >= 0. lambda = 0 gives the plain posterior in one step.
    tol : float
        Stop when the mean L1 distance to the fixed-point map is at most ``tol``.
    max_iter : int
        Maximum rounds.
    """
    uniform = 1.0 / logits.shape[1]
    step = 1.0 / (1.0 + balance)
    current = log_responsibilities

    n_iter = 0
    while True:
        responsibilities = current.exp()
        mass = responsibilities.mean(dim=0)
        shifted = logits - balance * (mass - uniform)

        fixed_point = torch.softmax(shifted, dim=1)
        residual = float((fixed_point - responsibilities).abs().sum(dim=1).mean())
        if residual <= tol or n_iter >= max_iter:
            break

        current = torch.log_softmax((1.0 - step) * current + step * shifted, dim=1)
        n_iter += 1

    return MMSolution(current, n_iter, residual <= tol, residual)
