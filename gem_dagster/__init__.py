"""gem_dagster: balanced semantic domains and mixture weights for pre-training corpora."""

__version__ = "0.1.0"
