"""Small decoder-only transformer language models that the proxy mixing strategies train.

DoReMi, RegMix and PerfRe compare mixtures by training tiny language models on them. The
model here is a GPT-style stack: token embedding plus learned positions, pre-norm blocks
with causal self-attention and an MLP, and an output head tied to the token embedding.

Domains are given as ``token_streams``: a mapping from cluster id to a 1-D integer array of
token ids, for example the concatenated tokenised documents of that cluster. The order of
the mapping's keys is the domain order of every weight vector in this package. Training
rows are contiguous windows of ``seq_len + 1`` tokens cut at random offsets.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Batch",
    "ProxyConfig",
    "ProxyLM",
    "build_proxy",
    "domain_losses",
    "evaluate_loss",
    "mixture_vector",
    "per_domain_batches",
    "per_token_losses",
    "sample_batch",
    "split_streams",
    "train_proxy",
    "validate_streams",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProxyConfig:
    """Size and training schedule of one proxy language model.

    Attributes
    ----------
    vocab_size : int
        Number of token ids. Every token in the streams must be below it.
    d_model : int
        Width of the residual stream. Must be divisible by ``n_heads``.
    n_layers, n_heads : int
        Number of transformer blocks and attention heads per block.
    seq_len : int
        Tokens per training row, and the number of learned positions.
    batch_size : int
        Rows per optimiser step.
    steps : int
        Optimiser steps.
    learning_rate : float
        Peak AdamW learning rate, reached after a linear warm-up over the first tenth of the
        steps (at most 100 steps) and held constant afterwards.
    seed : int
        Seed of the parameter initialisation and of the window sampling.
    device : str
        Torch device, for example ``"cpu"`` or ``"cuda"``.

        NOTE: only ``"cpu"`` has been run. Other devices should work because every
        tensor is created on or moved to ``device``.
    log_every : int
        Steps between progress lines in the log. 0 turns progress logging off.
    """

    vocab_size: int
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    seq_len: int = 64
    batch_size: int = 16
    steps: int = 200
    learning_rate: float = 3e-3
    seed: int = 0
    device: str = "cpu"
    log_every: int = 50

    def __post_init__(self) -> None:
        positive = {
            "vocab_size": self.vocab_size,
            "d_model": self.d_model,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "seq_len": self.seq_len,
            "batch_size": self.batch_size,
            "steps": self.steps,
        }
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"ProxyConfig.{name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"ProxyConfig.d_model ({self.d_model}) must be divisible by n_heads "
                f"({self.n_heads})"
            )
        if not math.isfinite(self.learning_rate) or self.learning_rate <= 0:
            raise ValueError(
                f"ProxyConfig.learning_rate must be a positive number, got {self.learning_rate}"
            )
        if self.log_every < 0:
            raise ValueError(f"ProxyConfig.log_every must be >= 0, got {self.log_every}")


class _CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        batch, length, width = hidden.shape
        query, key, value = self.qkv(hidden).split(width, dim=-1)

        # (B, T, D) -> (B, heads, T, D / heads), the layout that SDPA expects.
        def heads(tensor: torch.Tensor) -> torch.Tensor:
            return tensor.view(batch, length, self.n_heads, -1).transpose(1, 2)

        attended = F.scaled_dot_product_attention(
            heads(query), heads(key), heads(value), is_causal=True
        )
        return self.out(attended.transpose(1, 2).reshape(batch, length, width))


class _Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(d_model)
        self.attention = _CausalSelfAttention(d_model, n_heads)
        self.mlp_norm = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model)
        )

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = hidden + self.attention(self.attention_norm(hidden))
        return hidden + self.mlp(self.mlp_norm(hidden))


class ProxyLM(nn.Module):
    """Decoder-only transformer whose output head shares the token embedding matrix."""

    def __init__(self, config: ProxyConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.position_embedding = nn.Embedding(config.seq_len, config.d_model)
        self.blocks = nn.ModuleList(
            _Block(config.d_model, config.n_heads) for _ in range(config.n_layers)
        )
        self.final_norm = nn.LayerNorm(config.d_model)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Map token ids of shape (B, T) with T <= seq_len to next-token logits (B, T, V)."""
        length = tokens.shape[1]
        if length > self.config.seq_len:
            raise ValueError(
                f"input has {length} positions but the model has only {self.config.seq_len}"
            )
        positions = torch.arange(length, device=tokens.device)
        hidden = self.token_embedding(tokens) + self.position_embedding(positions)
        for block in self.blocks:
            hidden = block(hidden)
        return self.final_norm(hidden) @ self.token_embedding.weight.T


