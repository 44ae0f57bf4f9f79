"""docker-compose.yml and deploy/ checked without a Docker engine.

No Docker engine runs on the test machines, so `docker compose config` cannot validate the
file. Instead it is validated against the Compose specification's JSON schema, which
scripts/fetch_compose_schema.py caches, and the tests below check what a schema cannot
express: start-up order, the published address, shared volumes, the GPU reservation and
the Dagster instance configuration.
"""

from __future__ import annotations

import copy
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import jsonschema
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
CPU_OVERRIDE_FILE = REPO_ROOT / "deploy" / "compose.cpu.yaml"
DEPLOY_INSTANCE_CONFIG = REPO_ROOT / "deploy" / "dagster.yaml"
DEPLOY_WORKSPACE = REPO_ROOT / "deploy" / "workspace.yaml"
LOCAL_INSTANCE_CONFIG = REPO_ROOT / "config" / "dagster.yaml"
FETCH_SCRIPT = REPO_ROOT / "scripts" / "fetch_compose_schema.py"

# Services that run Dagster and therefore need the instance configuration.
DAGSTER_SERVICES = ("gem-code", "webserver", "daemon")


def load_fetch_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_compose_schema", FETCH_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def compose_schema() -> dict:
    fetch_script = load_fetch_script()
    schema_path = fetch_script.DEFAULT_OUTPUT
    if not fetch_script.is_cached(schema_path):
        pytest.fail(
            f"Compose schema missing or not the pinned file at {schema_path}: run "
            "`.venv/bin/python scripts/fetch_compose_schema.py` (it takes the schema from the "
            "docker-compose 1.29.2 wheel through pip) and rerun the tests"
        )
    return yaml.safe_load(schema_path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def instance_config() -> dict:
    return yaml.safe_load(DEPLOY_INSTANCE_CONFIG.read_text())


@pytest.fixture(scope="module")
def workspace_server() -> dict:
    workspace = yaml.safe_load(DEPLOY_WORKSPACE.read_text())
    [location] = workspace["load_from"]
    return location["grpc_server"]


def schema_errors(schema: dict, document: dict) -> list[str]:
    validator = jsonschema.Draft201909Validator(schema)
    return [
        f"{'.'.join(str(part) for part in error.absolute_path) or '(top level)'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?])(?P<argument>[^}]*))?\}")


def with_defaults(value: str) -> str:
    """Interpolate a Compose string as if no variable were set: `${NAME:-default}` becomes
    `default`, and a required or plain variable becomes `<NAME>`."""

    def replace(match: re.Match) -> str:
        if match["operator"] in (":-", "-"):
            return match["argument"]
        return f"<{match['name']}>"

    return _VARIABLE.sub(replace, value).replace("$$", "$")


def mounts(service: dict) -> list[dict]:
    """Return a service's volumes in long form: type, source, target, read_only."""
    parsed = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            parsed.append(entry)
            continue
        parts = with_defaults(entry).split(":")
        source, target = parts[0], parts[1]
        options = parts[2].split(",") if len(parts) > 2 else []
        is_path = source.startswith((".", "/", "~"))
        parsed.append(
            {
                "type": "bind" if is_path else "volume",
                "source": source,
                "target": target,
                "read_only": "ro" in options,
            }
        )
    return parsed


def mount_at(service: dict, target: str) -> dict | None:
    matches = [mount for mount in mounts(service) if mount["target"] == target]
    return matches[0] if matches else None


def command_option(service: dict, option: str) -> str:
    """Return the value of `--option=value` or `--option value` in a service's command."""
    command = service["command"]
    for index, argument in enumerate(command):
        if argument.startswith(f"{option}="):
            return argument.split("=", 1)[1]
        if argument == option:
            return command[index + 1]
    raise AssertionError(f"{option} not found in command {command}")


def gpu_devices(service: dict) -> list[dict]:
    reservations = service.get("deploy", {}).get("resources", {}).get("reservations", {})
    return [
        device
        for device in reservations.get("devices", [])
        if device.get("driver") == "nvidia" and "gpu" in device.get("capabilities", [])
    ]


# --- The Compose specification's schema ---------------------------------------------------


def test_compose_file_matches_schema(compose_schema: dict, compose: dict) -> None:
    assert schema_errors(compose_schema, compose) == []


def test_schema_rejects_misspelled_key(compose_schema: dict, compose: dict) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["webserver"]["prots"] = broken["services"]["webserver"].pop("ports")

    errors = schema_errors(compose_schema, broken)

    assert len(errors) == 1
    assert "prots" in errors[0]


# --- Start-up order and health ------------------------------------------------------------


def test_postgres_healthcheck_runs_pg_isready(compose: dict) -> None:
    postgres = compose["services"]["postgres"]

    assert postgres["image"] == "postgres:15"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert postgres["healthcheck"]["retries"] > 0


@pytest.mark.parametrize("service_name", DAGSTER_SERVICES)
def test_dagster_service_waits_for_healthy_postgres(compose: dict, service_name: str) -> None:
    depends_on = compose["services"][service_name]["depends_on"]

    assert depends_on["postgres"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service_name", ["webserver", "daemon"])
def test_service_waits_for_healthy_code_server(
    compose: dict, workspace_server: dict, service_name: str
) -> None:
    code_server = workspace_server["host"]
    depends_on = compose["services"][service_name]["depends_on"]

    assert depends_on[code_server]["condition"] == "service_healthy"
    assert "grpc-health-check" in compose["services"][code_server]["healthcheck"]["test"]


# --- Ports, volumes and the code location ---------------------------------------------------


def test_only_webserver_published_on_loopback(compose: dict) -> None:
    published = {name: service["ports"] for name, service in compose["services"].items() if "ports" in service}
    assert list(published) == ["webserver"]

    [port] = published["webserver"]
    host_ip, host_port, container_port = with_defaults(port).split(":")
    assert host_ip == "127.0.0.1"
    assert host_port == "3000"
    assert container_port == command_option(compose["services"]["webserver"], "--port")


def test_storage_root_shared_by_one_volume(compose: dict) -> None:
    storage_mounts = {}
    for name, service in compose["services"].items():
        storage_root = service.get("environment", {}).get("GEM_STORAGE_ROOT")
        if storage_root is None:
            continue
        mount = mount_at(service, storage_root)
        assert mount is not None, f"{name} sets GEM_STORAGE_ROOT={storage_root} but mounts nothing there"
        storage_mounts[name] = mount

    assert set(DAGSTER_SERVICES) <= set(storage_mounts)
    assert {mount["type"] for mount in storage_mounts.values()} == {"volume"}
    volumes = {mount["source"] for mount in storage_mounts.values()}
    assert len(volumes) == 1, storage_mounts
    assert volumes <= set(compose["volumes"])


def test_code_server_writes_storage_root(compose: dict, workspace_server: dict) -> None:
    code_server = compose["services"][workspace_server["host"]]
    mount = mount_at(code_server, code_server["environment"]["GEM_STORAGE_ROOT"])

    assert mount["read_only"] is False


def test_workspace_targets_code_server(compose: dict, workspace_server: dict) -> None:
    code_server = compose["services"][workspace_server["host"]]

    assert command_option(code_server, "--port") == str(workspace_server["port"])
    assert command_option(code_server, "--host") == "0.0.0.0"
    assert command_option(code_server, "--location-name") == workspace_server["location_name"]
    assert command_option(code_server, "--module-name") == "gem_dagster.definitions"


def test_dagster_services_build_one_image(compose: dict) -> None:
    services = compose["services"]
    images = {services[name]["image"] for name in DAGSTER_SERVICES}
    builds = [services[name]["build"] for name in DAGSTER_SERVICES]

    assert len(images) == 1
    assert all(build == {"context": ".", "dockerfile": "Dockerfile"} for build in builds)
    assert (REPO_ROOT / builds[0]["dockerfile"]).is_file()


@pytest.mark.parametrize("service_name", DAGSTER_SERVICES)
def test_deploy_config_mounted_in_dagster_home(compose: dict, service_name: str) -> None:
    service = compose["services"][service_name]
    dagster_home = service["environment"]["DAGSTER_HOME"]

    mount = mount_at(service, f"{dagster_home}/dagster.yaml")

    assert mount is not None
    assert mount["source"] == "./deploy/dagster.yaml"
    assert mount["read_only"] is True


@pytest.mark.parametrize("service_name", ["webserver", "daemon"])
def test_workspace_file_mounted_where_command_reads_it(compose: dict, service_name: str) -> None:
    service = compose["services"][service_name]

    mount = mount_at(service, command_option(service, "--workspace"))

    assert mount is not None
    assert mount["source"] == "./deploy/workspace.yaml"


@pytest.mark.parametrize("service_name", DAGSTER_SERVICES)
def test_dagster_service_uses_postgres_credentials(compose: dict, service_name: str) -> None:
    postgres_environment = compose["services"]["postgres"]["environment"]
    environment = compose["services"][service_name]["environment"]

    assert environment["DAGSTER_PG_HOST"] == "postgres"
    assert environment["DAGSTER_PG_USER"] == postgres_environment["POSTGRES_USER"]
    assert environment["DAGSTER_PG_PASSWORD"] == postgres_environment["POSTGRES_PASSWORD"]
    assert environment["DAGSTER_PG_DB"] == postgres_environment["POSTGRES_DB"]


def test_postgres_password_required(compose: dict) -> None:
    # `${NAME:?message}` makes Compose stop with the message when the variable is unset.
    password = compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]

    assert password.startswith("${DAGSTER_PG_PASSWORD:?")


# --- GPU ------------------------------------------------------------------------------------


def test_gpu_reserved_on_run_executing_service(
    compose: dict, instance_config: dict, workspace_server: dict
) -> None:
    # DefaultRunLauncher starts each run as a child process of the code server that the
    # workspace names, so that container is the one that needs the GPU.
    assert instance_config["run_launcher"]["class"] == "DefaultRunLauncher"
    code_server = compose["services"][workspace_server["host"]]

    assert len(gpu_devices(code_server)) == 1


class _OverrideLoader(yaml.SafeLoader):
    """YAML loader that parses Compose's `!reset` merge tag."""


_RESET = object()
_OverrideLoader.add_constructor("!reset", lambda loader, node: _RESET)


def merge_override(base: dict, override: dict) -> dict:
    """Merge mappings as Compose does and drop keys tagged `!reset`.

    Sequences are replaced rather than appended, which differs from Compose but does not
    matter for deploy/compose.cpu.yaml, which contains no sequence.
    """
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is _RESET:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_override(merged[key], value)
        else:
            merged[key] = value
    return merged


def test_cpu_override_removes_only_gpu_reservation(compose_schema: dict, compose: dict) -> None:
    override = yaml.load(CPU_OVERRIDE_FILE.read_text(), Loader=_OverrideLoader)

    merged = merge_override(compose, override)

    assert schema_errors(compose_schema, merged) == []
    assert all(gpu_devices(service) == [] for service in merged["services"].values())
    without_deploy = copy.deepcopy(compose)
    del without_deploy["services"]["gem-code"]["deploy"]
    assert merged == without_deploy


# --- deploy/dagster.yaml --------------------------------------------------------------------


def test_instance_config_stores_everything_in_postgres(instance_config: dict, compose: dict) -> None:
    connection = instance_config["storage"]["postgres"]["postgres_db"]
    variables = {
        field: connection[field]["env"] for field in ("hostname", "port", "username", "password", "db_name")
    }

    assert variables == {
        "hostname": "DAGSTER_PG_HOST",
        "port": "DAGSTER_PG_PORT",
        "username": "DAGSTER_PG_USER",
        "password": "DAGSTER_PG_PASSWORD",
        "db_name": "DAGSTER_PG_DB",
    }
    for service_name in DAGSTER_SERVICES:
        environment = compose["services"][service_name]["environment"]
        missing = set(variables.values()) - set(environment)
        assert not missing, f"{service_name} does not set {sorted(missing)}"


def test_instance_config_queues_runs(instance_config: dict) -> None:
    assert instance_config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert instance_config["concurrency"]["runs"]["max_concurrent_runs"] >= 1
    assert instance_config["telemetry"]["enabled"] is False


def test_every_pool_limited_to_one_slot(instance_config: dict) -> None:
    from gem_dagster.definitions import defs

    pools_in_use = {asset.op.pool for asset in defs.assets if asset.op.pool}
    pool_settings = instance_config["concurrency"]["pools"]

    assert {"gpu", "duckdb_writer"} <= pools_in_use
    # Dagster has no per-pool limit in dagster.yaml, so default_limit is the limit of every
    # pool until someone sets another one in the UI or with `dagster instance concurrency set`.
    assert pool_settings["default_limit"] == 1


def test_pool_policy_matches_local_instance(instance_config: dict) -> None:
    local_config = yaml.safe_load(LOCAL_INSTANCE_CONFIG.read_text())

    assert instance_config["concurrency"]["pools"] == local_config["concurrency"]["pools"]
