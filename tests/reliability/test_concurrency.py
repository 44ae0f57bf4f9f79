"""A backfill of eight shards, four runs at a time, through the Dagster daemon.

The Dagster home uses the shipped config/dagster.yaml: the queued run coordinator with at
most four concurrent runs. `dagster-daemon run` launches each run in its own process, and
each run executes its step with the multiprocess executor. While the runs write Parquet,
the test keeps reading the DuckDB views and checks that no partition ever shows part of its
rows.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest

from gem_dagster.resources import WarehouseResource
from gem_dagster.settings import PROJECT_ROOT
from tests.conftest import good_records, write_shard

from .conftest import child_environment, query

pytestmark = pytest.mark.slow

SUFFIXES = [".jsonl", ".jsonl.gz", ".jsonl.zst", ".parquet"]
SHARD_KEYS = [f"part-{index}{SUFFIXES[index % 4]}" for index in range(8)]
RECORDS_PER_SHARD = 300
QUEUE_LIMIT = 4
BACKFILL_TIMEOUT_SECONDS = 480
TERMINAL = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
# A job backfill ends as COMPLETED once every run is submitted (dagster 1.13). The other
# values are those of asset backfills and of failures.
BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED"}
LOCK_ERRORS = re.compile(r"Could not set lock|Conflicting lock|database is locked", re.IGNORECASE)
BIN = Path(sys.executable).parent


@dataclass
class Backfill:
    """The finished backfill: its runs, their event logs and everything the processes logged."""

    store: Path
    runs: list[dg.DagsterRun]
    run_records: list
    event_messages: dict[str, list[str]]
    logs: dict[str, str]
    partial_views: list[tuple[str, int]] = field(default_factory=list)
    backfill_status: str = ""
    queue_limit: int = 0


def start_daemon(home: Path, environment: dict[str, str], log_path: Path) -> subprocess.Popen:
    log_file = open(log_path, "w")
    try:
        return subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-m", "gem_dagster.definitions"],
            env=environment,
            cwd=home,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log_file.close()


def stop_process_group(process: subprocess.Popen) -> None:
    """Stop the daemon and everything it started (code server, run workers)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if process.poll() is None:
        process.wait(timeout=30)


def incomplete_partitions(warehouse: WarehouseResource) -> list[tuple[str, int]]:
    """Shards whose rows are visible in the documents view but fewer than the shard holds."""
    counts = query(warehouse, "SELECT shard, count(*) FROM documents GROUP BY shard")
    return [(shard, count) for shard, count in counts if count != RECORDS_PER_SHARD]


