"""SIGKILL a run while it writes a documents partition, and check that nothing partial shows.

The run is `dagster asset materialize` in a child process with its own process group, so
the kill also takes the multiprocess executor's step worker, as a machine crash or an OOM
kill of the run would. The shard is large enough that the kill lands while the Parquet
writer is still appending row groups to its temporary file.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from gem_dagster.resources import WarehouseResource
from gem_dagster.warehouse import StorageLayout
from tests.conftest import good_records, write_shard

from .conftest import (
    child_environment,
    corpus_resources,
    materialise_documents,
    parquet_checksum,
    query,
)

pytestmark = pytest.mark.slow

SHARD = "big.jsonl"
RECORDS = 30_000
BATCH_ROWS = 1024
# The kill waits until the temporary file contains several row groups (about 50 KB each).
KILL_AFTER_BYTES = 256 * 1024
WORDS = (
    "kernel scheduler balances runnable tasks across cores while the compiler inlines small "
    "functions and the garbage collector frees unreachable objects in the young generation"
).split()


def write_big_shard(path: Path, count: int = RECORDS) -> None:
    generator = random.Random(7)
    with open(path, "w", encoding="utf-8") as handle:
        for index in range(count):
            text = " ".join(generator.choice(WORDS) for _ in range(30))
            handle.write(json.dumps({"id": f"big-{index}", "text": text, "source": "generated"}) + "\n")
        # A few bad records, so that the rejects file is compared too.
        handle.write('{"id": "broken", "text": \n')
        handle.write(json.dumps({"id": "big-0", "text": "a repeated id"}) + "\n")


@dataclass(frozen=True)
class Outcome:
    """Sorted ids and checksums of one published documents partition."""

    ids: list[str]
    documents_checksum: str
    rejects_checksum: str


def published_outcome(layout: StorageLayout) -> Outcome:
    documents_file = layout.documents_file(SHARD)
    return Outcome(
        ids=sorted(pq.read_table(documents_file, columns=["id"])["id"].to_pylist()),
        documents_checksum=parquet_checksum(documents_file),
        rejects_checksum=parquet_checksum(layout.rejects_file(SHARD), sort_by="line"),
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """The partition as an uninterrupted in-process run publishes it."""
    root = tmp_path_factory.mktemp("uninterrupted")
    (root / "corpus").mkdir()
    write_big_shard(root / "corpus" / SHARD)
    resources = corpus_resources(root / "corpus", root / "store", read_batch_rows=BATCH_ROWS)
    (root / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "home")) as instance:
        assert materialise_documents(instance, resources, SHARD).success
    return published_outcome(resources["warehouse"].layout)


@dataclass
class Deployment:
    """A corpus, a storage root and a Dagster home that child processes share."""

    corpus_root: Path
    store: Path
    home: Path

    @property
    def warehouse(self) -> WarehouseResource:
        return WarehouseResource(storage_root=str(self.store))

    def environment(self) -> dict[str, str]:
        return child_environment(
            DAGSTER_HOME=str(self.home),
            GEM_CORPUS_ROOT=str(self.corpus_root),
            GEM_STORAGE_ROOT=str(self.store),
            GEM_READ_BATCH_ROWS=str(BATCH_ROWS),
        )

    def materialise_command(self) -> list[str]:
        return [
            sys.executable, "-m", "dagster", "asset", "materialize",
            "-m", "gem_dagster.definitions", "--select", "documents", "--partition", SHARD,
        ]  # fmt: skip

    def materialised_partitions(self) -> set[str]:
        with dg.DagsterInstance.from_config(str(self.home)) as instance:
            return set(instance.get_materialized_partitions(dg.AssetKey("documents")))


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    corpus_root = tmp_path / "corpus"
    corpus_root.mkdir()
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    setup = Deployment(corpus_root, tmp_path / "store", home)

    # A small shard ingested first shows that the views keep serving other partitions.
    write_shard(corpus_root / "small.jsonl", good_records("small", 12))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("shards", ["small.jsonl", SHARD])
        resources = corpus_resources(corpus_root, setup.store)
        assert materialise_documents(instance, resources, "small.jsonl").success
    yield setup


def temporary_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp")) if folder.exists() else []


def kill_while_writing(setup: Deployment) -> list[Path]:
    """Start the run, SIGKILL its process group once the temporary file grows, return leftovers."""
    partition_folder = setup.warehouse.layout.documents_file(SHARD).parent
    log_file = open(setup.home / "killed_run.log", "w")
    process = subprocess.Popen(
        setup.materialise_command(),
        env=setup.environment(),
        cwd=setup.home,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            sizes = [path.stat().st_size for path in temporary_files(partition_folder)]
            if any(size >= KILL_AFTER_BYTES for size in sizes):
                break
            if process.poll() is not None:
                pytest.fail(
                    f"the run ended (exit {process.returncode}) before it could be killed; "
                    f"see {log_file.name}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"no temporary file of {KILL_AFTER_BYTES} bytes appeared; see {log_file.name}")
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        log_file.close()

    assert process.returncode == -signal.SIGKILL
    wait_for_process_group_to_exit(process.pid)
    return temporary_files(partition_folder)


def wait_for_process_group_to_exit(group: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail(f"processes of group {group} are still running after SIGKILL")


def rerun(setup: Deployment) -> None:
    completed = subprocess.run(
        setup.materialise_command(),
        env=setup.environment(),
        cwd=setup.home,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]


def test_killed_first_write_publishes_nothing(deployment: Deployment, uninterrupted: Outcome) -> None:
    write_big_shard(deployment.corpus_root / SHARD)
    layout = deployment.warehouse.layout

    leftovers = kill_while_writing(deployment)

    # Only the hidden temporary file remains, and no glob of the catalog matches it.
    assert len(leftovers) == 1
    assert leftovers[0].name.startswith(".part-0.parquet.")
    assert not layout.documents_file(SHARD).exists()
    assert not layout.rejects_file(SHARD).exists()
    assert SHARD not in deployment.materialised_partitions()
    counts = query(deployment.warehouse, "SELECT shard, count(*) FROM documents GROUP BY shard")
    assert counts == [("small.jsonl", 12)]
    rejected = query(deployment.warehouse, "SELECT count(*) FROM rejected_documents WHERE shard = ?", [SHARD])
    assert rejected == [(0,)]

    rerun(deployment)

    assert published_outcome(layout) == uninterrupted
    # The re-run's publish deleted the killed writer's file, which no process held any more.
    assert temporary_files(layout.documents_file(SHARD).parent) == []
    assert SHARD in deployment.materialised_partitions()
    in_view = query(
        deployment.warehouse,
        "SELECT count(*), count(DISTINCT id) FROM documents WHERE shard = ?",
        [SHARD],
    )
    assert in_view == [(RECORDS, RECORDS)]


def test_killed_rewrite_keeps_previous_version(deployment: Deployment, uninterrupted: Outcome) -> None:
    shard_file = deployment.corpus_root / SHARD
    write_big_shard(shard_file, count=100)
    with dg.DagsterInstance.from_config(str(deployment.home)) as instance:
        resources = corpus_resources(deployment.corpus_root, deployment.store, read_batch_rows=BATCH_ROWS)
        assert materialise_documents(instance, resources, SHARD).success
    layout = deployment.warehouse.layout
    previous = published_outcome(layout)
    write_big_shard(shard_file)

    kill_while_writing(deployment)

    assert published_outcome(layout) == previous
    in_view = query(deployment.warehouse, "SELECT count(*) FROM documents WHERE shard = ?", [SHARD])
    assert in_view == [(100,)]

    rerun(deployment)

    assert published_outcome(layout) == uninterrupted