@dataclass(frozen=True)
class Batch:
    """Training rows and the domain each row was cut from.

    Attributes
    ----------
    inputs, targets : torch.Tensor of int64, shape (B, seq_len)
        Window tokens ``[0, seq_len)`` and ``[1, seq_len]``.
    domains : torch.Tensor of int64, shape (B,)
        Position of each row's domain in the ``token_streams`` key order.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    domains: torch.Tensor


def validate_streams(token_streams: Mapping[int, np.ndarray], config: ProxyConfig) -> list[int]:
    """Check that every stream is a 1-D id array long enough for one window.

    Returns
    -------
    list of int
        The domain ids in key order.

    Raises
    ------
    ValueError
        If the mapping is empty, or a stream is not 1-D integer, is shorter than
        ``seq_len + 1`` tokens or contains an id outside ``[0, vocab_size)``.
    """
    if not isinstance(token_streams, Mapping) or not token_streams:
        raise ValueError("token_streams must be a non-empty mapping from domain id to token ids")

    for domain, stream in token_streams.items():
        array = np.asarray(stream)
        if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(
                f"token stream of domain {domain} must be a 1-D integer array, got shape "
                f"{array.shape} and dtype {array.dtype}"
            )
        if array.size < config.seq_len + 1:
            raise ValueError(
                f"token stream of domain {domain} has {array.size} tokens, fewer than one "
                f"window of seq_len + 1 = {config.seq_len + 1}"
            )
        low, high = int(array.min()), int(array.max())
        if low < 0 or high >= config.vocab_size:
            raise ValueError(
                f"token stream of domain {domain} contains ids in [{low}, {high}], outside "
                f"[0, {config.vocab_size}). Raise vocab_size or fix the tokenizer output"
            )
    return list(token_streams)


def split_streams(
    token_streams: Mapping[int, np.ndarray], validation_fraction: float = 0.1
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Cut each stream into a training head and a validation tail.

    The tail contains ``ceil(validation_fraction * len)`` tokens of each stream. Cutting by
    position keeps the two parts disjoint, so no proxy trains on its validation windows.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    training, validation = {}, {}
    for domain, stream in token_streams.items():
        array = np.asarray(stream)
        cut = array.size - math.ceil(validation_fraction * array.size)
        training[domain] = array[:cut]
        validation[domain] = array[cut:]
    return training, validation


def mixture_vector(mixture, domain_ids: Sequence[int]) -> np.ndarray:
    """Convert mixture weights to a probability vector in ``domain_ids`` order.

    ``mixture`` is either a mapping from domain id to weight, with missing domains at 0, or
    an array with one weight per domain in ``domain_ids`` order. Weights are renormalised.
    """
    if isinstance(mixture, Mapping):
        unknown = sorted(set(mixture) - set(domain_ids))
        if unknown:
            raise ValueError(f"mixture has weights for domains {unknown} without token streams")
        vector = np.array([float(mixture.get(domain, 0.0)) for domain in domain_ids])
    else:
        vector = np.asarray(mixture, dtype=np.float64)
        if vector.shape != (len(domain_ids),):
            raise ValueError(
                f"mixture must have one weight per domain ({len(domain_ids)}), got shape "
                f"{vector.shape}"
            )
    if not np.all(np.isfinite(vector)) or np.any(vector < 0) or vector.sum() <= 0:
        raise ValueError(f"mixture weights must be finite, non-negative and not all 0, got {vector}")
    return vector / vector.sum()


def per_domain_batches(
    token_streams: Mapping[int, np.ndarray],
    rows_per_domain: Mapping[int, int],
    seq_len: int,
    rng: np.random.Generator,
) -> dict[int, np.ndarray]:
    """Cut random contiguous windows of ``seq_len + 1`` tokens from each domain's stream.

    Returns
    -------
    dict of int to numpy.ndarray of int64, shape (rows, seq_len + 1)
        Windows per domain, for the domains of ``rows_per_domain`` with at least one row.
    """
    windows = {}
    offsets = np.arange(seq_len + 1)
    for domain, rows in rows_per_domain.items():
        if rows <= 0:
            continue
        stream = np.asarray(token_streams[domain])
        starts = rng.integers(0, stream.size - seq_len, size=rows)
        windows[domain] = stream[starts[:, None] + offsets].astype(np.int64)
    return windows


def sample_batch(
    token_streams: Mapping[int, np.ndarray],
    row_domains: np.ndarray,
    seq_len: int,
    rng: np.random.Generator,
    device: str = "cpu",
) -> Batch:
    """Build a batch whose row i comes from domain position ``row_domains[i]``."""
    domain_ids = list(token_streams)
    row_domains = np.asarray(row_domains, dtype=np.int64)
    counts = np.bincount(row_domains, minlength=len(domain_ids))
    windows = per_domain_batches(
        token_streams,
        {domain_ids[position]: int(count) for position, count in enumerate(counts)},
        seq_len,
        rng,
    )

    # Put each domain's windows back at the rows assigned to that domain.
    rows = np.empty((row_domains.size, seq_len + 1), dtype=np.int64)
    for position, domain in enumerate(domain_ids):
        if counts[position]:
            rows[row_domains == position] = windows[domain]

    tensor = torch.from_numpy(rows).to(device)
    return Batch(
        inputs=tensor[:, :-1],
        targets=tensor[:, 1:],
        domains=torch.from_numpy(row_domains).to(device),
    )


def per_token_losses(model: ProxyLM, batch: Batch) -> torch.Tensor:
    """Compute the next-token cross-entropy of every position, shape (B, seq_len), in nats."""
    logits = model(batch.inputs)
    losses = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), batch.targets.reshape(-1), reduction="none"
    )
    return losses.view_as(batch.targets)


def domain_means(
    row_values: torch.Tensor, row_domains: torch.Tensor, n_domains: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Average per-row means over the rows of each domain.

    Every row has the same number of tokens, so the mean of row means is the mean over that
    domain's tokens. Returns the means (0 where a domain has no rows) and the row counts.
    """
    sums = torch.zeros(n_domains, dtype=row_values.dtype, device=row_values.device)
    sums = sums.index_add(0, row_domains, row_values)
    counts = torch.bincount(row_domains, minlength=n_domains).to(row_values.dtype)
    return sums / counts.clamp(min=1), counts


