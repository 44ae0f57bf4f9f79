"""E-step solvers: responsibilities that maximise F over Gamma for fixed parameters.

With the parameters fixed, F is strictly concave in the responsibilities Gamma = (gamma_ik).
Both solvers below reach its unique maximiser, where

    gamma_ik = softmax_k(L_ik - nu_k)   and   nu = lambda (pi - u).

``nu`` taxes clusters whose mass is above the uniform target u = 1/K and subsidises those below.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._runtime import block_bounds, block_rows_for
from .responsibilities import LogitSource

# Sufficient decrease constant of the Armijo backtracking rule.
_ARMIJO = 1e-4
_MAX_HALVINGS = 40
# Rounding noise of the mean log-sum-exp, relative to its size. A step that changes D(nu) by
# less than this is accepted, so Newton can still reduce the gradient near the optimum.
_VALUE_NOISE = 1e-14

# The cached exponentials E_ik = exp(L_ik - b_k - c_i) are floored at exp(-_EXPONENT_FLOOR),
# and D(nu) is read from them only while the offsets nu - b span at most _MAX_SPREAD. Every
# product of an entry and a weight then stays above exp(-700), clear of the float64
# subnormals, which start at exp(-708) and make exp() several times slower. A floored entry is
# at least exp(-100) times smaller than its row's largest term, so the floor changes no sum.
_EXPONENT_FLOOR = 400.0
_MAX_SPREAD = 300.0


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
    n_evaluations : int
        Evaluations of D, one per trial point of the line searches plus the starting point.
    """

    nu: torch.Tensor
    n_iter: int
    converged: bool
    gradient_norm: float
    n_evaluations: int = 0


@dataclass
class _DualPoint:
    """D at one nu, with what the evaluator needs to add the moments later.

    ``mean_probabilities`` and ``mean_outer`` are the row averages of ``p_i`` and
    ``p_i p_i^T`` for ``p_i = softmax(L_i - nu)``, or None until computed.
    """

    nu: torch.Tensor
    mean_log_sum_exp: float
    value: float
    weights: torch.Tensor | None = None
    row_sums: torch.Tensor | None = None
    mean_probabilities: torch.Tensor | None = None
    mean_outer: torch.Tensor | None = None


def _dual_value(mean_log_sum_exp: float, nu: torch.Tensor, balance: float) -> float:
    """D(nu) = mean_i logsumexp(L_i - nu) + <nu, u> + ||nu||^2 / (2 lambda)."""
    return mean_log_sum_exp + float(nu.mean()) + float(nu @ nu) / (2.0 * balance)


def _add_outer_products(total: torch.Tensor, probabilities: torch.Tensor) -> None:
    """Add ``sum_i p_i p_i^T`` over the rows of a block to ``total``.

    The product runs in float32, several times faster than in float64. Only the Newton
    direction uses it, while the gradient and D stay float64, so the line search and the
    stopping rule are unaffected. On GEM problems with N = 50,000 and K = 64 it took as many
    Newton steps as the float64 product.
    """
    single = probabilities.to(torch.float32)
    total += single.T @ single


