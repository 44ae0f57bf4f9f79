"""Compute resource: picks the torch device for the embedder and the clusterer."""

from __future__ import annotations

import logging
import time

import dagster as dg

logger = logging.getLogger(__name__)


class DeviceUnavailableError(RuntimeError):
    """An explicitly requested CUDA device that this machine does not have."""


def resolve_device(requested: str) -> str:
    """Turn ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` into an available torch device string.

    ``auto`` falls back to the CPU with a log line. An explicit CUDA device that is missing
    raises, because a GPU job that silently runs on a CPU can take days.
    """
    import torch

    if requested == "cpu":
        return "cpu"
    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        logger.info("device 'auto': no CUDA device found, using the CPU")
        return "cpu"
    if requested == "cuda" or requested.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"device {requested!r} was requested but torch sees no CUDA device: set "
                "GEM_DEVICE=auto or cpu, or run on a machine with a GPU"
            )
        index = int(requested.split(":", 1)[1]) if ":" in requested else 0
        if index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"device {requested!r} does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s), numbered from 0"
            )
        return requested
    raise ValueError(f"invalid device {requested!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'")


class ComputeResource(dg.ConfigurableResource):
    """The torch device and memory budget for the embedder and the clusterer."""

    device: str = "auto"
    memory_budget_mb: int = 2048

    def torch_device(self) -> str:
        """Return the device to run on, resolving ``auto``."""
        return resolve_device(self.device)

    def fit(self, estimator, vectors, log: logging.Logger | None = None):
        """Fit a clustering estimator on this resource's device and memory budget.

        The estimator must expose ``device`` and ``memory_budget_mb`` parameters, as GEM and
        the baselines do. They are set here so that the resource alone decides where fits run.
        """
        log = log or logger
        device = self.torch_device()
        estimator.device = device
        estimator.memory_budget_mb = self.memory_budget_mb

        started = time.perf_counter()
        log.info(
            f"fitting {type(estimator).__name__} on {len(vectors):,} x {vectors.shape[1]} "
            f"vectors on {device} (memory budget {self.memory_budget_mb} MiB)"
        )
        estimator.fit(vectors)
        log.info(f"fit finished in {time.perf_counter() - started:.1f} s")
        return estimator
