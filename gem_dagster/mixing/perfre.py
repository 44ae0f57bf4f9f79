"""PerfRe: performance-based reweighting from one up-sampling probe per domain.

This module is the project's own concrete version of performance-based reweighting. One
proxy is trained on the natural mixture, then one proxy per
domain g on the natural mixture with g's weight multiplied by ``upsample`` and the mixture
renormalised. The gain of domain g is

    delta_g = target_loss(natural proxy) - target_loss(proxy with g up-sampled)

and the weights are ``natural_g * exp(beta * delta_g / std(delta))``, renormalised. A
domain whose extra data lowers the target loss gains weight, and one whose extra data
raises it loses weight.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from gem_dagster.mixing.doremi import domains_and_prior
from gem_dagster.mixing.proxy import (
    ProxyConfig,
    evaluate_loss,
    split_streams,
    train_proxy,
    validate_streams,
)
from gem_dagster.mixing.stats import DomainStats
from gem_dagster.mixing.strategies import MixtureWeights, _finish, _require_stats

__all__ = ["PerfReResult", "perfre", "perfre_weights", "upsampled_mixture"]

logger = logging.getLogger(__name__)


def upsampled_mixture(natural: np.ndarray, domain: int, factor: float) -> np.ndarray:
    """Multiply the weight at position ``domain`` by ``factor`` and renormalise."""
    mixture = np.array(natural, dtype=np.float64)
    mixture[domain] *= factor
    return mixture / mixture.sum()


@dataclass(frozen=True)
class PerfReResult:
    """Outcome of ``perfre_weights``.

    Attributes
    ----------
    weights : numpy.ndarray of float64, shape (K,)
        Reweighted mixture, before any epoch cap.
    natural : numpy.ndarray of float64, shape (K,)
        Natural mixture the probes start from.
    gains : numpy.ndarray of float64, shape (K,)
        ``delta_g`` in nats per token, 0 for domains without tokens.
    base_loss : float
        Target loss of the natural-mixture proxy.
    """

    weights: np.ndarray
    natural: np.ndarray
    gains: np.ndarray
    base_loss: float


def perfre_weights(
    stats_or_domain_ids: DomainStats | Sequence[int],
    token_streams: Mapping[int, np.ndarray],
    target_streams: Mapping[int, np.ndarray],
    config: ProxyConfig,
    beta: float = 1.0,
    upsample: float = 2.0,
) -> PerfReResult:
    """Reweight the natural mixture by each domain's up-sampling gain on the target.

    Parameters
    ----------
    stats_or_domain_ids : DomainStats or sequence of int
        Domain order and natural mixture, as for ``doremi.domains_and_prior``.
    token_streams : mapping of int to numpy.ndarray
        Training tokens of each domain with tokens.
    target_streams : mapping to numpy.ndarray
        Validation tokens whose mean loss should fall.
    config : ProxyConfig
        Settings of every proxy. All proxies share ``config.seed``, so they differ only in
        the mixture. ``K + 1`` proxies are trained for K domains with tokens.
    beta : float, default 1.0
        Strength of the reweighting, in units of the standard deviation of the gains.
    upsample : float, default 2.0
        Factor on a domain's natural weight in its probe.

    Notes
    -----
    When every gain is equal the standard deviation is 0 and the natural mixture is
    returned unchanged.
    """
    if not upsample > 1:
        raise ValueError(f"upsample must be > 1, got {upsample}")
    domain_ids, natural, active = domains_and_prior(stats_or_domain_ids, token_streams)
    trained_ids = [d for d, has in zip(domain_ids, active) if has]
    streams = {domain: np.asarray(token_streams[domain]) for domain in trained_ids}
    validate_streams(streams, config)
    validate_streams(target_streams, config)

    base_mixture = natural[active]
    base_model = train_proxy(config, base_mixture, streams, label="perfre natural")
    base_loss = evaluate_loss(base_model, target_streams)
    logger.info("perfre natural mixture: target loss %.4f", base_loss)

    active_gains = np.empty(len(trained_ids))
    for position, domain in enumerate(trained_ids):
        mixture = upsampled_mixture(base_mixture, position, upsample)
        model = train_proxy(config, mixture, streams, label=f"perfre up-sample {domain}")
        active_gains[position] = base_loss - evaluate_loss(model, target_streams)
        logger.info("perfre domain %s: gain %.4f", domain, active_gains[position])

    spread = float(active_gains.std())
    if spread > 0:
        scores = beta * active_gains / spread
        # Subtracting the maximum keeps exp() from overflowing and cancels in the
        # normalisation.
        preference = base_mixture * np.exp(scores - scores.max())
    else:
        preference = base_mixture.copy()

    weights = np.zeros(len(domain_ids))
    weights[active] = preference / preference.sum()
    gains = np.zeros(len(domain_ids))
    gains[active] = active_gains
    return PerfReResult(weights=weights, natural=natural, gains=gains, base_loss=base_loss)


def perfre(
    stats: DomainStats,
    budget: int,
    max_epochs: float = 4.0,
    min_weight: float = 0.0,
    *,
    token_streams: Mapping[int, np.ndarray],
    proxy: ProxyConfig,
    target_streams: Mapping[int, np.ndarray] | None = None,
    beta: float = 1.0,
    upsample: float = 2.0,
) -> MixtureWeights:
    """Run ``perfre_weights`` and apply the epoch cap and minimum weight.

    Without ``target_streams`` the target is the last 10% of each domain's stream, and the
    proxies train on the first 90%. ``params`` records the gain of each domain.
    """
    stats = _require_stats(stats)
    if target_streams is None:
        token_streams, target_streams = split_streams(token_streams)
    result = perfre_weights(
        stats, token_streams, target_streams, proxy, beta=beta, upsample=upsample
    )
    return _finish(
        "perfre",
        stats,
        result.weights,
        budget,
        max_epochs,
        min_weight,
        {
            "beta": float(beta),
            "upsample": float(upsample),
            "gains": result.gains.tolist(),
            "base_loss": result.base_loss,
            "proxy": asdict(proxy),
            "uncapped_weights": result.weights.tolist(),
        },
    )
