"""Invalid settings fail when the settings load, naming the setting and what it accepts."""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from gem_dagster.settings import GemSettings, SettingsError, get_settings

from .conftest import child_environment

# (environment variable, value, setting named in the error, words that give the allowed values)
INVALID_ENVIRONMENT = [
    ("GEM_N_CLUSTERS", "1", "n_clusters", "greater than or equal to 2"),
    ("GEM_N_CLUSTERS", "four", "n_clusters", "valid integer"),
    ("GEM_BALANCE", "-0.5", "balance", "use a number >= 0 or 'auto'"),
    ("GEM_BALANCE", "strong", "balance", "Input should be 'auto'"),
    ("GEM_DEVICE", "tpu", "device", "use one of 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    ("GEM_DEVICE", "cuda:x", "device", "use one of 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    ("GEM_E_STEP", "newton", "e_step", "Input should be 'dual' or 'mm'"),
    ("GEM_MAX_RECORD_BYTES", "10", "max_record_bytes", "greater than or equal to 1024"),
    ("GEM_SEED_SAMPLE_DOCUMENTS", "many", "seed_sample_documents", "valid integer"),
    ("GEM_STUDENT_QUANTIZE", "perhaps", "student_quantize", "valid boolean"),
    ("GEM_METADATA_FIELDS", "source", "metadata_fields", 'must be a JSON list of field names'),
    ("GEM_METADATA_FIELDS", '{"source": 1}', "metadata_fields", "valid list"),
]


@pytest.mark.parametrize(
    ("variable", "value", "setting", "allowed"),
    INVALID_ENVIRONMENT,
    ids=[f"{variable}={value}" for variable, value, _, _ in INVALID_ENVIRONMENT],
)
def test_invalid_environment_names_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, setting: str, allowed: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ValidationError) as raised:
        GemSettings()

    errors = raised.value.errors()
    assert {error["loc"][0] for error in errors} == {setting}
    assert allowed in str(raised.value)


def test_missing_corpus_root_names_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "no_such_corpus"
    monkeypatch.setenv("GEM_CORPUS_ROOT", str(missing))

    with pytest.raises(ValidationError) as raised:
        GemSettings()

    assert [error["loc"] for error in raised.value.errors()] == [("corpus_root",)]
    message = str(raised.value)
    assert f"corpus root {missing} does not exist or is not a folder" in message
    assert "set GEM_CORPUS_ROOT to the folder that holds your shard files" in message


def test_file_as_corpus_root_is_rejected(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "shard.jsonl"
    not_a_folder.write_text("{}\n")

    with pytest.raises(ValidationError, match="is not a folder: set GEM_CORPUS_ROOT"):
        GemSettings(corpus_root=not_a_folder)


@pytest.mark.parametrize(
    ("options", "setting"),
    [({"n_clusters": 0}, "n_clusters"), ({"balance": -1.0}, "balance"), ({"device": "gpu"}, "device")],
)
def test_invalid_keyword_names_setting(options: dict, setting: str) -> None:
    with pytest.raises(ValidationError) as raised:
        GemSettings(**options)

    assert [error["loc"][0] for error in raised.value.errors()] == [setting]


def test_valid_edge_values_load(tmp_path: Path) -> None:
    settings = GemSettings(
        corpus_root=tmp_path, n_clusters=2, balance=0.0, device="cuda:1", metadata_fields=[]
    )

    assert settings.n_clusters == 2
    assert settings.balance == 0.0
    assert settings.device == "cuda:1"
    assert settings.metadata_fields == []
    assert settings.corpus_root == str(tmp_path.resolve())


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("GEM_N_CLUSTERS", "1", "invalid setting GEM_N_CLUSTERS='1': Input should be greater than or equal to 2"),
        ("GEM_CORPUS_ROOT", "/no/such/corpus", "corpus root /no/such/corpus does not exist"),
        ("GEM_METADATA_FIELDS", "source", "GEM_METADATA_FIELDS must be a JSON list"),
    ],
)
def test_definitions_fail_to_load(tmp_path: Path, variable: str, value: str, expected: str) -> None:
    # `dagster definitions validate` loads the code location the way the webserver and the
    # daemon do, so a bad setting must stop it here, before any run is launched.
    environment = child_environment(DAGSTER_HOME=str(tmp_path), **{variable: value})

    completed = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "gem_dagster.definitions"],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )

    output = completed.stdout + completed.stderr
    assert completed.returncode == 1, output[-2000:]
    assert "SettingsError: invalid setting" in output
    assert expected in output


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    """Make get_settings read the environment again, before and after the test."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("fresh_settings")
def test_error_names_variable_and_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEM_N_CLUSTERS", "1")
    monkeypatch.setenv("GEM_DEVICE", "tpu")

    with pytest.raises(SettingsError) as raised:
        get_settings()

    lines = str(raised.value).splitlines()
    assert "invalid setting GEM_N_CLUSTERS='1': Input should be greater than or equal to 2" in lines
    assert any(line.startswith("invalid setting GEM_DEVICE='tpu': invalid device") for line in lines)
    assert len(lines) == 2


@pytest.mark.usefixtures("fresh_settings")
def test_cross_setting_error_names_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEM_N_CLUSTERS", "50")
    monkeypatch.setenv("GEM_SEED_SAMPLE_DOCUMENTS", "10")

    with pytest.raises(SettingsError) as raised:
        get_settings()

    message = str(raised.value)
    assert message.startswith("invalid settings: GEM_SEED_SAMPLE_DOCUMENTS=10 is smaller than")
    assert "GEM_N_CLUSTERS=50" in message


@pytest.mark.usefixtures("fresh_settings")
def test_misspelt_variable_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEM_N_CLUSTER", "32")

    with pytest.warns(UserWarning, match="GEM_N_CLUSTER is not a gem_dagster setting") as caught:
        settings = get_settings()

    assert "did you mean GEM_N_CLUSTERS?" in str(caught[0].message)
    assert settings.n_clusters == GemSettings.model_fields["n_clusters"].default


@pytest.mark.usefixtures("fresh_settings")
def test_deployment_variables_do_not_warn(monkeypatch: pytest.MonkeyPatch) -> None:
    # Variables of the Compose file, the benchmarks, the tests and the namer's key.
    for variable in ("GEM_CORPUS_DIR", "GEM_UI_PORT", "GEM_EVAL_CORPORA", "GEM_NAMER_API_KEY"):
        monkeypatch.setenv(variable, "x")

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        get_settings()
