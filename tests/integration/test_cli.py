"""`gem-dagster run`, the command behind `make run`, and the UI's view of what it made."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from tests.conftest import write_corpus

pytestmark = pytest.mark.slow


def run_cli(arguments: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gem_dagster", *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run `gem-dagster run` once on a small corpus with its own Dagster home."""
    tmp_path = tmp_path_factory.mktemp("cli")
    corpus_root = write_corpus(tmp_path / "corpus")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    environment = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "GEM_CORPUS_ROOT": str(corpus_root),
        "GEM_STORAGE_ROOT": str(tmp_path / "store"),
        "GEM_SEED_SAMPLE_DOCUMENTS": "60",
        "GEM_N_CLUSTERS": "4",
        "GEM_STUDENT_PER_CLUSTER": "8",
        "HF_HUB_OFFLINE": "1",
    }
    completed = run_cli(["run"], environment)
    return {"completed": completed, "home": home, "store": tmp_path / "store", "environment": environment}


def test_run_prints_summary(finished_run: dict) -> None:
    completed = finished_run["completed"]

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "shards under" in completed.stdout
    assert "seed sample: 60 documents" in completed.stdout
    assert "bad.jsonl" in completed.stdout
    assert "corpus docs" in completed.stdout
    assert "unimax" in completed.stdout


def test_run_records_materialisations(finished_run: dict) -> None:
    with dg.DagsterInstance.from_config(str(finished_run["home"])) as instance:
        materialized = {
            key.to_user_string()
            for key in instance.get_asset_keys()
            if instance.get_latest_materialization_event(key) is not None
        }
        partitions = instance.get_dynamic_partitions("shards")

    assert materialized == {
        "documents", "seed_sample", "embeddings", "teacher_clustering", "gis_taxonomy",
        "student_model", "cluster_assignments", "domain_stats", "mixture_weights",
        "training_mix",
    }
    assert sorted(partitions) == ["a.jsonl", "b.jsonl.gz", "bad.jsonl", "c.jsonl.zst", "nested/d.parquet"]


def test_run_fills_duckdb_catalog(finished_run: dict) -> None:
    with duckdb.connect(str(finished_run["store"] / "warehouse.duckdb"), read_only=True) as connection:
        documents = connection.execute("SELECT count(*) FROM documents").fetchone()[0]
        rejected = connection.execute("SELECT count(*) FROM rejected_documents").fetchone()[0]
        assigned = connection.execute("SELECT count(DISTINCT id) FROM cluster_assignments").fetchone()[0]

    assert documents == 30 + 25 + 20 + 15 + 22
    assert rejected == 10
    assert assigned == documents


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_ui_shows_assets_materialised(finished_run: dict) -> None:
    port = free_port()
    log = open(finished_run["home"] / "webserver.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-m", "gem_dagster.definitions",
         "-h", "127.0.0.1", "-p", str(port)],
        env=finished_run["environment"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
                break
            except OSError:
                assert server.poll() is None, (finished_run["home"] / "webserver.log").read_text()
                assert time.monotonic() < deadline, "webserver did not start within 120 s"
                time.sleep(1)

        answer = graphql(
            port,
            "{ assetNodes { assetKey { path } partitionStats { numMaterialized numPartitions } "
            "assetMaterializations(limit: 1) { runId } } }",
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()

    nodes = {node["assetKey"]["path"][0]: node for node in answer["data"]["assetNodes"]}
    for asset in ["documents", "seed_sample", "embeddings", "teacher_clustering", "gis_taxonomy"]:
        assert nodes[asset]["assetMaterializations"], f"{asset} is not materialised in the UI"
    assert nodes["documents"]["partitionStats"] == {"numMaterialized": 5, "numPartitions": 5}


def test_missing_corpus_root_is_a_clear_error(tmp_path: Path) -> None:
    environment = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path),
        "GEM_CORPUS_ROOT": str(tmp_path / "nowhere"),
        "GEM_STORAGE_ROOT": str(tmp_path / "store"),
    }

    completed = run_cli(["register-shards"], environment)

    assert completed.returncode == 2
    assert "nowhere" in completed.stderr
    assert "GEM_CORPUS_ROOT" in completed.stderr


def test_invalid_setting_names_allowed_values(tmp_path: Path) -> None:
    environment = {**os.environ, "DAGSTER_HOME": str(tmp_path), "GEM_DEVICE": "tpu"}

    completed = run_cli(["register-shards"], environment)

    assert completed.returncode == 2
    assert "invalid device 'tpu'" in completed.stderr
    assert "cuda:N" in completed.stderr
