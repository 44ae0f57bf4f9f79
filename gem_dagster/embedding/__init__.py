"""Text to unit vectors with a local sentence-transformers model, and token counting."""

from gem_dagster.embedding.encoder import TextEmbedder
from gem_dagster.embedding.models import default_model_path, resolve_model_path
from gem_dagster.embedding.tokens import TokenCounter

__all__ = ["TextEmbedder", "TokenCounter", "default_model_path", "resolve_model_path"]