@pytest.fixture(scope="module")
def backfill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backfill]:
    root = tmp_path_factory.mktemp("backfill")
    corpus_root = root / "corpus"
    corpus_root.mkdir()
    for key in SHARD_KEYS:
        write_shard(corpus_root / key, good_records(key.split(".")[0], RECORDS_PER_SHARD))
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "config" / "dagster.yaml", home / "dagster.yaml")
    store = root / "store"
    warehouse = WarehouseResource(storage_root=str(store))
    environment = child_environment(
        DAGSTER_HOME=str(home), GEM_CORPUS_ROOT=str(corpus_root), GEM_STORAGE_ROOT=str(store)
    )

    instance = dg.DagsterInstance.from_config(str(home))
    queue_limit = instance.get_concurrency_config().run_queue_config.max_concurrent_runs
    instance.add_dynamic_partitions("shards", SHARD_KEYS)
    daemon = start_daemon(home, environment, root / "daemon.log")
    partial_views: list[tuple[str, int]] = []
    try:
        launched = subprocess.run(
            [str(BIN / "dagster"), "job", "backfill", "-m", "gem_dagster.definitions",
             "-j", "ingest_shards", "--all", "--noprompt"],
            env=environment, cwd=home, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert launched.returncode == 0, launched.stdout[-2000:] + launched.stderr[-2000:]

        deadline = time.monotonic() + BACKFILL_TIMEOUT_SECONDS
        while True:
            runs = instance.get_runs()
            if len(runs) == len(SHARD_KEYS) and all(run.status in TERMINAL for run in runs):
                break
            if time.monotonic() > deadline:
                statuses = sorted(run.status.value for run in runs)
                pytest.fail(
                    f"backfill unfinished after {BACKFILL_TIMEOUT_SECONDS} s: run statuses {statuses}"
                )
            partial_views += incomplete_partitions(warehouse)
            time.sleep(1.0)
        backfills = instance.get_backfills()
        # The daemon marks the backfill complete on a pass after it submitted the last run.
        while backfills[0].status.value not in BACKFILL_DONE and time.monotonic() < deadline:
            time.sleep(1.0)
            backfills = instance.get_backfills()
    finally:
        stop_process_group(daemon)

    runs = instance.get_runs()
    logs = {"daemon.log": (root / "daemon.log").read_text(errors="replace")}
    for path in sorted((home / "storage").rglob("*")):
        if path.is_file() and path.suffix in {".out", ".err"}:
            logs[str(path.relative_to(home))] = path.read_text(errors="replace")
    event_messages = {
        run.run_id: [
            (record.message or "")
            + (str(record.dagster_event.event_specific_data) if record.dagster_event else "")
            for record in instance.all_logs(run.run_id)
        ]
        for run in runs
    }
    yield Backfill(
        store=store,
        runs=runs,
        run_records=instance.get_run_records(),
        event_messages=event_messages,
        logs=logs,
        partial_views=partial_views,
        backfill_status=backfills[0].status.value,
        queue_limit=queue_limit,
    )
    instance.dispose()


def test_every_run_succeeded(backfill: Backfill) -> None:
    partitions = sorted(run.tags["dagster/partition"] for run in backfill.runs)

    assert partitions == sorted(SHARD_KEYS)
    assert {run.status for run in backfill.runs} == {dg.DagsterRunStatus.SUCCESS}
    assert backfill.backfill_status in {"COMPLETED", "COMPLETED_SUCCESS"}


def test_runs_overlapped_within_queue_limit(backfill: Backfill) -> None:
    # For each run's start time, count the runs whose [start, end) interval contains it.
    intervals = [(record.start_time, record.end_time) for record in backfill.run_records]
    overlaps = [
        sum(1 for start, end in intervals if start <= moment < end) for moment, _ in intervals
    ]

    assert backfill.queue_limit == QUEUE_LIMIT
    assert max(overlaps) >= 2
    assert max(overlaps) <= QUEUE_LIMIT


def test_runs_used_multiprocess_executor(backfill: Backfill) -> None:
    for run_id, messages in backfill.event_messages.items():
        assert any("Executing steps using multiprocess executor" in message for message in messages), run_id


def test_no_lock_error_in_any_log(backfill: Backfill) -> None:
    assert len(backfill.logs) > 1, "no compute logs were captured"
    for name, text in backfill.logs.items():
        assert not LOCK_ERRORS.search(text), name
    for run_id, messages in backfill.event_messages.items():
        for message in messages:
            assert not LOCK_ERRORS.search(message), run_id


def test_views_never_showed_partial_partition(backfill: Backfill) -> None:
    assert backfill.partial_views == []


def test_every_document_exactly_once(backfill: Backfill) -> None:
    warehouse = WarehouseResource(storage_root=str(backfill.store))

    total, distinct = query(warehouse, "SELECT count(*), count(DISTINCT id) FROM documents")[0]
    per_shard = dict(query(warehouse, "SELECT shard, count(*) FROM documents GROUP BY shard"))
    rejected = query(warehouse, "SELECT count(*) FROM rejected_documents")[0][0]

    assert total == len(SHARD_KEYS) * RECORDS_PER_SHARD
    assert distinct == total
    assert per_shard == {key: RECORDS_PER_SHARD for key in SHARD_KEYS}
    assert rejected == 0

