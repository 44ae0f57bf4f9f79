"""The product as a user runs it: `dagster dev` on 127.0.0.1, a backfill launched through the
GraphQL API, and the UI read in headless Chromium.

One module-scoped deployment: the bundled sample is ingested and a small corpus model is built
with the CLI's job runner into a temporary DAGSTER_HOME, then `dagster dev` (webserver and
daemon) serves that instance. The server is started in its own session so that SIGTERM reaches
the webserver, the daemon and the code server, and it is stopped by its PID.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gem_dagster.resources import WarehouseResource
from gem_dagster.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARTEFACTS = Path(os.environ.get("GEM_TEST_ARTEFACTS", PROJECT_ROOT / "test-artefacts")) / "ui"
K = 4

BUILD_CORPUS_MODEL = """
from gem_dagster.cli import _instance, register_shards, run_job
instance = _instance()
keys = register_shards(instance)
assert run_job(instance, "ingest_shards", keys) is not None
assert run_job(instance, "build_corpus_model", [None]) is not None
"""

LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on PartitionSetNotFoundError { message }
  }
}
"""

BACKFILL_STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status }
    ... on PythonError { message }
  }
}
"""

BACKFILL_RUNS = """
query Runs($id: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    ... on Runs { results { runId status tags { key value } } }
  }
}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def graphql(url: str, query: str, variables: dict) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body["errors"]
    return body["data"]


def wait_until(predicate, timeout: float, what: str, interval: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def stop_server(process: subprocess.Popen) -> None:
    # The server leads its own process group; SIGTERM reaches every child, and the group is
    # killed if it has not exited in time.
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("dagster_dev")
    home = root / "home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "config" / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "GEM_STORAGE_ROOT": str(root / "store"),
        "GEM_SEED_SAMPLE_DOCUMENTS": "300",
        "GEM_N_CLUSTERS": str(K),
        "GEM_MAX_ITER": "30",
        "GEM_STUDENT_PER_CLUSTER": "40",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    subprocess.run([sys.executable, "-c", BUILD_CORPUS_MODEL], env=env, check=True, timeout=900, cwd=PROJECT_ROOT)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(root / "dagster_dev.log", "wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        def location_loaded() -> bool:
            try:
                data = graphql(url, "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }", {})
            except (urllib.error.URLError, ConnectionError, AssertionError):
                return False
            return bool(data["repositoriesOrError"].get("nodes"))

        wait_until(location_loaded, 240, f"dagster dev on {url} to load the code location")
        yield {"url": url, "root": root, "log": root / "dagster_dev.log"}
    finally:
        stop_server(process)
        log.close()


def assets_by_group() -> dict[str, list[str]]:
    from gem_dagster.definitions import defs

    groups: dict[str, list[str]] = {}
    for asset in defs.assets:
        groups.setdefault(asset.group_names_by_key[asset.key], []).append(asset.key.to_user_string())
    return groups


def shard_keys() -> list[str]:
    from gem_dagster.corpus import list_shard_keys
    from gem_dagster.settings import BUNDLED_SAMPLE_SHARDS

    return list_shard_keys(BUNDLED_SAMPLE_SHARDS)


def test_graphql_backfill_labels_every_shard(deployment: dict) -> None:
    url, keys = deployment["url"], shard_keys()

    launched = graphql(
        url,
        LAUNCH_BACKFILL,
        {"params": {"assetSelection": [{"path": ["cluster_assignments"]}], "partitionNames": keys, "title": "relabel"}},
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    def finished() -> str | None:
        status = graphql(url, BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]["status"]
        return status if status not in ("REQUESTED", "CANCELING", "FAILING") else None

    status = wait_until(finished, 600, f"backfill {backfill_id} (log: {deployment['log']})", interval=3)
    runs = graphql(url, BACKFILL_RUNS, {"id": backfill_id})["runsOrError"]["results"]

    assert status == "COMPLETED_SUCCESS", (status, [run["status"] for run in runs])
    assert sorted(run["status"] for run in runs) == ["SUCCESS"] * len(keys)
    partitions = {tag["value"] for run in runs for tag in run["tags"] if tag["key"] == "dagster/partition"}
    assert partitions == set(keys)

    warehouse = WarehouseResource(storage_root=str(deployment["root"] / "store"))
    with warehouse.catalog.connect(read_only=True) as connection:
        coverage = connection.execute(
            """
            SELECT count(*), count(a.id), count(DISTINCT (a.shard, a.id))
            FROM documents AS d LEFT JOIN cluster_assignments AS a USING (shard, id)
            """
        ).fetchone()
        clusters = connection.execute("SELECT count(DISTINCT cluster_id) FROM cluster_assignments").fetchone()[0]
    assert coverage == (8400, 8400, 8400)
    assert 1 < clusters <= K


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium package (.ci/run installs it)")
def test_ui_shows_asset_graph_and_taxonomy(deployment: dict) -> None:
    from playwright.sync_api import sync_playwright

    warehouse = WarehouseResource(storage_root=str(deployment["root"] / "store"))
    with warehouse.catalog.connect(read_only=True) as connection:
        names = [row[0] for row in connection.execute("SELECT name FROM teacher_clusters ORDER BY cluster_id").fetchall()]
    ARTEFACTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            # The global lineage collapses groups into boxes, so each group's lineage page is
            # read instead: every asset of the group is drawn there as a node.
            for group, keys in assets_by_group().items():
                page.goto(f"{deployment['url']}/locations/gem_dagster/asset-groups/{group}")
                for key in keys:
                    page.get_by_text(key, exact=True).first.wait_for(timeout=90_000)
                # A first visit may open the community newsletter dialog over the graph.
                skip = page.get_by_role("button", name="Skip")
                if skip.count():
                    skip.first.click()
                page.screenshot(path=str(ARTEFACTS / f"asset_graph_{group}.png"))

            page.goto(f"{deployment['url']}/assets/gis_taxonomy")
            page.get_by_text(names[0], exact=False).first.wait_for(timeout=90_000)
            for name in names:
                assert page.get_by_text(name, exact=False).count() > 0, name
            page.screenshot(path=str(ARTEFACTS / "gis_taxonomy.png"), full_page=True)
        finally:
            browser.close()

    assert (ARTEFACTS / "asset_graph_student.png").stat().st_size > 10_000
    assert (ARTEFACTS / "gis_taxonomy.png").stat().st_size > 10_000
