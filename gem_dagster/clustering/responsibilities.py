"""Logits of a vMF mixture and the statistics that its responsibilities feed to the M-step.

The logit of row i and component k is ``L_ik = b_k + kappa_k mu_k . x_i``, where the bias
``b_k`` is the log prior plus the log normaliser ``log C_d(kappa_k)``. The products
``x_i . (kappa_k mu_k)`` come from one float32 matrix product, and everything after it
(logits, log-sum-exp, sums over rows) is float64. Scaling mu_k by kappa_k before the product
keeps the same absolute error, kappa_k times float32 rounding, as scaling the cosines after it,
and saves two passes over the N x K result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from ._runtime import block_bounds, block_rows_for, chunk_bounds


class LogitSource:
    """Chunks of the N x K logit matrix, either cached whole or recomputed on each request.

    Parameters
    ----------
    X : torch.Tensor of shape (N, d), float32
        Unit-norm data rows.
    directions : torch.Tensor of shape (K, d)
        Mean directions mu_k.
    concentrations : torch.Tensor of shape (K,), float64
        Concentrations kappa_k.
    bias : torch.Tensor of shape (K,), float64
        Per-component constant b_k.
    chunk_rows : int
        Rows per chunk.
    cache : bool
        Keep the full (N, K) float64 matrix, computed once, instead of recomputing the matrix
        product for every pass.
    cache_out : torch.Tensor of shape (N, K), float64, optional
        Preallocated storage for the cached matrix, so that an EM loop can reuse one buffer.
        Used only when ``cache`` is true.
    rows64 : torch.Tensor of shape (N, d), float64, optional
        The rows of ``X`` in float64, for the resultant sums, if the caller keeps them.
    """

    def __init__(
        self,
        X: torch.Tensor,
        directions: torch.Tensor,
        concentrations: torch.Tensor,
        bias: torch.Tensor,
        chunk_rows: int,
        cache: bool,
        cache_out: torch.Tensor | None = None,
        rows64: torch.Tensor | None = None,
    ) -> None:
        self.X = X
        self.rows64 = rows64
        self.n_samples = X.shape[0]
        self.n_clusters = directions.shape[0]
        self.bounds = chunk_bounds(self.n_samples, chunk_rows)
        scaled_directions = directions.to(torch.float64) * concentrations.to(torch.float64)[:, None]
        self._scaled_directions32 = scaled_directions.to(torch.float32).T.contiguous()
        self._bias = bias.to(torch.float64)

        self._cache = None
        if cache:
            if cache_out is None:
                cache_out = torch.empty(
                    self.n_samples, self.n_clusters, dtype=torch.float64, device=X.device
                )
            # Each chunk is computed exactly as an uncached pass would compute it.
            for start, stop in self.bounds:
                self._compute(start, stop, cache_out[start:stop])
            self._cache = cache_out

    def _compute(self, start: int, stop: int, out: torch.Tensor | None = None) -> torch.Tensor:
        products = self.X[start:stop] @ self._scaled_directions32
        if out is None:
            return products.double().add_(self._bias)
        return torch.add(products, self._bias, out=out)

    @property
    def cached(self) -> bool:
        """Whether the whole logit matrix is kept in memory."""
        return self._cache is not None

    def logits(self, start: int, stop: int) -> torch.Tensor:
        """Return the float64 logits of rows ``start:stop``, shape (stop - start, K)."""
        if self._cache is not None:
            return self._cache[start:stop]
        return self._compute(start, stop)

    def strided_rows(self, stride: int) -> torch.Tensor:
        """Return the float64 logits of every ``stride``-th row from row ``stride // 2`` on."""
        offset = stride // 2
        if self._cache is not None:
            return self._cache[offset::stride].contiguous()
        products = self.X[offset::stride] @ self._scaled_directions32
        return products.double().add_(self._bias)

    def full(self) -> torch.Tensor:
        """Return the whole (N, K) float64 logit matrix, from the cache when there is one."""
        if self._cache is not None:
            return self._cache
        return torch.cat([self._compute(start, stop) for start, stop in self.bounds])


# Responsibilities at or below this are set to 0 before they are summed. float64 subnormals
# (below 2.2e-308) made one block's resultant product 140 times slower (torch 2.13, 2 CPU
# cores), and values this small change no sum that contains a responsibility of a row.
SUBNORMAL_FLOOR = 1e-300


def flush_subnormal_responsibilities(gamma: torch.Tensor) -> torch.Tensor:
    """Set the entries of ``gamma`` at or below ``SUBNORMAL_FLOOR`` to 0, in place."""
    return torch.nn.functional.threshold_(gamma, SUBNORMAL_FLOOR, 0.0)


@dataclass
class ResponsibilityStatistics:
    """Sums over the responsibilities gamma (N x K) that the M-step and the objective need.

    Attributes
    ----------
    mass : torch.Tensor of shape (K,), float64
        Cluster mass ``pi_k = (1/N) sum_i gamma_ik``.
    resultants : torch.Tensor of shape (K, d), float64
        Resultant vectors ``r_k = sum_i gamma_ik x_i``.
    mean_entropy : float
        ``(1/N) sum_i H(gamma_i)`` in nats.
    labels : torch.Tensor of shape (N,), int64
        ``argmax_k gamma_ik``.
    worst_row : int
        Row with the lowest ``logsumexp_k L_ik``, the point that the mixture explains worst,
        or -1 when it was not computed.
    responsibilities : torch.Tensor of shape (N, K), float64, or None
        Kept only when requested.
    """

    mass: torch.Tensor
    resultants: torch.Tensor
    mean_entropy: float
    labels: torch.Tensor
    worst_row: int
    responsibilities: torch.Tensor | None = None


