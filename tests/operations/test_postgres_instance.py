"""The compose deployment's deploy/dagster.yaml against a real PostgreSQL server.

No Docker engine runs on the test machines, so the PostgreSQL container is replaced by a
server that the tests start from the PostgreSQL 15 binaries on 127.0.0.1. The instance is
built from the same deploy/dagster.yaml file that docker-compose.yml mounts, with the
DAGSTER_PG_* variables pointing at that server. A real partition is materialised into it and
read back with SQL. The slow test also runs the code server, daemon and webserver with the
compose file's command lines, as local processes instead of containers.
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
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
import yaml
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from gem_dagster.assets import documents
from gem_dagster.definitions import build_resources
from gem_dagster.partitions import shard_partitions
from gem_dagster.settings import BUNDLED_SAMPLE_SHARDS, GemSettings
from tests.operations.postgres_server import (
    PostgresBinariesNotFoundError,
    PostgresServer,
    find_server_binaries,
    running_postgres,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DEPLOY_INSTANCE_CONFIG = REPO_ROOT / "deploy" / "dagster.yaml"
DEPLOY_WORKSPACE = REPO_ROOT / "deploy" / "workspace.yaml"
VENV_BIN = Path(sys.executable).parent

# The smallest plain JSONL shard of the bundled sample, so the run stays short.
SAMPLE_SHARD = "shard-005.jsonl"

# Loading the code location (torch, sentence-transformers) took about 20 s on 2 cores.
SERVICE_START_TIMEOUT_SECONDS = 180
RUN_TIMEOUT_SECONDS = 300
PROCESS_STOP_TIMEOUT_SECONDS = 30


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        find_server_binaries()
    except PostgresBinariesNotFoundError as error:
        pytest.fail(str(error))
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> PostgresServer:
    """An empty database of its own for each test."""
    return postgres_server.create_database(f"gem_dagster_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def dagster_home(
    postgres_database: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A DAGSTER_HOME laid out as in the compose containers. It contains deploy/dagster.yaml,
    and the connection comes from the DAGSTER_PG_* environment variables."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY_INSTANCE_CONFIG, home / "dagster.yaml")

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_HOST", postgres_database.host)
    monkeypatch.setenv("DAGSTER_PG_PORT", str(postgres_database.port))
    monkeypatch.setenv("DAGSTER_PG_USER", postgres_database.user)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", postgres_database.password)
    monkeypatch.setenv("DAGSTER_PG_DB", postgres_database.database)
    return home


@pytest.fixture
def deploy_instance(dagster_home: Path) -> Iterator[dg.DagsterInstance]:
    instance = dg.DagsterInstance.get()
    try:
        yield instance
    finally:
        instance.dispose()


def fetch_all(server: PostgresServer, query: str, parameters: tuple) -> list[tuple]:
    with closing(server.connect()) as connection, connection.cursor() as cursor:
        cursor.execute(query, parameters)
        return cursor.fetchall()


def test_deploy_instance_uses_postgres_storages(deploy_instance: dg.DagsterInstance) -> None:
    assert isinstance(deploy_instance.run_storage, PostgresRunStorage)
    assert isinstance(deploy_instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(deploy_instance.schedule_storage, PostgresScheduleStorage)


def test_deploy_instance_queues_runs_within_limits(deploy_instance: dg.DagsterInstance) -> None:
    assert isinstance(deploy_instance.run_coordinator, dg.QueuedRunCoordinator)
    assert isinstance(deploy_instance.run_launcher, dg.DefaultRunLauncher)

    run_queue = deploy_instance.get_concurrency_config().run_queue_config
    assert run_queue is not None
    assert run_queue.max_concurrent_runs == 4
    assert {"key": "dagster/backfill", "limit": 3} in run_queue.tag_concurrency_limits


def test_deploy_instance_gives_pools_one_slot(deploy_instance: dg.DagsterInstance) -> None:
    # The limit is read through the PostgreSQL event log storage, where the daemon and the run
    # workers look it up.
    for pool in ("gpu", "duckdb_writer"):
        info = deploy_instance.event_log_storage.get_concurrency_info(pool)
        assert info.limit == 1, pool


def test_partition_run_recorded_in_postgres(
    deploy_instance: dg.DagsterInstance,
    postgres_database: PostgresServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage_root = tmp_path / "gem_storage"
    monkeypatch.setenv("GEM_STORAGE_ROOT", str(storage_root))
    monkeypatch.setenv("GEM_CORPUS_ROOT", str(BUNDLED_SAMPLE_SHARDS))
    resources = build_resources(GemSettings())

    deploy_instance.add_dynamic_partitions(shard_partitions.name, [SAMPLE_SHARD])
    result = dg.materialize(
        [documents], instance=deploy_instance, resources=resources, partition_key=SAMPLE_SHARD
    )
    assert result.success
    run_id = result.run_id

    runs = fetch_all(
        postgres_database,
        "SELECT status, partition FROM runs WHERE run_id = %s",
        (run_id,),
    )
    assert len(runs) == 1
    status, partition = runs[0]
    assert status == "SUCCESS"
    assert partition == SAMPLE_SHARD

    materializations = fetch_all(
        postgres_database,
        "SELECT asset_key, partition FROM event_logs "
        "WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
        (run_id,),
    )
    assert len(materializations) == 1
    asset_key, materialized_partition = materializations[0]
    assert json.loads(asset_key) == ["documents"]
    assert materialized_partition == SAMPLE_SHARD

    checks = fetch_all(
        postgres_database,
        "SELECT check_name, execution_status FROM asset_check_executions WHERE run_id = %s",
        (run_id,),
    )
    assert checks == [("records_reconciled", "SUCCEEDED")]

    registered = fetch_all(
        postgres_database,
        "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = %s",
        (shard_partitions.name,),
    )
    assert registered == [(SAMPLE_SHARD,)]

    # The bulk data went to GEM_STORAGE_ROOT, not into PostgreSQL.
    documents_file = resources["warehouse"].layout.documents_file(SAMPLE_SHARD)
    assert documents_file.is_relative_to(storage_root)
    assert pq.ParquetFile(documents_file).metadata.num_rows > 0


def test_deploy_instance_without_password_names_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(DEPLOY_INSTANCE_CONFIG, dagster_home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_DB"):
        monkeypatch.setenv(name, "unused")
    monkeypatch.delenv("DAGSTER_PG_PASSWORD", raising=False)

    with pytest.raises(dg.DagsterInvalidConfigError, match="DAGSTER_PG_PASSWORD"):
        dg.DagsterInstance.get()


# --- The compose services as local processes -----------------------------------------------


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def option_value(command: list[str], option: str) -> str:
    """Return the value of `--option=value` or `--option value` in a command line."""
    for index, argument in enumerate(command):
        if argument.startswith(f"{option}="):
            return argument.split("=", 1)[1]
        if argument == option:
            return command[index + 1]
    raise AssertionError(f"{option} not found in command {command}")


def local_command(command: list[str], replacements: dict[str, str]) -> list[str]:
    """Return a compose command line with its program taken from this virtual environment and
    container-only values (listen address, ports, paths) replaced for this machine."""
    program, *arguments = command
    local = [str(VENV_BIN / program)]
    for argument in arguments:
        option, separator, value = argument.partition("=")
        if separator and option.startswith("--"):
            local.append(f"{option}={replacements.get(value, value)}")
        else:
            local.append(replacements.get(argument, argument))
    return local


@contextmanager
def background_process(command: list[str], log_file: Path) -> Iterator[subprocess.Popen]:
    """Run a command in its own process group, and stop that group by its PID on exit."""
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            # The group includes the run workers that the code server started.
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=PROCESS_STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=PROCESS_STOP_TIMEOUT_SECONDS)


def wait_for(condition: Callable[[], bool], timeout: float, description: str, log_file: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            log_tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-30:])
            raise AssertionError(f"timed out after {timeout} s waiting for {description}. Log:\n{log_tail}")
        time.sleep(1)


def is_finished(instance: dg.DagsterInstance, run_id: str) -> bool:
    return instance.get_run_by_id(run_id).is_finished


@pytest.mark.slow
def test_compose_services_run_queued_partition(
    deploy_instance: dg.DagsterInstance,
    dagster_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    workspace = yaml.safe_load(DEPLOY_WORKSPACE.read_text())
    grpc_server = workspace["load_from"][0]["grpc_server"]
    code_service = compose["services"][grpc_server["host"]]
    webserver_service = compose["services"]["webserver"]

    # Only the container network's host name and the fixed ports change: here the services
    # listen on 127.0.0.1 and on free ports.
    grpc_port = free_loopback_port()
    ui_port = free_loopback_port()
    local_workspace = dagster_home / "workspace.yaml"
    grpc_server.update(host="127.0.0.1", port=grpc_port)
    local_workspace.write_text(yaml.safe_dump(workspace))
    replacements = {
        "0.0.0.0": "127.0.0.1",
        option_value(code_service["command"], "--port"): str(grpc_port),
        option_value(webserver_service["command"], "--port"): str(ui_port),
        option_value(webserver_service["command"], "--workspace"): str(local_workspace),
    }

    monkeypatch.setenv("GEM_STORAGE_ROOT", str(tmp_path / "gem_storage"))
    monkeypatch.setenv("GEM_CORPUS_ROOT", str(BUNDLED_SAMPLE_SHARDS))
    deploy_instance.add_dynamic_partitions(shard_partitions.name, [SAMPLE_SHARD])

    code_log = tmp_path / "gem-code.log"
    health_check = local_command(code_service["healthcheck"]["test"][1:], replacements)
    with background_process(local_command(code_service["command"], replacements), code_log):
        wait_for(
            lambda: subprocess.run(health_check, capture_output=True).returncode == 0,
            SERVICE_START_TIMEOUT_SECONDS, "the code server's health check", code_log,
        )

        daemon_log = tmp_path / "daemon.log"
        webserver_log = tmp_path / "webserver.log"
        daemon_command = local_command(compose["services"]["daemon"]["command"], replacements)
        webserver_command = local_command(webserver_service["command"], replacements)
        with (
            background_process(daemon_command, daemon_log),
            background_process(webserver_command, webserver_log),
        ):
            launch = subprocess.run(
                [
                    str(VENV_BIN / "dagster"), "job", "launch",
                    "--workspace", str(local_workspace),
                    "--job", "ingest_shards",
                    "--tags", json.dumps({"dagster/partition": SAMPLE_SHARD}),
                ],
                capture_output=True, text=True,
            )
            assert launch.returncode == 0, launch.stderr
            [run] = deploy_instance.get_runs(limit=1)
            wait_for(
                lambda: is_finished(deploy_instance, run.run_id),
                RUN_TIMEOUT_SECONDS, f"run {run.run_id}", daemon_log,
            )

            server_info_url = f"http://127.0.0.1:{ui_port}/server_info"
            wait_for(
                lambda: _responds(server_info_url),
                SERVICE_START_TIMEOUT_SECONDS, "the webserver", webserver_log,
            )
            with urllib.request.urlopen(server_info_url, timeout=10) as response:
                server_info = json.load(response)

    finished = deploy_instance.get_run_by_id(run.run_id)
    assert finished.status == dg.DagsterRunStatus.SUCCESS, code_log.read_text()[-3000:]
    assert finished.tags["dagster/partition"] == SAMPLE_SHARD

    # The run went through the queue: the CLI only enqueued it, and only the daemon launches
    # a queued run, which reports RUN_STARTING.
    for event_type in (dg.DagsterEventType.RUN_ENQUEUED, dg.DagsterEventType.RUN_STARTING):
        assert deploy_instance.all_logs(run.run_id, of_type=event_type), event_type

    # DefaultRunLauncher handed the run to the code server, which is why docker-compose.yml
    # reserves the GPU on that container.
    assert json.loads(finished.tags[".dagster/grpc_info"]) == {"host": "127.0.0.1", "port": grpc_port}

    # Compute logs land under DAGSTER_HOME/storage, the dagster_storage volume of the compose
    # file, where the webserver reads them.
    assert list((dagster_home / "storage" / run.run_id).rglob("*.out"))
    assert server_info["dagster_version"] == dg.__version__


def _responds(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except OSError:
        return False
