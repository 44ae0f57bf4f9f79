"""Mixture weights over corpus domains (no Dagster imports).

Uniform, natural, temperature and UniMax need only the token counts. DoReMi, RegMix and
performance-based reweighting (modules ``doremi``, ``regmix`` and ``perfre``) train small
proxy language models from ``proxy``. ``compute_weights`` reaches all of them and imports
torch and LightGBM only when a proxy model strategy is requested.
"""

from gem_dagster.mixing.caps import apply_epoch_cap, check_budget, epochs_per_domain
from gem_dagster.mixing.export import plan_selection
from gem_dagster.mixing.stats import DomainStats
from gem_dagster.mixing.strategies import (
    PROXY_MODEL_STRATEGIES,
    STRATEGIES,
    MixtureWeights,
    compute_weights,
    natural,
    temperature,
    uniform,
    unimax,
)

__all__ = [
    "PROXY_MODEL_STRATEGIES",
    "STRATEGIES",
    "DomainStats",
    "MixtureWeights",
    "apply_epoch_cap",
    "check_budget",
    "compute_weights",
    "epochs_per_domain",
    "natural",
    "plan_selection",
    "temperature",
    "uniform",
    "unimax",
]
