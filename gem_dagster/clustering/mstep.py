"""M-step of a vMF mixture: mean directions and concentrations from resultant vectors.

For fixed responsibilities, F separates over components. Each contributes
``pi_k log C_d(kappa_k) + kappa_k mu_k . r_k / N``, which is maximised by ``mu_k = r_k/||r_k||``
and then by the kappa_k that solves ``A_d(kappa_k) = ||r_k|| / (N pi_k)``. Both are exact
maximisers, so the M-step never lowers F.
"""

from __future__ import annotations

import numpy as np
import torch

from .sphere import bessel_ratio_inverse


def update_mean_directions(resultants: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """Return ``r_k / ||r_k||`` for each component, keeping ``previous[k]`` where ``r_k = 0``.

    A component with a zero resultant contributes nothing to F for any direction, so keeping
    the old one is as good as any and avoids a division by zero.
    """
    lengths = torch.linalg.vector_norm(resultants, dim=1)
    empty = lengths == 0
    directions = resultants / torch.where(empty, 1.0, lengths)[:, None]
    return torch.where(empty[:, None], previous.to(torch.float64), directions)


def projected_lengths(directions: torch.Tensor, resultants: torch.Tensor) -> torch.Tensor:
    """Return ``mu_k . r_k``, the length that the concentration update must use.

    It equals ``||r_k||`` for ``mu_k = r_k / ||r_k||``. For given directions (an initial
    array) the best kappa solves ``A_d(kappa) = mu_k . r_k / sum_i gamma_ik``.
    """
    return (directions.to(torch.float64) * resultants).sum(dim=1)


def solve_concentrations(
    resultant_lengths: torch.Tensor,
    weights: torch.Tensor,
    dim: int,
    bounds: tuple[float, float],
    tied: bool,
    previous: torch.Tensor | None,
) -> torch.Tensor:
    """Solve ``A_d(kappa_k) = Rbar_k`` for each component, clipped to ``bounds``.

    Parameters
    ----------
    resultant_lengths : torch.Tensor of shape (K,), float64
        ``mu_k . r_k``, from ``projected_lengths``.
    weights : torch.Tensor of shape (K,), float64
        ``sum_i gamma_ik``, the soft count of each component.
    dim : int
        Ambient dimension d.
    bounds : tuple of float
        ``(kappa_min, kappa_max)``.
    tied : bool
        One concentration for all components, from the pooled ``Rbar = sum_k mu_k . r_k /
        sum_k weights_k``, which maximises F over a shared kappa.
    previous : torch.Tensor of shape (K,) or None
        Concentrations kept for components of zero weight. Without them (at initialisation)
        such components take the median of the others.

    Returns
    -------
    torch.Tensor of shape (K,), float64, on the device of ``weights``
    """
    lengths = resultant_lengths.detach().cpu().numpy().astype(np.float64)
    counts = weights.detach().cpu().numpy().astype(np.float64)
    lengths = np.maximum(lengths, 0.0)

    if tied:
        pooled = min(lengths.sum() / counts.sum(), 1.0)
        kappa = float(bessel_ratio_inverse(dim, pooled, bounds))
        return torch.full_like(weights, kappa, dtype=torch.float64)

    occupied = counts > 0
    # Rounding of float32 unit rows can push Rbar a hair above 1.
    rbar = np.minimum(lengths[occupied] / counts[occupied], 1.0)
    kappa = np.empty_like(counts)
    kappa[occupied] = bessel_ratio_inverse(dim, rbar, bounds)

    if previous is not None:
        kappa[~occupied] = previous.detach().cpu().numpy()[~occupied]
    elif occupied.any():
        kappa[~occupied] = np.median(kappa[occupied])
    else:
        kappa[:] = bounds[0]
    return torch.as_tensor(kappa, dtype=torch.float64, device=weights.device)
