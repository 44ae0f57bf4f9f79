"""A throwaway PostgreSQL server on 127.0.0.1 for tests, started from the server binaries and
stopped by its PID.

PostgreSQL refuses to run as root (initdb and postgres both exit with "cannot be run as
root"). When the tests run as root, as they do in CI, the server therefore runs as the
`postgres` account that Debian's package creates, or as `nobody` where that account is
missing. Its files live in a fresh folder under the system temporary directory, because
pytest's own temporary folders (/tmp/pytest-of-root, mode 0700) cannot be entered by another
account.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2

# Debian's postgresql-15 package installs the server here. The compose file runs postgres:15 too.
DEFAULT_BIN_DIR = Path("/usr/lib/postgresql/15/bin")
BIN_DIR_VARIABLE = "POSTGRES_BIN_DIR"

STARTUP_TIMEOUT_SECONDS = 30
SHUTDOWN_TIMEOUT_SECONDS = 30
START_ATTEMPTS = 3


class PostgresBinariesNotFoundError(RuntimeError):
    """The PostgreSQL server programs (initdb, postgres) are not installed."""


class PostgresStartError(RuntimeError):
    """The server exited or did not accept connections in time."""


@dataclass(frozen=True)
class PostgresServer:
    """Connection details of a running test server."""

    host: str
    port: int
    user: str
    password: str
    database: str
    pid: int

    def connect(self) -> psycopg2.extensions.connection:
        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=self.database,
            connect_timeout=5,
        )

    def create_database(self, name: str) -> PostgresServer:
        """Create an empty database and return the connection details that point at it."""
        connection = self.connect()
        try:
            # CREATE DATABASE cannot run inside a transaction block.
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return dataclasses.replace(self, database=name)


@dataclass(frozen=True)
class _Account:
    name: str
    uid: int
    gid: int


def find_server_binaries() -> Path:
    """Return the folder with initdb and postgres, or raise with the install command."""
    bin_dir = Path(os.environ.get(BIN_DIR_VARIABLE, DEFAULT_BIN_DIR))
    missing = [name for name in ("initdb", "postgres") if not (bin_dir / name).is_file()]
    if missing:
        raise PostgresBinariesNotFoundError(
            f"PostgreSQL server programs {', '.join(missing)} not found in {bin_dir}: install "
            "Debian's postgresql package (`apt-get install postgresql-15`, which .ci/run does "
            f"when it is missing) or set {BIN_DIR_VARIABLE} to the folder that contains initdb "
            "and postgres"
        )
    return bin_dir


def _server_account() -> _Account | None:
    """Return the account to run the server as, or None to run it as the current user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return _Account(name=name, uid=entry.pw_uid, gid=entry.pw_gid)
    raise PostgresStartError(
        "running as root, and neither a 'postgres' nor a 'nobody' account exists to run "
        "PostgreSQL as: create an unprivileged account or run the tests as a normal user"
    )


def _free_loopback_port() -> int:
    # The port is free when this returns. Another process may take it before the server binds
    # it, which is why `running_postgres` retries with a new port.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run_as(account: _Account | None) -> dict:
    """Return the subprocess arguments that drop root privileges to the given account."""
    if account is None:
        return {}
    return {"user": account.uid, "group": account.gid, "extra_groups": []}


def _chown(path: Path, account: _Account | None) -> None:
    if account is not None:
        os.chown(path, account.uid, account.gid)


def _log_tail(log_file: Path, lines: int = 20) -> str:
    if not log_file.exists():
        return "(no server log)"
    return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])


def _initialise_cluster(
    bin_dir: Path, data_dir: Path, user: str, password_file: Path, account: _Account | None
) -> None:
    # Every connection must authenticate with scram-sha-256, so the test really checks the
    # password that deploy/dagster.yaml reads from DAGSTER_PG_PASSWORD.
    command = [
        str(bin_dir / "initdb"),
        "--pgdata", str(data_dir),
        "--username", user,
        f"--pwfile={password_file}",
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
        # A test cluster is thrown away, so skip the fsync of every file initdb writes.
        "--no-sync",
    ]
    completed = subprocess.run(command, capture_output=True, text=True, **_run_as(account))
    if completed.returncode != 0:
        raise PostgresStartError(
            f"initdb failed with exit code {completed.returncode}: {completed.stderr.strip()}"
        )