def build_proxy(config: ProxyConfig) -> ProxyLM:
    """Create a proxy whose initial parameters depend only on ``config.seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = ProxyLM(config)
    return model.to(config.device)


def make_optimizer(
    model: ProxyLM, config: ProxyConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """Create AdamW with a linear warm-up to ``config.learning_rate``."""
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, betas=(0.9, 0.95), weight_decay=0.1
    )
    warmup = max(1, min(100, config.steps // 10))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup)
    )
    return optimizer, scheduler


class ProgressLog:
    """Log loss and steps per second every ``config.log_every`` steps of a training run."""

    def __init__(self, label: str, config: ProxyConfig) -> None:
        self.label = label
        self.config = config
        self.start = time.perf_counter()

    def step(self, step: int, loss: float) -> None:
        every = self.config.log_every
        if not every or (step + 1) % every and step + 1 != self.config.steps:
            return
        elapsed = time.perf_counter() - self.start
        logger.info(
            "%s: step %d/%d, loss %.4f, %.1f steps/s",
            self.label,
            step + 1,
            self.config.steps,
            loss,
            (step + 1) / max(elapsed, 1e-9),
        )


def draw_row_domains(
    probabilities: np.ndarray, batch_size: int, rng: np.random.Generator
) -> np.ndarray:
    """Draw the domain position of each row from ``probabilities``.

    Inverse-CDF sampling from one uniform draw per row means that two runs with the same
    seed and nearby mixtures pick the same domains for most rows, which lowers the noise
    when their losses are compared.
    """
    cumulative = np.cumsum(probabilities)
    cumulative[-1] = 1.0
    return np.searchsorted(cumulative, rng.random(batch_size), side="right")


def train_proxy(
    config: ProxyConfig,
    mixture,
    token_streams: Mapping[int, np.ndarray],
    label: str = "proxy",
) -> ProxyLM:
    """Train a proxy on rows whose domains are drawn from a mixture.

    Parameters
    ----------
    config : ProxyConfig
        Model size and schedule.
    mixture : mapping, array_like or callable
        Domain weights as for ``mixture_vector``, or a function
        ``(step, rng) -> positions`` that returns the domain position of each of the
        ``config.batch_size`` rows of that step.
    token_streams : mapping of int to numpy.ndarray
        Training tokens per domain.
    label : str
        Name of the run in progress log lines.

    Returns
    -------
    ProxyLM
        The trained model, in eval mode.
    """
    domain_ids = validate_streams(token_streams, config)
    if callable(mixture):
        sample_domains: Callable[[int, np.random.Generator], np.ndarray] = mixture
    else:
        probabilities = mixture_vector(mixture, domain_ids)

        def sample_domains(step: int, rng: np.random.Generator) -> np.ndarray:
            return draw_row_domains(probabilities, config.batch_size, rng)

    rng = np.random.default_rng(config.seed)
    model = build_proxy(config)
    optimizer, scheduler = make_optimizer(model, config)
    progress = ProgressLog(label, config)
    model.train()
    for step in range(config.steps):
        row_domains = sample_domains(step, rng)
        batch = sample_batch(token_streams, row_domains, config.seq_len, rng, config.device)
        loss = per_token_losses(model, batch).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        progress.step(step, loss.item())
    return model.eval()


def _evaluation_windows(stream: np.ndarray, seq_len: int, max_windows: int) -> np.ndarray:
    """Cut up to ``max_windows`` evenly spaced windows, the same ones on every call."""
    stream = np.asarray(stream)
    last_start = stream.size - (seq_len + 1)
    count = min(max_windows, last_start // seq_len + 1)
    starts = np.linspace(0, last_start, count).round().astype(np.int64)
    return stream[starts[:, None] + np.arange(seq_len + 1)].astype(np.int64)


@torch.no_grad()
def domain_losses(
    model: ProxyLM,
    token_streams: Mapping[int, np.ndarray],
    max_windows: int = 32,
    batch_size: int = 64,
) -> dict[int, float]:
    """Compute the mean next-token cross-entropy (nats) of each stream.

    Each stream contributes up to ``max_windows`` evenly spaced windows of
    ``seq_len + 1`` tokens, so repeated calls score the same tokens.
    """
    config = model.config
    validate_streams(token_streams, config)
    was_training = model.training
    model.eval()
    losses = {}
    for domain, stream in token_streams.items():
        windows = torch.from_numpy(_evaluation_windows(stream, config.seq_len, max_windows))
        windows = windows.to(config.device)
        total = 0.0
        for start in range(0, windows.shape[0], batch_size):
            rows = windows[start : start + batch_size]
            batch = Batch(rows[:, :-1], rows[:, 1:], torch.zeros(rows.shape[0], dtype=torch.int64))
            total += float(per_token_losses(model, batch).sum())
        losses[domain] = total / (windows.shape[0] * config.seq_len)
    model.train(was_training)
    return losses


def evaluate_loss(
    model: ProxyLM,
    token_streams: Mapping[int, np.ndarray],
    weights: Mapping[int, float] | None = None,
    max_windows: int = 32,
) -> float:
    """Compute the mean next-token cross-entropy (nats) on a target set.

    The result is the mean of the per-stream losses of ``domain_losses``, unweighted or
    weighted by ``weights``.
    """
    losses = domain_losses(model, token_streams, max_windows=max_windows)
    domain_ids = list(losses)
    if weights is None:
        vector = np.full(len(domain_ids), 1.0 / len(domain_ids))
    else:
        vector = mixture_vector(weights, domain_ids)
    return float(np.dot(vector, [losses[domain] for domain in domain_ids]))
