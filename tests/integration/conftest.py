"""Fixtures for running assets against a real SQLite-backed Dagster instance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from gem_dagster.resources import ComputeResource, CorpusResource, EmbedderResource, WarehouseResource


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as test_instance:
        yield test_instance


@pytest.fixture
def resources(corpus_root: Path, tmp_path: Path) -> dict[str, dg.ConfigurableResource]:
    return {
        "corpus": CorpusResource(root=str(corpus_root)),
        "warehouse": WarehouseResource(storage_root=str(tmp_path / "store")),
        "embedder": EmbedderResource(),
        "compute": ComputeResource(device="cpu"),
    }
