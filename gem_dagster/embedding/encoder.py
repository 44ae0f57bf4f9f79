"""Turn texts into unit-norm float32 vectors with a local sentence-transformers model."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from gem_dagster.embedding.models import resolve_model_path

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, float], None]


class TextEmbedder:
    """Encode texts in batches into an (n_texts, dim) float32 array of unit vectors.

    The model is loaded on first use: importing sentence-transformers takes several seconds,
    which must not slow down loading the Dagster code location.

    Parameters
    ----------
    model : str or Path or None
        Local model folder; None selects the bundled all-MiniLM-L6-v2 weights.
    device : str
        Torch device string (``cpu``, ``cuda``, ``cuda:N``).
    batch_size : int
        Texts per forward pass.
    max_seq_length : int
        Tokens kept per text; longer texts are truncated by the model.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        device: str = "cpu",
        batch_size: int = 64,
        max_seq_length: int = 128,
    ) -> None:
        self.model_path = resolve_model_path(model)
        self.device = device
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self._model = None

    @property
    def model(self):
        if self._model is None:
            # The weights are on disk; offline mode makes any attempt to reach a hub an error.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(self.model_path), device=self.device)
            self._model.max_seq_length = self.max_seq_length
        return self._model

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def encode(
        self,
        texts: Sequence[str],
        progress: ProgressCallback | None = None,
        progress_every: int = 20,
    ) -> np.ndarray:
        """Return unit-norm embeddings of shape (len(texts), dimension), float32.

        ``progress(done, total, seconds)`` is called every ``progress_every`` batches.
        """
        total = len(texts)
        output = np.empty((total, self.dimension), dtype=np.float32)
        started = time.perf_counter()

        # Sorting by length keeps padding low inside each batch; rows go back in input order.
        order = np.argsort([-len(text) for text in texts], kind="stable")
        for batch_number, start in enumerate(range(0, total, self.batch_size)):
            rows = order[start : start + self.batch_size]
            vectors = self.model.encode(
                [texts[row] for row in rows],
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            output[rows] = vectors.astype(np.float32, copy=False)
            if progress is not None and (batch_number + 1) % progress_every == 0:
                progress(min(start + self.batch_size, total), total, time.perf_counter() - started)

        _check_unit_norm(output)
        return output


def _check_unit_norm(vectors: np.ndarray) -> None:
    norms = np.linalg.norm(vectors, axis=1)
    bad = np.flatnonzero(~np.isfinite(norms) | (np.abs(norms - 1.0) > 1e-3))
    if bad.size:
        raise ValueError(
            f"embedder returned {bad.size} vectors that are not unit-norm (first row {bad[0]}, "
            f"norm {norms[bad[0]]:.4g}); check the model folder"
        )
