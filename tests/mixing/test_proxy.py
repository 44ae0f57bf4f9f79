"""Proxy language model: causality, batching, training, evaluation and input checks."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from gem_dagster.mixing.proxy import (
    ProxyConfig,
    build_proxy,
    domain_losses,
    draw_row_domains,
    evaluate_loss,
    per_domain_batches,
    sample_batch,
    split_streams,
    train_proxy,
    validate_streams,
)
from tests.mixing.synthetic_domains import (
    VOCAB_SIZE,
    cycle_stream,
    noise_stream,
    one_torch_thread,  # noqa: F401 (fixture)
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(**overrides) -> ProxyConfig:
    settings = dict(
        vocab_size=VOCAB_SIZE, d_model=32, n_layers=1, n_heads=2, seq_len=16, batch_size=8,
        steps=60, log_every=0,
    )
    settings.update(overrides)
    return ProxyConfig(**settings)


def test_attention_is_causal() -> None:
    model = build_proxy(tiny_config(n_layers=2)).eval()
    tokens = torch.randint(0, VOCAB_SIZE, (2, 16), generator=torch.Generator().manual_seed(0))
    changed = tokens.clone()
    changed[:, 10] = (changed[:, 10] + 1) % VOCAB_SIZE

    with torch.no_grad():
        before, after = model(tokens), model(changed)

    assert before.shape == (2, 16, VOCAB_SIZE)
    assert torch.equal(before[:, :10], after[:, :10])
    assert not torch.allclose(before[:, 10:], after[:, 10:])


def test_output_head_tied_to_embedding() -> None:
    model = build_proxy(tiny_config(seq_len=8)).eval()
    tokens = torch.tensor([[1, 2, 3, 4]])

    # With the head tied, the logit of token 5 is a dot product with embedding row 5.
    with torch.no_grad():
        model.token_embedding.weight[5] = 0.0
        logits = model(tokens)

    assert torch.all(logits[..., 5] == 0.0)
    assert torch.all(logits[..., 6] != 0.0)
    matrices = [p for p in model.parameters() if p.shape == (VOCAB_SIZE, 32)]
    assert len(matrices) == 1


def test_windows_are_contiguous() -> None:
    stream = np.arange(1_000, dtype=np.int64)
    windows = per_domain_batches({7: stream, 8: stream}, {7: 5, 8: 0}, 16, np.random.default_rng(0))

    assert set(windows) == {7}
    assert windows[7].shape == (5, 17)
    assert np.all(np.diff(windows[7], axis=1) == 1)
    assert windows[7].min() >= 0
    assert windows[7].max() <= 999


def test_batch_rows_come_from_their_domain() -> None:
    # Domain 3 uses tokens 0-7 and domain 5 tokens 8-15, so a row shows its source.
    rng = np.random.default_rng(1)
    streams = {3: rng.integers(0, 8, 500), 5: rng.integers(8, 16, 500)}
    row_domains = np.array([1, 0, 1, 1, 0, 1])

    batch = sample_batch(streams, row_domains, 16, rng)

    assert batch.inputs.shape == batch.targets.shape == (6, 16)
    assert torch.equal(batch.inputs[:, 1:], batch.targets[:, :-1])
    assert torch.equal(batch.domains, torch.from_numpy(row_domains))
    from_second = batch.inputs.min(dim=1).values >= 8
    assert torch.equal(from_second, torch.from_numpy(row_domains == 1))


def test_row_domains_follow_mixture() -> None:
    rows = draw_row_domains(np.array([0.7, 0.3, 0.0]), 20_000, np.random.default_rng(2))

    counts = np.bincount(rows, minlength=3)
    assert counts[2] == 0
    assert abs(counts[0] / rows.size - 0.7) < 0.02


def test_training_learns_cycle() -> None:
    streams = {0: cycle_stream(4_000), 1: noise_stream(4_000, np.random.default_rng(3))}
    config = tiny_config(steps=80)

    untrained = domain_losses(build_proxy(config), streams)
    model = train_proxy(config, {0: 0.5, 1: 0.5}, streams)
    trained = domain_losses(model, streams)

    assert untrained[0] > 2.5
    assert trained[0] < 0.3
    # Noise cannot be learned, so its loss stays near log(V).
    assert abs(trained[1] - math.log(VOCAB_SIZE)) < 0.15


def test_training_is_deterministic() -> None:
    streams = {0: cycle_stream(1_000), 1: noise_stream(1_000, np.random.default_rng(4))}
    config = tiny_config(steps=5)

    first = train_proxy(config, [0.4, 0.6], streams)
    second = train_proxy(config, [0.4, 0.6], streams)

    for left, right in zip(first.parameters(), second.parameters()):
        assert torch.equal(left, right)


def test_evaluate_loss_weights_domains() -> None:
    streams = {0: cycle_stream(2_000), 1: noise_stream(2_000, np.random.default_rng(5))}
    model = build_proxy(tiny_config())

    losses = domain_losses(model, streams)

    assert evaluate_loss(model, streams) == pytest.approx((losses[0] + losses[1]) / 2)
    weighted = evaluate_loss(model, streams, weights={0: 3.0, 1: 1.0})
    assert weighted == pytest.approx(0.75 * losses[0] + 0.25 * losses[1])


def test_progress_logged(caplog: pytest.LogCaptureFixture) -> None:
    streams = {0: cycle_stream(1_000)}

    with caplog.at_level(logging.INFO, logger="gem_dagster.mixing.proxy"):
        train_proxy(tiny_config(steps=4, log_every=2), [1.0], streams, label="probe")

    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("probe: step 2/4, loss ")
    assert lines[1].endswith("steps/s")


def test_split_streams_disjoint() -> None:
    training, validation = split_streams({0: np.arange(100)}, validation_fraction=0.15)

    assert training[0].size == 85
    assert validation[0].size == 15
    assert validation[0][0] == 85


@pytest.mark.parametrize(
    ("streams", "message"),
    [
        ({0: np.array([0, 1, 16] * 10)}, r"ids in \[0, 16\], outside \[0, 16\)"),
        ({0: np.arange(10)}, r"has 10 tokens, fewer than one window of seq_len \+ 1 = 17"),
        ({0: np.zeros((20, 2), dtype=np.int64)}, r"must be a 1-D integer array"),
        ({}, r"non-empty mapping"),
    ],
)
def test_invalid_streams_rejected(streams, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_streams(streams, tiny_config())


def test_config_checks_heads() -> None:
    with pytest.raises(ValueError, match=r"d_model \(30\) must be divisible by n_heads \(4\)"):
        ProxyConfig(vocab_size=10, d_model=30, n_heads=4)
