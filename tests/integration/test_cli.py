"""`gem-dagster run`, the command behind `make run`, against a temporary instance."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

pytestmark = pytest.mark.slow


def run_cli(arguments: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gem_dagster", *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_run_materialises_corpus_assets(corpus_root: Path, tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    environment = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "GEM_CORPUS_ROOT": str(corpus_root),
        "GEM_STORAGE_ROOT": str(tmp_path / "store"),
        "GEM_SEED_SAMPLE_DOCUMENTS": "20",
        "HF_HUB_OFFLINE": "1",
    }

    completed = run_cli(["run"], environment)

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "shards under" in completed.stdout
    assert "seed sample: 20 documents" in completed.stdout
    assert "bad.jsonl" in completed.stdout

    with dg.DagsterInstance.from_config(str(home)) as instance:
        materialized = {
            key.to_user_string()
            for key in instance.get_asset_keys()
            if instance.get_latest_materialization_event(key) is not None
        }
        partitions = instance.get_dynamic_partitions("shards")
    assert {"documents", "seed_sample", "embeddings"} <= materialized
    assert sorted(partitions) == ["a.jsonl", "b.jsonl.gz", "bad.jsonl", "c.jsonl.zst", "nested/d.parquet"]

    with duckdb.connect(str(tmp_path / "store" / "warehouse.duckdb"), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM documents").fetchone()[0] == 30 + 25 + 20 + 15 + 22


def test_missing_corpus_root_is_a_clear_error(tmp_path: Path) -> None:
    environment = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path),
        "GEM_CORPUS_ROOT": str(tmp_path / "nowhere"),
        "GEM_STORAGE_ROOT": str(tmp_path / "store"),
    }

    completed = run_cli(["register-shards"], environment)

    assert completed.returncode != 0
    assert "nowhere" in completed.stderr
    assert "GEM_CORPUS_ROOT" in completed.stderr


def test_invalid_setting_names_allowed_values(tmp_path: Path) -> None:
    environment = {**os.environ, "DAGSTER_HOME": str(tmp_path), "GEM_DEVICE": "tpu"}

    completed = run_cli(["register-shards"], environment)

    assert completed.returncode != 0
    assert "invalid device 'tpu'" in completed.stderr
    assert "cuda:N" in completed.stderr
