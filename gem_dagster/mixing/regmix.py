"""RegMix: mixture weights from a regression over proxy runs (Liu et al. 2024).

1. Sample candidate mixtures from Dirichlet distributions centred on the token prior.
2. Train one small proxy per mixture and score it on a target validation set.
3. Fit a LightGBM regressor from mixture to target loss.
4. Predict the loss of many simulated mixtures and average the ``top_k`` best.

The regression is the cheap part. Step 2 trains ``n_mixtures`` proxies, so its cost grows
linearly with that parameter.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import lightgbm
import numpy as np
from scipy.stats import spearmanr

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

__all__ = [
    "DIRICHLET_SCALES",
    "RegMixResult",
    "RegressionFit",
    "fit_regression",
    "predict_optimum",
    "regmix",
    "regmix_weights",
    "sample_mixtures",
]

logger = logging.getLogger(__name__)

# Total Dirichlet concentration of each sample, drawn uniformly from these 15 values. Small
# totals give mixtures dominated by one or two domains, large totals stay near the centre.
DIRICHLET_SCALES = np.logspace(np.log10(0.1), np.log10(5.0), 15)


def _draw_candidates(centre: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``count`` mixtures, each from Dirichlet(scale * centre) with a random scale."""
    scale_index = rng.integers(0, DIRICHLET_SCALES.size, size=count)
    candidates = np.empty((count, centre.size))
    for index in np.unique(scale_index):
        rows = scale_index == index
        candidates[rows] = rng.dirichlet(DIRICHLET_SCALES[index] * centre, size=int(rows.sum()))
    return candidates


def sample_mixtures(
    prior,
    n: int,
    rng: np.random.Generator,
    max_epochs: float = 15.0,
    tokens=None,
    budget: int | None = None,
    min_weight: float = 2e-4,
) -> np.ndarray:
    """Sample ``n`` mixtures from Dirichlet distributions centred on ``prior ** 0.5``.

    Parameters
    ----------
    prior : array_like, shape (K,)
        Token share of each domain. Domains with prior 0 always get weight 0.
    n : int
        Number of mixtures.
    rng : numpy.random.Generator
        Source of randomness.
    max_epochs : float, default 15.0
        Mixtures that would read more than ``max_epochs`` epochs of some domain within
        ``budget`` are rejected. Only checked when ``tokens`` and ``budget`` are given.
    tokens : array_like, shape (K,), optional
        Tokens per domain.
    budget : int, optional
        Training budget in tokens of the model the mixture is for.
    min_weight : float, default 2e-4
        Weights below this are set to 0 and the mixture is renormalised.

    Returns
    -------
    numpy.ndarray of float64, shape (n, K)
        Rows sum to 1.

    Raises
    ------
    ValueError
        If the prior is invalid, or if fewer than ``n`` of ``1000 * n`` draws meet the
        epoch cap (the budget is then too large for the corpus).
    """
    prior = np.asarray(prior, dtype=np.float64)
    if prior.ndim != 1 or not np.all(np.isfinite(prior)) or np.any(prior < 0) or prior.sum() <= 0:
        raise ValueError(f"prior must be a 1-D array of non-negative shares, got {prior}")
    check_cap = tokens is not None and budget is not None
    if check_cap:
        cap = max_epochs * np.asarray(tokens, dtype=np.float64) / budget

    active = prior > 0
    centre = np.sqrt(prior[active])
    centre /= centre.sum()

    accepted: list[np.ndarray] = []
    accepted_count = 0
    drawn = 0
    while accepted_count < n:
        if drawn >= 1000 * n:
            raise ValueError(
                f"only {accepted_count} of {drawn} sampled mixtures stay within {max_epochs} "
                f"epochs of every domain for budget {budget}. Lower the budget or raise "
                f"max_epochs"
            )
        count = max(n - accepted_count, 64)
        drawn += count
        candidates = np.zeros((count, prior.size))
        candidates[:, active] = _draw_candidates(centre, count, rng)
        candidates[candidates < min_weight] = 0.0
        totals = candidates.sum(axis=1, keepdims=True)

        # A very small scale can put the whole mass on weights that all fall under
        # min_weight, which leaves no mixture, so those rows are dropped.
        keep = totals[:, 0] > 0
        candidates = candidates[keep] / totals[keep]
        if check_cap:
            candidates = candidates[np.all(candidates <= cap * (1 + 1e-12), axis=1)]
        accepted.append(candidates)
        accepted_count += candidates.shape[0]
    return np.concatenate(accepted)[:n]