LogResponsibilities = Callable[[int, int, torch.Tensor], torch.Tensor]
"""Maps ``(start, stop, logits of those rows)`` to the log-responsibilities of those rows."""


class StatisticsSums:
    """Running sums of one pass over the data, added block by block of rows.

    ``add`` takes each block's responsibilities. The caller adds the block's entropy to
    ``entropy_sum`` itself, because how to compute it depends on where gamma came from.

    Parameters
    ----------
    source : LogitSource
        Logits and data rows.
    keep_responsibilities : bool
        Also keep the full (N, K) responsibilities.
    find_worst_row : bool
        Track the row with the lowest ``logsumexp_k L_ik``.
    """

    def __init__(
        self, source: LogitSource, keep_responsibilities: bool, find_worst_row: bool
    ) -> None:
        X = source.X
        device = X.device
        n_samples, n_features = X.shape
        n_clusters = source.n_clusters

        self.source = source
        # Without a float64 copy of the data, each block's rows are converted into scratch of
        # block_rows x d, so d also bounds the block.
        row_elements = n_clusters if source.rows64 is not None else max(n_clusters, n_features)
        self.block_rows = block_rows_for(row_elements)
        self.mass_sum = torch.zeros(n_clusters, dtype=torch.float64, device=device)
        self.resultants = torch.zeros(n_clusters, n_features, dtype=torch.float64, device=device)
        self.entropy_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.labels = torch.empty(n_samples, dtype=torch.int64, device=device)
        self.responsibilities = None
        if keep_responsibilities:
            self.responsibilities = torch.empty(
                n_samples, n_clusters, dtype=torch.float64, device=device
            )
        self.find_worst_row = find_worst_row
        self._worst_value = torch.tensor(float("inf"), dtype=torch.float64, device=device)
        self._worst_row = torch.tensor(-1, dtype=torch.int64, device=device)
        # float64 copy of one block of rows, reused for every block, unless the source has all.
        self._rows64 = None
        if source.rows64 is None:
            self._rows64 = torch.empty(
                min(self.block_rows, n_samples), n_features, dtype=torch.float64, device=device
            )

    def blocks(self) -> Iterator[tuple[int, int, torch.Tensor]]:
        """Yield ``(start, stop, logits)`` for blocks of at most ``block_rows`` rows."""
        source = self.source
        for chunk_start, chunk_stop in source.bounds:
            chunk_logits = source.logits(chunk_start, chunk_stop)
            for start, stop in block_bounds(chunk_start, chunk_stop, self.block_rows):
                yield start, stop, chunk_logits[start - chunk_start : stop - chunk_start]

    def add(
        self, start: int, stop: int, gamma: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor
    ) -> None:
        """Add the responsibilities ``gamma``, hard labels and ``logits`` of rows
        ``start:stop``."""
        self.mass_sum += gamma.sum(dim=0)
        if self._rows64 is None:
            rows = self.source.rows64[start:stop]
        else:
            rows = self._rows64[: stop - start]
            rows.copy_(self.source.X[start:stop])
        self.resultants.addmm_(gamma.T, rows)
        self.labels[start:stop] = labels

        if self.find_worst_row:
            fit = torch.logsumexp(logits, dim=1)
            block_worst = torch.argmin(fit)
            if fit[block_worst] < self._worst_value:
                self._worst_value = fit[block_worst]
                self._worst_row = block_worst + start

        if self.responsibilities is not None:
            self.responsibilities[start:stop] = gamma

    def result(self) -> ResponsibilityStatistics:
        """Return the statistics, once ``entropy_sum`` contains the sum of the rows' entropies."""
        n_samples = self.labels.shape[0]
        return ResponsibilityStatistics(
            mass=self.mass_sum / n_samples,
            resultants=self.resultants,
            mean_entropy=float(self.entropy_sum) / n_samples,
            labels=self.labels,
            worst_row=int(self._worst_row),
            responsibilities=self.responsibilities,
        )


def accumulate_statistics(
    source: LogitSource,
    log_responsibilities: LogResponsibilities,
    keep_responsibilities: bool,
    find_worst_row: bool = True,
) -> ResponsibilityStatistics:
    """Run one pass over the data and sum what the M-step and the objective need.

    Parameters
    ----------
    source : LogitSource
        Logits and data rows.
    log_responsibilities : callable
        ``(start, stop, logits) -> log gamma`` for a block of rows, float64 of shape
        (stop - start, K).
    keep_responsibilities : bool
        Also return the full (N, K) responsibilities.
    find_worst_row : bool, default=True
        Compute ``worst_row``, which costs one more log-sum-exp over the logits. When false,
        ``worst_row`` is -1.
    """
    sums = StatisticsSums(source, keep_responsibilities, find_worst_row)
    for start, stop, logits in sums.blocks():
        log_gamma = log_responsibilities(start, stop, logits)
        gamma = flush_subnormal_responsibilities(log_gamma.exp())
        # 0 log 0 = 0, also where log_gamma is -inf (a component with prior weight 0).
        sums.entropy_sum -= torch.where(gamma > 0, gamma * log_gamma, 0.0).sum()
        sums.add(start, stop, gamma, torch.argmax(log_gamma, dim=1), logits)
    return sums.result()
