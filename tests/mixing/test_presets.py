"""Proxy presets and their overrides from settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gem_dagster.mixing.presets import PRESETS, resolve_plan
from gem_dagster.settings import GemSettings


def test_cpu_preset_is_the_default() -> None:
    assert resolve_plan(GemSettings()) == PRESETS["cpu"]


def test_settings_override_preset_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEM_PROXY_PRESET", "gpu")
    monkeypatch.setenv("GEM_PROXY_STEPS", "17")
    monkeypatch.setenv("GEM_REGMIX_MIXTURES", "9")

    plan = resolve_plan(GemSettings())

    assert plan.steps == 17
    assert plan.regmix_mixtures == 9
    assert plan.d_model == PRESETS["gpu"].d_model
    config = plan.proxy_config(vocab_size=100, device="cuda", seed=3)
    assert (config.vocab_size, config.device, config.seed, config.steps) == (100, "cuda", 3, 17)


def test_gpu_preset_is_larger_than_cpu_preset() -> None:
    cpu, gpu = PRESETS["cpu"], PRESETS["gpu"]
    assert gpu.d_model > cpu.d_model
    assert gpu.seq_len > cpu.seq_len
    assert gpu.steps > cpu.steps


def test_inconsistent_width_and_heads_name_both_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEM_PROXY_D_MODEL", "66")
    monkeypatch.setenv("GEM_PROXY_HEADS", "4")

    with pytest.raises(ValueError, match="GEM_PROXY_D_MODEL=66 .* GEM_PROXY_HEADS=4"):
        resolve_plan(GemSettings())


def test_unknown_preset_lists_the_allowed_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEM_PROXY_PRESET", "tpu")

    with pytest.raises(ValidationError, match="'cpu' or 'gpu'"):
        GemSettings()