def _start_postmaster(
    bin_dir: Path, data_dir: Path, socket_dir: Path, port: int, log_file: Path, account: _Account | None
) -> subprocess.Popen:
    command = [
        str(bin_dir / "postgres"),
        "-D", str(data_dir),
        "-h", "127.0.0.1",
        "-p", str(port),
        "-k", str(socket_dir),
        # Durability does not matter for a throwaway test cluster.
        "-c", "fsync=off",
        "-c", "synchronous_commit=off",
    ]
    with log_file.open("ab") as log:
        # A new session keeps a Ctrl-C in the test terminal from reaching the server directly:
        # the fixture's teardown stops it by PID.
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **_run_as(account)
        )


def _wait_until_ready(process: subprocess.Popen, port: int, user: str, password: str, log_file: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while True:
        if process.poll() is not None:
            raise PostgresStartError(
                f"postgres (PID {process.pid}) exited with code {process.returncode} during "
                f"start-up on port {port}. Server log:\n{_log_tail(log_file)}"
            )
        try:
            psycopg2.connect(
                host="127.0.0.1", port=port, user=user, password=password, dbname="postgres",
                connect_timeout=2,
            ).close()
            return
        except psycopg2.OperationalError as error:
            if time.monotonic() > deadline:
                raise PostgresStartError(
                    f"postgres (PID {process.pid}) did not accept connections on 127.0.0.1:{port} "
                    f"within {STARTUP_TIMEOUT_SECONDS} s: {error}. Server log:\n{_log_tail(log_file)}"
                ) from error
            time.sleep(0.2)


def _stop_postmaster(process: subprocess.Popen) -> None:
    """Stop the server by its PID: SIGINT is PostgreSQL's fast shutdown, SIGKILL the fallback."""
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=SHUTDOWN_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=SHUTDOWN_TIMEOUT_SECONDS)


@contextmanager
def running_postgres(user: str = "gem", password: str = "gem-test-password") -> Iterator[PostgresServer]:
    """Start a PostgreSQL server on 127.0.0.1, and stop it on exit.

    The server listens on a free TCP port of 127.0.0.1 only, with its Unix socket in its own
    temporary folder. Its folder is removed after the server has stopped. The yielded details
    point at the built-in `postgres` database, and `PostgresServer.create_database` adds
    empty ones.
    """
    bin_dir = find_server_binaries()
    account = _server_account()

    base_dir = Path(tempfile.mkdtemp(prefix="gem-postgres-"))
    process: subprocess.Popen | None = None
    try:
        _chown(base_dir, account)
        data_dir = base_dir / "data"
        socket_dir = base_dir / "socket"
        socket_dir.mkdir()
        _chown(socket_dir, account)
        log_file = base_dir / "server.log"

        password_file = base_dir / "password"
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
        _chown(password_file, account)
        _initialise_cluster(bin_dir, data_dir, user, password_file, account)

        for attempt in range(1, START_ATTEMPTS + 1):
            port = _free_loopback_port()
            process = _start_postmaster(bin_dir, data_dir, socket_dir, port, log_file, account)
            try:
                _wait_until_ready(process, port, user, password, log_file)
                break
            except PostgresStartError:
                _stop_postmaster(process)
                process = None
                if attempt == START_ATTEMPTS:
                    raise

        yield PostgresServer(
            host="127.0.0.1", port=port, user=user, password=password, database="postgres",
            pid=process.pid,
        )
    finally:
        if process is not None:
            _stop_postmaster(process)
        shutil.rmtree(base_dir, ignore_errors=True)
