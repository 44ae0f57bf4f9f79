"""Proxy model presets for the CPU and for one GPU, and their resolution against settings.

The "cpu" preset trains each proxy in seconds on two cores, so DoReMi (two proxies), PerfRe
(one per domain plus one) and RegMix (one per sampled mixture) finish in minutes on the
bundled sample. The "gpu" preset is sized after the small proxies of the RegMix paper (about
a million non-embedding parameters, a few thousand steps).

NOTE: the "gpu" preset has not been run: no accelerator was available while it was written.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gem_dagster.mixing.proxy import ProxyConfig


@dataclass(frozen=True)
class ProxyPlan:
    """Everything the proxy strategies need besides the token streams."""

    d_model: int
    layers: int
    heads: int
    seq_len: int
    batch_size: int
    steps: int
    learning_rate: float
    vocabulary: int
    tokens_per_domain: int
    regmix_mixtures: int

    def proxy_config(self, vocab_size: int, device: str, seed: int) -> ProxyConfig:
        """Build the ProxyConfig of one proxy run over a vocabulary of ``vocab_size`` ids."""
        return ProxyConfig(
            vocab_size=vocab_size,
            d_model=self.d_model,
            n_layers=self.layers,
            n_heads=self.heads,
            seq_len=self.seq_len,
            batch_size=self.batch_size,
            steps=self.steps,
            learning_rate=self.learning_rate,
            seed=seed,
            device=device,
            log_every=max(1, self.steps // 4),
        )


PRESETS: dict[str, ProxyPlan] = {
    "cpu": ProxyPlan(
        d_model=64,
        layers=2,
        heads=4,
        seq_len=64,
        batch_size=16,
        steps=120,
        learning_rate=3e-3,
        vocabulary=2048,
        tokens_per_domain=50_000,
        regmix_mixtures=32,
    ),
    "gpu": ProxyPlan(
        d_model=256,
        layers=4,
        heads=8,
        seq_len=512,
        batch_size=64,
        steps=2000,
        learning_rate=1e-3,
        vocabulary=30_522,
        tokens_per_domain=5_000_000,
        regmix_mixtures=128,
    ),
}

# Settings fields that override a preset field of the same meaning.
_OVERRIDES = {
    "proxy_d_model": "d_model",
    "proxy_layers": "layers",
    "proxy_heads": "heads",
    "proxy_seq_len": "seq_len",
    "proxy_batch_size": "batch_size",
    "proxy_steps": "steps",
    "proxy_learning_rate": "learning_rate",
    "proxy_vocabulary": "vocabulary",
    "proxy_tokens_per_domain": "tokens_per_domain",
    "regmix_mixtures": "regmix_mixtures",
}


def resolve_plan(settings) -> ProxyPlan:
    """Return the preset named by ``settings.proxy_preset`` with every set ``proxy_*`` field applied."""
    if settings.proxy_preset not in PRESETS:
        raise ValueError(
            f"unknown proxy preset {settings.proxy_preset!r}: use one of {sorted(PRESETS)}"
        )
    changes = {
        field: getattr(settings, name)
        for name, field in _OVERRIDES.items()
        if getattr(settings, name) is not None
    }
    plan = replace(PRESETS[settings.proxy_preset], **changes)
    if plan.d_model % plan.heads:
        raise ValueError(
            f"the proxy width GEM_PROXY_D_MODEL={plan.d_model} is not divisible by "
            f"GEM_PROXY_HEADS={plan.heads}: choose a width that is a multiple of the heads"
        )
    return plan