@dataclass(frozen=True)
class RegressionFit:
    """LightGBM regressor from mixture weights to target loss, with its held-out quality.

    Attributes
    ----------
    model : lightgbm.Booster
        The regressor. ``predict`` uses its iteration with the lowest held-out loss.
    spearman : float
        Spearman rank correlation between predicted and observed losses on the held-out
        mixtures. The same mixtures decide early stopping, so the value is slightly
        optimistic.
    n_train, n_validation : int
        Mixtures used to fit and to evaluate.
    """

    model: lightgbm.Booster
    spearman: float
    n_train: int
    n_validation: int

    def predict(self, mixtures) -> np.ndarray:
        """Predict the target loss of each row of ``mixtures``."""
        return self.model.predict(
            np.asarray(mixtures, dtype=np.float64), num_iteration=self.model.best_iteration
        )


def fit_regression(
    mixtures,
    losses,
    validation_fraction: float = 0.2,
    seed: int = 0,
    num_iterations: int = 1000,
    learning_rate: float = 0.01,
    early_stopping_rounds: int = 50,
) -> RegressionFit:
    """Fit LightGBM (gbdt, L2 regression) from mixtures to losses with early stopping.

    A random ``validation_fraction`` of the rows, at least 2, is held out for early
    stopping and the Spearman correlation. Training is single-threaded and deterministic
    for a given ``seed``.
    """
    features = np.asarray(mixtures, dtype=np.float64)
    targets = np.asarray(losses, dtype=np.float64)
    if features.ndim != 2 or targets.shape != (features.shape[0],):
        raise ValueError(
            f"mixtures must be (n, K) and losses (n,), got shapes {features.shape} and "
            f"{targets.shape}"
        )
    n_validation = max(2, round(validation_fraction * features.shape[0]))
    if features.shape[0] - n_validation < 2:
        raise ValueError(
            f"need at least {n_validation + 2} mixtures to fit and hold out {n_validation}, "
            f"got {features.shape[0]}"
        )

    order = np.random.default_rng(seed).permutation(features.shape[0])
    validation_rows, train_rows = order[:n_validation], order[n_validation:]
    params = {
        "objective": "regression",
        "boosting": "gbdt",
        "learning_rate": learning_rate,
        "num_iterations": num_iterations,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": 1,
        "verbose": -1,
        # LightGBM's default leaf size of 20 rows cannot split fewer than 40 training rows,
        # which would make the model a constant, so small probes get smaller leaves.
        "min_data_in_leaf": min(20, max(1, train_rows.size // 4)),
    }
    train_set = lightgbm.Dataset(features[train_rows], targets[train_rows])
    validation_set = lightgbm.Dataset(
        features[validation_rows], targets[validation_rows], reference=train_set
    )
    model = lightgbm.train(
        params,
        train_set,
        valid_sets=[validation_set],
        callbacks=[lightgbm.early_stopping(early_stopping_rounds, verbose=False)],
    )

    predicted = model.predict(features[validation_rows], num_iteration=model.best_iteration)
    observed = targets[validation_rows]
    if np.ptp(predicted) == 0 or np.ptp(observed) == 0:
        # Spearman is undefined when either side is constant.
        logger.warning(
            "regmix regression: held-out %s constant over %d mixtures, so the Spearman "
            "correlation is NaN. Train more mixtures",
            "predictions are" if np.ptp(predicted) == 0 else "losses are",
            n_validation,
        )
        spearman = float("nan")
    else:
        spearman = float(spearmanr(predicted, observed).statistic)
    return RegressionFit(model, spearman, int(train_rows.size), int(n_validation))


def predict_optimum(
    model: RegressionFit,
    prior,
    n_simulated: int = 100_000,
    top_k: int = 128,
    rng: np.random.Generator | None = None,
    **sample_params,
) -> np.ndarray:
    """Average the ``top_k`` simulated mixtures with the lowest predicted loss.

    Simulated mixtures come from ``sample_mixtures(prior, n_simulated, rng,
    **sample_params)``, so they obey the same epoch cap as the training mixtures when
    ``tokens`` and ``budget`` are passed.
    """
    if not 0 < top_k <= n_simulated:
        raise ValueError(f"top_k must be in [1, n_simulated={n_simulated}], got {top_k}")
    rng = rng if rng is not None else np.random.default_rng(0)
    simulated = sample_mixtures(prior, n_simulated, rng, **sample_params)
    predicted = model.predict(simulated)
    best = np.argpartition(predicted, top_k - 1)[:top_k]
    weights = simulated[best].mean(axis=0)
    return weights / weights.sum()


@dataclass(frozen=True)
class RegMixResult:
    """Outcome of ``regmix_weights``: the weights and the proxy runs behind them.

    Attributes
    ----------
    weights : numpy.ndarray of float64, shape (K,)
        Predicted optimal mixture, before any epoch cap of the final model.
    mixtures : numpy.ndarray of float64, shape (n_mixtures, K)
        Mixture of each proxy run.
    losses : numpy.ndarray of float64, shape (n_mixtures,)
        Target validation loss of each proxy run, in nats per token.
    fit : RegressionFit
        The regressor and its held-out Spearman correlation.
    """

    weights: np.ndarray
    mixtures: np.ndarray
    losses: np.ndarray
    fit: RegressionFit


def regmix_weights(
    stats_or_domain_ids: DomainStats | Sequence[int],
    token_streams: Mapping[int, np.ndarray],
    target_streams: Mapping[int, np.ndarray],
    config: ProxyConfig,
    n_mixtures: int = 64,
    budget: int | None = None,
    sample_max_epochs: float = 15.0,
    n_simulated: int = 100_000,
    top_k: int = 128,
    seed: int = 0,
) -> RegMixResult:
    """Train one proxy per sampled mixture and regress the target loss on the mixture.

    Parameters
    ----------
    stats_or_domain_ids : DomainStats or sequence of int
        Domain order and token prior, as for ``doremi.domains_and_prior``.
    token_streams : mapping of int to numpy.ndarray
        Training tokens of each domain with tokens.
    target_streams : mapping to numpy.ndarray
        Validation tokens whose mean loss the mixture should minimise. They may be
        held-out parts of the domains or a separate target corpus.
    config : ProxyConfig
        Settings of every proxy. All proxies share ``config.seed``, so their runs differ
        only in the mixture.
    n_mixtures : int, default 64
        Number of proxies to train.
    budget : int, optional
        Training budget of the final model. With ``DomainStats`` it rejects mixtures that
        would read more than ``sample_max_epochs`` epochs of a domain.
    sample_max_epochs : float, default 15.0
        Epoch limit of the sampled mixtures.
    n_simulated, top_k : int
        As for ``predict_optimum``.
    seed : int
        Seed of the mixture sampling and of the regression split.
    """
    domain_ids, prior, active = domains_and_prior(stats_or_domain_ids, token_streams)
    trained_ids = [d for d, has in zip(domain_ids, active) if has]
    streams = {domain: np.asarray(token_streams[domain]) for domain in trained_ids}
    validate_streams(streams, config)
    validate_streams(target_streams, config)

    sample_params = {"max_epochs": sample_max_epochs}
    if isinstance(stats_or_domain_ids, DomainStats) and budget is not None:
        sample_params.update(tokens=stats_or_domain_ids.tokens, budget=budget)

    rng = np.random.default_rng(seed)
    mixtures = sample_mixtures(prior, n_mixtures, rng, **sample_params)
    losses = np.empty(n_mixtures)
    for index, mixture in enumerate(mixtures):
        model = train_proxy(
            config, mixture[active], streams, label=f"regmix proxy {index + 1}/{n_mixtures}"
        )
        losses[index] = evaluate_loss(model, target_streams)
        logger.info(
            "regmix proxy %d/%d: target loss %.4f", index + 1, n_mixtures, losses[index]
        )

    fit = fit_regression(mixtures, losses, seed=seed)
    logger.info(
        "regmix regression: held-out Spearman %.3f on %d mixtures", fit.spearman, fit.n_validation
    )
    weights = predict_optimum(fit, prior, n_simulated, top_k, rng, **sample_params)
    return RegMixResult(weights=weights, mixtures=mixtures, losses=losses, fit=fit)


def regmix(
    stats: DomainStats,
    budget: int,
    max_epochs: float = 4.0,
    min_weight: float = 0.0,
    *,
    token_streams: Mapping[int, np.ndarray],
    proxy: ProxyConfig,
    target_streams: Mapping[int, np.ndarray] | None = None,
    n_mixtures: int = 64,
    sample_max_epochs: float = 15.0,
    n_simulated: int = 100_000,
    top_k: int = 128,
    seed: int = 0,
) -> MixtureWeights:
    """Run ``regmix_weights`` and apply the epoch cap and minimum weight.

    Without ``target_streams`` the target is the last 10% of each domain's stream, and the
    proxies train on the first 90%. The other parameters are those of ``uniform`` and
    ``regmix_weights``. ``params`` records the held-out Spearman correlation.
    """
    stats = _require_stats(stats)
    if target_streams is None:
        token_streams, target_streams = split_streams(token_streams)
    result = regmix_weights(
        stats,
        token_streams,
        target_streams,
        proxy,
        n_mixtures=n_mixtures,
        budget=budget,
        sample_max_epochs=sample_max_epochs,
        n_simulated=n_simulated,
        top_k=top_k,
        seed=seed,
    )
    return _finish(
        "regmix",
        stats,
        result.weights,
        budget,
        max_epochs,
        min_weight,
        {
            "n_mixtures": int(n_mixtures),
            "sample_max_epochs": float(sample_max_epochs),
            "n_simulated": int(n_simulated),
            "top_k": int(top_k),
            "seed": int(seed),
            "spearman": result.fit.spearman,
            "proxy": asdict(proxy),
            "uncapped_weights": result.weights.tolist(),
        },
    )
