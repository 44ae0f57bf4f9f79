"""DoReMi: domain weights from Group DRO over excess loss (Xie et al. 2023).

A reference proxy is trained on the natural (token-proportional) mixture. A second proxy
is then trained on batches that sample domains uniformly, while domain weights ``alpha``
follow exponentiated-gradient ascent on each domain's excess loss over the reference:

    lambda_g = mean over the batch tokens of domain g of max(loss_proxy - loss_ref, 0)
    alpha    <- alpha * exp(eta * lambda), renormalised to sum 1
    alpha    <- (1 - c) * alpha + c / K

The proxy descends the alpha-weighted sum of its per-domain mean losses, and the output
is the average of alpha over all steps. Weight goes to domains where the proxy still
trails the reference. On pure noise both models stay near the entropy of the data, so its
excess loss, and with it its weight, stays small.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict

import numpy as np
import torch

from gem_dagster.mixing.proxy import (
    ProgressLog,
    ProxyConfig,
    build_proxy,
    domain_means,
    make_optimizer,
    per_token_losses,
    sample_batch,
    train_proxy,
    validate_streams,
)
from gem_dagster.mixing.stats import DomainStats
from gem_dagster.mixing.strategies import MixtureWeights, _finish, _require_stats

__all__ = ["doremi", "doremi_weights", "domains_and_prior"]


def domains_and_prior(
    stats_or_domain_ids: DomainStats | Sequence[int],
    token_streams: Mapping[int, np.ndarray],
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Resolve the domain order, the natural mixture and which domains can be trained.

    With ``DomainStats`` the natural mixture is the corpus token share of each cluster, and
    every cluster with tokens needs a stream. With plain ids it is each stream's share of
    the stream tokens.

    Returns
    -------
    domain_ids : list of int
        Domains in output order.
    natural : numpy.ndarray of float64
        Natural mixture over ``domain_ids``, summing to 1.
    active : numpy.ndarray of bool
        Domains with tokens, the only ones that get weight.

    Raises
    ------
    ValueError
        If a domain with tokens has no stream.
    """
    if isinstance(stats_or_domain_ids, DomainStats):
        domain_ids = stats_or_domain_ids.cluster_ids.tolist()
        tokens = stats_or_domain_ids.tokens.astype(np.float64)
    else:
        domain_ids = [int(domain) for domain in stats_or_domain_ids]
        missing = [domain for domain in domain_ids if domain not in token_streams]
        if missing:
            raise ValueError(f"domains {missing} have no token stream")
        tokens = np.array([np.asarray(token_streams[d]).size for d in domain_ids], dtype=float)

    active = tokens > 0
    missing = [d for d, has in zip(domain_ids, active) if has and d not in token_streams]
    if missing:
        raise ValueError(
            f"domains {missing} have tokens in the statistics but no token stream. Pass a "
            f"stream for every domain with tokens"
        )
    if not active.any():
        raise ValueError("every domain has 0 tokens, so there is nothing to train on")
    return domain_ids, tokens / tokens.sum(), active