class _CachedExponentials:
    """Evaluations of D from the exponentiated logits, stored for all rows.

    For a base ``b``, the cache holds ``E_ik = exp(L_ik - b_k - c_i)`` with the row maximum
    ``c_i = max_k (L_ik - b_k)``. For ``nu = b + delta`` with ``m = min_k delta_k``,

        logsumexp_k (L_ik - nu_k) = c_i - m + log sum_k E_ik w_k,   w_k = exp(m - delta_k),

    so D(nu) costs one matrix-vector product instead of an exponential of every entry. The
    evaluator moves the base to the current nu (one exponential pass) when a step would take
    the offsets beyond ``_MAX_SPREAD``.
    """

    def __init__(self, logits: torch.Tensor, balance: float, out: torch.Tensor | None) -> None:
        self._logits = logits
        self._balance = balance
        self._exponentials = torch.empty_like(logits) if out is None else out
        self._blocks = block_bounds(0, logits.shape[0], block_rows_for(logits.shape[1]))
        self._base: torch.Tensor | None = None
        self._mean_row_max = 0.0
        self.n_evaluations = 0

    def _rebase(self, nu: torch.Tensor) -> None:
        row_max_sum = torch.zeros((), dtype=torch.float64, device=nu.device)
        for start, stop in self._blocks:
            block = self._exponentials[start:stop]
            torch.sub(self._logits[start:stop], nu, out=block)
            row_max = block.amax(dim=1, keepdim=True)
            block.sub_(row_max).clamp_(min=-_EXPONENT_FLOOR).exp_()
            row_max_sum += row_max.sum()
        self._base = nu.clone()
        self._mean_row_max = float(row_max_sum) / self._logits.shape[0]

    def _spread(self, nu: torch.Tensor) -> float:
        offsets = nu - self._base
        return float(offsets.max() - offsets.min())

    def start(self, nu: torch.Tensor) -> _DualPoint:
        """Build the cache around ``nu`` and evaluate D there."""
        self._rebase(nu)
        return self.evaluate(nu)

    def evaluate(self, nu: torch.Tensor) -> _DualPoint:
        """Evaluate D at ``nu``, whose offsets from the base span at most ``_MAX_SPREAD``."""
        offsets = nu - self._base
        lowest = offsets.min()
        weights = torch.exp(lowest - offsets)
        row_sums = self._exponentials @ weights
        mean_log_sum_exp = self._mean_row_max - float(lowest) + float(row_sums.log().mean())
        self.n_evaluations += 1
        return _DualPoint(
            nu=nu,
            mean_log_sum_exp=mean_log_sum_exp,
            value=_dual_value(mean_log_sum_exp, nu, self._balance),
            weights=weights,
            row_sums=row_sums,
        )

    def limit_step(
        self, point: _DualPoint, step: torch.Tensor, step_size: float
    ) -> tuple[_DualPoint, float]:
        """Return the point (re-evaluated if the base moved) and a step size that D can be
        evaluated at from the cache."""
        if self._spread(point.nu + step_size * step) <= _MAX_SPREAD:
            return point, step_size

        if self._spread(point.nu) > 0.0:
            self._rebase(point.nu)
            moments = (point.mean_probabilities, point.mean_outer)
            point = self.evaluate(point.nu)
            point.mean_probabilities, point.mean_outer = moments

        # From the base, the offsets of nu + t step span t * spread(step).
        step_spread = float(step.max() - step.min())
        if step_spread * step_size > _MAX_SPREAD:
            step_size = _MAX_SPREAD / step_spread
        return point, step_size

    def moments(self, point: _DualPoint) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the row averages of ``p_i`` and ``p_i p_i^T`` at ``point``."""
        if point.mean_probabilities is None:
            n_clusters = self._logits.shape[1]
            device = self._logits.device
            probability_sum = torch.zeros(n_clusters, dtype=torch.float64, device=device)
            outer_sum = torch.zeros(n_clusters, n_clusters, dtype=torch.float64, device=device)
            for start, stop in self._blocks:
                probabilities = self._exponentials[start:stop] * point.weights
                probabilities /= point.row_sums[start:stop, None]
                probability_sum += probabilities.sum(dim=0)
                _add_outer_products(outer_sum, probabilities)

            n_samples = self._logits.shape[0]
            point.mean_probabilities = probability_sum / n_samples
            point.mean_outer = outer_sum / n_samples
        return point.mean_probabilities, point.mean_outer


class _LogitPasses:
    """Evaluations of D by a pass over the logits, for sources whose exponentials are not cached.

    Without a cache every pass recomputes the logits, which costs far more than the moments,
    so each trial point gets its moments in the same pass.
    """

    def __init__(self, source: LogitSource, balance: float) -> None:
        self._source = source
        self._balance = balance
        self._with_moments = not source.cached
        self._block_rows = block_rows_for(source.n_clusters)
        self.n_evaluations = 0

    def start(self, nu: torch.Tensor) -> _DualPoint:
        """Evaluate D at ``nu``."""
        return self.evaluate(nu)

    def evaluate(self, nu: torch.Tensor, with_moments: bool | None = None) -> _DualPoint:
        """Evaluate D at ``nu``, and its moments when the logits are recomputed anyway."""
        if with_moments is None:
            with_moments = self._with_moments
        source = self._source
        n_clusters = source.n_clusters
        device = nu.device
        log_sum_exp = torch.zeros((), dtype=torch.float64, device=device)
        probability_sum = torch.zeros(n_clusters, dtype=torch.float64, device=device)
        outer_sum = torch.zeros(n_clusters, n_clusters, dtype=torch.float64, device=device)

        for chunk_start, chunk_stop in source.bounds:
            chunk = source.logits(chunk_start, chunk_stop)
            for start, stop in block_bounds(0, chunk_stop - chunk_start, self._block_rows):
                # One exponential per entry gives the log-sum-exp and the softmax.
                shifted = chunk[start:stop] - nu
                row_max = shifted.amax(dim=1, keepdim=True)
                shifted.sub_(row_max).exp_()
                row_sums = shifted.sum(dim=1, keepdim=True)
                log_sum_exp += row_max.sum() + row_sums.log().sum()
                if with_moments:
                    shifted /= row_sums
                    probability_sum += shifted.sum(dim=0)
                    _add_outer_products(outer_sum, shifted)

        self.n_evaluations += 1
        n_samples = source.n_samples
        mean_log_sum_exp = float(log_sum_exp) / n_samples
        point = _DualPoint(nu, mean_log_sum_exp, _dual_value(mean_log_sum_exp, nu, self._balance))
        if with_moments:
            point.mean_probabilities = probability_sum / n_samples
            point.mean_outer = outer_sum / n_samples
        return point

    def limit_step(
        self, point: _DualPoint, step: torch.Tensor, step_size: float
    ) -> tuple[_DualPoint, float]:
        """Return the point and step size unchanged, because a pass can evaluate any nu."""
        return point, step_size

    def moments(self, point: _DualPoint) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the row averages of ``p_i`` and ``p_i p_i^T`` at ``point``."""
        if point.mean_probabilities is None:
            evaluated = self.evaluate(point.nu, with_moments=True)
            point.mean_probabilities = evaluated.mean_probabilities
            point.mean_outer = evaluated.mean_outer
        return point.mean_probabilities, point.mean_outer


