"""The GEM objective F, evaluated from sufficient statistics of the responsibilities.

    F(Theta, Gamma) = (1/N) sum_i [ sum_k gamma_ik L_ik + H(gamma_i) ] - (lambda/2) ||pi - u||^2

with logits ``L_ik = b_k + kappa_k mu_k . x_i`` (``b_k = -log K + log C_d(kappa_k)`` in GEM),
cluster mass ``pi = mean_i gamma_i`` and uniform target ``u = 1/K``. Because the logits are
linear in x, the first term needs only the mass, the resultants ``r_k = sum_i gamma_ik x_i`` and
the mean entropy, so F after an M-step costs no pass over the data.
"""

from __future__ import annotations

import torch

from .responsibilities import ResponsibilityStatistics


def balance_penalty(mass: torch.Tensor, balance: float) -> float:
    """Return ``(lambda/2) ||pi - u||^2`` for cluster mass ``pi`` and balance ``lambda``."""
    if balance == 0.0:
        return 0.0
    uniform = 1.0 / mass.shape[0]
    return 0.5 * balance * float(((mass - uniform) ** 2).sum())


def objective_value(
    statistics: ResponsibilityStatistics,
    directions: torch.Tensor,
    concentrations: torch.Tensor,
    bias: torch.Tensor,
    balance: float,
) -> float:
    """Evaluate F for the parameters (mu, kappa, b) and the responsibilities behind ``statistics``.

    Components with zero mass contribute nothing, even when their bias is ``-inf`` (a learned
    prior weight of 0 in vanilla vMF EM).
    """
    n_samples = statistics.labels.shape[0]
    mass = statistics.mass
    occupied = mass > 0

    projected = (directions.to(torch.float64) * statistics.resultants).sum(dim=1)
    per_component = mass * bias + concentrations * projected / n_samples
    expected_logit = float(per_component[occupied].sum())

    return expected_logit + statistics.mean_entropy - balance_penalty(mass, balance)