def _balanced_rows(n_domains: int, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """Give every domain ``batch_size // K`` rows and spread the rest at random."""
    rows = np.repeat(np.arange(n_domains), batch_size // n_domains)
    extra = rng.choice(n_domains, size=batch_size - rows.size, replace=False)
    return np.concatenate([rows, extra])


def doremi_weights(
    stats_or_domain_ids: DomainStats | Sequence[int],
    token_streams: Mapping[int, np.ndarray],
    config: ProxyConfig,
    eta: float = 1.0,
    smoothing: float = 1e-3,
    reference_config: ProxyConfig | None = None,
) -> np.ndarray:
    """Compute DoReMi domain weights with a reference and a Group DRO proxy.

    Parameters
    ----------
    stats_or_domain_ids : DomainStats or sequence of int
        Domain order and natural mixture, as for ``domains_and_prior``.
    token_streams : mapping of int to numpy.ndarray
        Training tokens of each domain with tokens.
    config : ProxyConfig
        Size and schedule of the Group DRO proxy. ``batch_size`` must be at least the
        number of domains with tokens, so every domain appears in every batch.
    eta : float, default 1.0
        Step size of the multiplicative weight update.
    smoothing : float, default 1e-3
        Mixing coefficient ``c`` towards the uniform mixture after each update.
    reference_config : ProxyConfig, optional
        Reference proxy settings, ``config`` when omitted.

    Returns
    -------
    numpy.ndarray of float64
        Average domain weights in ``stats_or_domain_ids`` order, 0 for domains without
        tokens, summing to 1. No epoch cap is applied here.
    """
    if not eta > 0:
        raise ValueError(f"eta must be positive, got {eta}")
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"smoothing must be in [0, 1], got {smoothing}")

    domain_ids, natural, active = domains_and_prior(stats_or_domain_ids, token_streams)
    trained_ids = [d for d, has in zip(domain_ids, active) if has]
    streams = {domain: np.asarray(token_streams[domain]) for domain in trained_ids}
    validate_streams(streams, config)
    n_domains = len(trained_ids)
    if config.batch_size < n_domains:
        raise ValueError(
            f"DoReMi needs every domain in every batch, but batch_size {config.batch_size} "
            f"is smaller than the {n_domains} domains with tokens. Raise batch_size"
        )

    reference = train_proxy(
        reference_config or config, natural[active], streams, label="doremi reference"
    )
    reference.requires_grad_(False)

    rng = np.random.default_rng(config.seed + 1)
    proxy = build_proxy(config)
    optimizer, scheduler = make_optimizer(proxy, config)
    progress = ProgressLog("doremi proxy", config)
    alpha = torch.full((n_domains,), 1.0 / n_domains, dtype=torch.float64)
    alpha_sum = torch.zeros_like(alpha)
    proxy.train()
    for step in range(config.steps):
        row_domains = _balanced_rows(n_domains, config.batch_size, rng)
        batch = sample_batch(streams, row_domains, config.seq_len, rng, config.device)
        proxy_losses = per_token_losses(proxy, batch)
        with torch.no_grad():
            reference_losses = per_token_losses(reference, batch)
            excess = (proxy_losses.detach() - reference_losses).clamp(min=0.0).mean(dim=1)
            excess_loss, _ = domain_means(excess, batch.domains, n_domains)

            # Multiplicative update in log space, so a large eta * lambda cannot overflow.
            log_alpha = alpha.log() + eta * excess_loss.double().cpu()
            alpha = torch.softmax(log_alpha, dim=0)
            alpha = (1.0 - smoothing) * alpha + smoothing / n_domains
            alpha_sum += alpha

        domain_loss, _ = domain_means(proxy_losses.mean(dim=1), batch.domains, n_domains)
        loss = (alpha.to(domain_loss.device, domain_loss.dtype) * domain_loss).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        progress.step(step, loss.item())

    weights = np.zeros(len(domain_ids))
    weights[active] = (alpha_sum / config.steps).numpy()
    return weights / weights.sum()


def doremi(
    stats: DomainStats,
    budget: int,
    max_epochs: float = 4.0,
    min_weight: float = 0.0,
    *,
    token_streams: Mapping[int, np.ndarray],
    proxy: ProxyConfig,
    eta: float = 1.0,
    smoothing: float = 1e-3,
) -> MixtureWeights:
    """Run ``doremi_weights`` and apply the epoch cap and minimum weight.

    ``token_streams`` maps each cluster id with tokens to its token ids, and ``proxy`` sets
    the proxy model. The other parameters are those of ``uniform`` and ``doremi_weights``.
    """
    stats = _require_stats(stats)
    preference = doremi_weights(stats, token_streams, proxy, eta=eta, smoothing=smoothing)
    return _finish(
        "doremi",
        stats,
        preference,
        budget,
        max_epochs,
        min_weight,
        {
            "eta": float(eta),
            "smoothing": float(smoothing),
            "proxy": asdict(proxy),
            "uncapped_weights": preference.tolist(),
        },
    )
