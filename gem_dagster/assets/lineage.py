"""Find the exact artefact an upstream asset produced in its latest materialisation.

Unpartitioned assets write into a folder per run and record the file in the ``path``
metadata entry. Downstream assets read that entry instead of guessing a folder, so every
artefact is traceable to the run that made it.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg


class UpstreamNotMaterializedError(RuntimeError):
    """An upstream asset without a materialisation that records its artefact path."""


def upstream_path(context: dg.AssetExecutionContext, asset: str) -> Path:
    """Return the artefact path recorded by the latest materialisation of ``asset``."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey(asset))
    if event is None or event.asset_materialization is None:
        raise UpstreamNotMaterializedError(
            f"asset {asset!r} has no materialisation yet: materialise it before "
            f"{context.asset_key.to_user_string()!r}"
        )
    entry = event.asset_materialization.metadata.get("path")
    if entry is None:
        raise UpstreamNotMaterializedError(
            f"the latest materialisation of {asset!r} records no 'path' metadata: "
            "re-materialise it with this version of gem_dagster"
        )
    path = Path(str(entry.value))
    # One Dagster instance can record runs of several storage roots (a second corpus run
    # with the same DAGSTER_HOME). An artefact from another root must not be mixed in.
    warehouse = getattr(context.resources, "warehouse", None)
    if warehouse is not None:
        storage_root = Path(warehouse.storage_root).resolve()
        if not path.resolve().is_relative_to(storage_root):
            raise UpstreamNotMaterializedError(
                f"the latest materialisation of {asset!r} wrote {path}, outside this "
                f"deployment's storage root {storage_root}: give each storage root its own "
                f"DAGSTER_HOME, or re-materialise {asset!r} here"
            )
    if not path.exists():
        raise UpstreamNotMaterializedError(
            f"artefact {path} of asset {asset!r} no longer exists: re-materialise {asset!r}"
        )
    return path


def markdown_table(rows: list[dict[str, object]]) -> str:
    """Render rows of equal keys as a Markdown table for asset metadata."""
    if not rows:
        return "(no rows)"
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(row[name]).replace("|", "\\|").replace("\n", " ") for name in header]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