def _dual_hessian(mean_outer: torch.Tensor, balance: float) -> torch.Tensor:
    """Return ``mean_i (diag p_i - p_i p_i^T) + I / lambda`` from ``mean_i p_i p_i^T``.

    Because ``sum_k p_ik = 1``, the data term is the graph Laplacian of the off-diagonal
    entries of ``mean_i p_i p_i^T``. Building it that way avoids the cancellation in
    ``p_ik - p_ik^2`` for confident rows, and keeps the Hessian positive definite with
    eigenvalues of at least 1 / lambda, also when ``mean_outer`` carries float32 rounding.
    """
    coupling = 0.5 * (mean_outer + mean_outer.T)
    coupling.fill_diagonal_(0.0)
    hessian = torch.diag(coupling.sum(dim=1)) - coupling
    hessian.diagonal().add_(1.0 / balance)
    return hessian


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
    cache_exponentials: bool = True,
    exponentials_out: torch.Tensor | None = None,
) -> DualSolution:
    """Minimise the convex dual of the E-step by damped Newton steps.

    The dual objective is

        D(nu) = (1/N) sum_i logsumexp_k(L_ik - nu_k) + <nu, u> + ||nu||^2 / (2 lambda),

    with gradient ``u + nu/lambda - mean_i p_i`` and Hessian
    ``mean_i (diag p_i - p_i p_i^T) + I/lambda``, where ``p_i = softmax(L_i - nu)``. Its
    minimiser gives the E-step optimum ``gamma_i = p_i``, and strong duality holds:
    ``F(Gamma(nu)) = D(nu) - (lambda/2) ||grad D(nu)||^2``. Each Newton step is followed by
    Armijo backtracking, which starts from twice the previous accepted step size (at most 1)
    because far from the optimum D is close to piecewise linear at the scale of the logits and
    full steps overshoot.

    With cached logits and ``cache_exponentials``, D is evaluated from stored exponentials
    (see ``_CachedExponentials``): a trial point costs one N x K matrix-vector product and an
    accepted point one more pass for the moments. Otherwise every evaluation is a pass over
    the logits, O(N K), plus the matrix product when they are not cached.

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
    cache_exponentials : bool, default=True
        Use an N x K float64 matrix of exponentials when the source caches its logits.
    exponentials_out : torch.Tensor of shape (N, K), float64, optional
        Preallocated storage for that matrix.
    """
    if balance == 0.0:
        return DualSolution(torch.zeros_like(initial_nu), 0, True, 0.0)

    if source.cached and cache_exponentials:
        evaluator = _CachedExponentials(source.full(), balance, exponentials_out)
    else:
        evaluator = _LogitPasses(source, balance)

    n_clusters = source.n_clusters
    uniform = 1.0 / n_clusters
    point = evaluator.start(initial_nu.clone())

    n_iter = 0
    step_size = 1.0
    while True:
        mean_probabilities, mean_outer = evaluator.moments(point)
        gradient = uniform + point.nu / balance - mean_probabilities
        gradient_norm = float(gradient.abs().max())
        if gradient_norm <= tol or n_iter >= max_iter:
            break

        step = _newton_direction(_dual_hessian(mean_outer, balance), gradient)
        slope = float(gradient @ step)
        step_size = min(1.0, 2.0 * step_size)
        point, step_size = evaluator.limit_step(point, step, step_size)
        noise = _VALUE_NOISE * max(1.0, abs(point.mean_log_sum_exp))

        accepted = None
        for _ in range(_MAX_HALVINGS):
            candidate = evaluator.evaluate(point.nu + step_size * step)
            if candidate.value <= point.value + _ARMIJO * step_size * slope + noise:
                accepted = candidate
                break
            step_size *= 0.5

        # When no step size decreases D beyond rounding, nu is as good as float64 can tell.
        if accepted is None:
            break
        point = accepted
        n_iter += 1

    return DualSolution(
        point.nu, n_iter, gradient_norm <= tol, gradient_norm, evaluator.n_evaluations
    )


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
