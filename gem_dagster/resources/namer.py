"""Namer resource: optional chat model behind an OpenAI-compatible endpoint for cluster names."""

import os

import dagster as dg

from gem_dagster.taxonomy import ChatNamer


class NamerResource(dg.ConfigurableResource):
    """Endpoint settings for naming clusters with a chat model.

    Leave ``base_url`` empty to name clusters from their keywords. The API key is read from
    the environment variable named by ``api_key_env`` when the namer is built, so it never
    appears in run configuration, logs or metadata.
    """

    base_url: str = ""
    model: str = ""
    api_key_env: str = "GEM_NAMER_API_KEY"
    timeout_seconds: float = 30.0
    max_retries: int = 2

    @property
    def enabled(self) -> bool:
        return bool(self.base_url)

    def namer(self, cache_dir: str) -> ChatNamer | None:
        """Return a ChatNamer, or None when no endpoint is configured."""
        if not self.enabled:
            return None
        if not self.model:
            raise ValueError(
                f"namer base_url is set to {self.base_url!r} but model is empty: set "
                "GEM_NAMER_MODEL to the model name the endpoint serves"
            )
        return ChatNamer(
            self.base_url,
            self.model,
            os.environ.get(self.api_key_env) or None,
            timeout=self.timeout_seconds,
            max_retries=self.max_retries,
            cache_dir=cache_dir,
        )
