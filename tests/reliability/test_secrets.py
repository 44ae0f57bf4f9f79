"""Secrets stay in the environment, model files load without code execution, the UI is local.

The namer's log lines are checked in tests/taxonomy/test_chat_namer.py. The asset metadata
and event log of a real gis_taxonomy run are checked in test_pipeline_reruns.py.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from gem_dagster.embedding import resolve_model_path
from gem_dagster.resources import NamerResource
from gem_dagster.settings import PROJECT_ROOT

PACKAGE_ROOT = PROJECT_ROOT / "gem_dagster"
SECRET = "sk-reliability-test-0123456789"

# Calls that unpickle, and so can run arbitrary code from the file they read.
UNPICKLING_CALLS = {
    "pickle.load",
    "pickle.loads",
    "pickle.Unpickler",
    "_pickle.load",
    "_pickle.loads",
    "dill.load",
    "dill.loads",
    "cloudpickle.load",
    "cloudpickle.loads",
    "joblib.load",
    "pandas.read_pickle",
    "yaml.unsafe_load",
}


@dataclass(frozen=True)
class UnsafeCall:
    file: str
    line: int
    call: str
    reason: str


class UnsafeLoadFinder(ast.NodeVisitor):
    """Find calls that may deserialise code: unpickling, torch.load, numpy.load with pickles.

    Import aliases are resolved (``import numpy as np``, ``from torch import load``), so
    ``np.load`` is checked as ``numpy.load``.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.aliases: dict[str, str] = {}
        self.found: list[UnsafeCall] = []

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.aliases[alias.asname or alias.name.split(".")[0]] = (
                alias.name if alias.asname else alias.name.split(".")[0]
            )

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module is not None:
            for alias in node.names:
                self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def visit_Call(self, node: ast.Call) -> None:
        name = self._qualified_name(node.func)
        if name is not None:
            reason = self._unsafe_reason(name, node)
            if reason is not None:
                self.found.append(UnsafeCall(self.file, node.lineno, name, reason))
        self.generic_visit(node)

    def _qualified_name(self, expression: ast.expr) -> str | None:
        parts = []
        while isinstance(expression, ast.Attribute):
            parts.append(expression.attr)
            expression = expression.value
        if not isinstance(expression, ast.Name):
            return None
        parts.append(self.aliases.get(expression.id, expression.id))
        return ".".join(reversed(parts))

    @staticmethod
    def _unsafe_reason(name: str, node: ast.Call) -> str | None:
        keywords = {keyword.arg: keyword.value for keyword in node.keywords if keyword.arg}
        if name in UNPICKLING_CALLS:
            return "unpickles its input"
        if name == "torch.load":
            value = keywords.get("weights_only")
            if not (isinstance(value, ast.Constant) and value.value is True):
                return "torch.load without weights_only=True"
        if name == "numpy.load":
            value = keywords.get("allow_pickle")
            if value is not None and not (isinstance(value, ast.Constant) and value.value is False):
                return "numpy.load with allow_pickle other than False"
        if name == "yaml.load":
            loader = keywords.get("Loader")
            loader_name = ast.unparse(loader) if loader is not None else ""
            if not loader_name.endswith(("SafeLoader", "CSafeLoader")):
                return "yaml.load without a safe loader"
        value = keywords.get("trust_remote_code")
        if isinstance(value, ast.Constant) and value.value is True:
            return "trust_remote_code=True runs code shipped with a model"
        return None


def find_unsafe_calls(source: str, file: str) -> list[UnsafeCall]:
    finder = UnsafeLoadFinder(file)
    finder.visit(ast.parse(source, filename=file))
    return finder.found


def test_finder_flags_every_unsafe_form() -> None:
    source = "\n".join(
        [
            "import pickle",
            "import numpy as np",
            "import torch",
            "from torch import load as tload",
            "import joblib, yaml",
            "from sentence_transformers import SentenceTransformer",
            "pickle.load(handle)",
            "torch.load(path)",
            "tload(path, weights_only=False)",
            "np.load(path, allow_pickle=True)",
            "joblib.load(path)",
            "yaml.load(text)",
            "SentenceTransformer(path, trust_remote_code=True)",
            "torch.load(path, weights_only=True)",
            "np.load(path, allow_pickle=False)",
            "np.load(path)",
            "yaml.load(text, Loader=yaml.SafeLoader)",
        ]
    )

    found = find_unsafe_calls(source, "example.py")

    assert [call.line for call in found] == [7, 8, 9, 10, 11, 12, 13]


def test_package_never_loads_pickles() -> None:
    files = sorted(PACKAGE_ROOT.rglob("*.py"))
    assert len(files) > 20, "the package folder was not found"

    found = []
    for path in files:
        found += find_unsafe_calls(path.read_text(encoding="utf-8"), str(path.relative_to(PROJECT_ROOT)))

    assert found == []


def test_bundled_model_has_only_safetensors() -> None:
    model_folder = resolve_model_path(None)

    weight_suffixes = {".safetensors", ".bin", ".pt", ".pth", ".pkl", ".ckpt"}
    weight_files = sorted(path.name for path in model_folder.rglob("*") if path.suffix in weight_suffixes)

    # transformers reads safetensors without unpickling anything.
    assert weight_files == ["model.safetensors"]


def test_namer_key_only_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GEM_TEST_NAMER_KEY", SECRET)
    resource = NamerResource(base_url="http://127.0.0.1:9/v1", model="m", api_key_env="GEM_TEST_NAMER_KEY")

    namer = resource.namer(str(tmp_path / "cache"))

    # The resource's configuration, which Dagster stores with every run, names the variable only.
    assert "api_key" not in NamerResource.model_fields
    assert SECRET not in repr(resource)
    assert SECRET not in str(resource.model_dump())
    assert namer is not None
    assert SECRET not in repr(namer)


def test_namer_without_key_variable_sends_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GEM_TEST_NAMER_KEY", raising=False)
    resource = NamerResource(base_url="http://127.0.0.1:9/v1", model="m", api_key_env="GEM_TEST_NAMER_KEY")

    namer = resource.namer(str(tmp_path / "cache"))

    assert namer is not None
    assert "api_key=None" in repr(namer)


def make_recipe(target: str) -> list[str]:
    """Return the recipe lines of one Makefile target."""
    lines = (PROJECT_ROOT / "Makefile").read_text().splitlines()
    start = next(index for index, line in enumerate(lines) if re.match(rf"^{target}\s*:", line))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def test_ui_target_binds_loopback() -> None:
    recipe = make_recipe("ui")

    servers = [line for line in recipe if "dagster dev" in line or "dagster-webserver" in line]
    assert len(servers) == 1
    assert re.search(r"(-h|--host) 127\.0\.0\.1\b", servers[0])


def test_package_binds_no_wildcard_address() -> None:
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}:{number}"
        for path in sorted(PACKAGE_ROOT.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if "0.0.0.0" in line
    ]

    assert offenders == []
