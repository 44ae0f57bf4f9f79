"""Mixing assets: documents and tokens per domain, and mixture weights per strategy."""

import json
import os

import numpy as np
import polars as pl

import dagster as dg
from gem_dagster.assets.charts import weight_bars
from gem_dagster.assets.lineage import markdown_table
from gem_dagster.assets.student import cluster_assignments
from gem_dagster.mixing import DomainStats, compute_weights
from gem_dagster.partitions import strategy_partitions
from gem_dagster.resources import WarehouseResource
from gem_dagster.settings import get_settings
from gem_dagster.warehouse import write_table_atomically
from gem_dagster.warehouse.schemas import MIXTURE_SCHEMA

WEIGHTS_CHECK = "weights_valid"
_SETTINGS = get_settings()


@dg.asset(deps=[cluster_assignments], group_name="mixing", kinds={"duckdb"}, pool="duckdb_writer")
def domain_stats(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Documents and tokens per domain over every shard (DuckDB table domain_stats). Tokens
    are counted at ingestion with the embedder's own tokenizer."""
    catalog = warehouse.catalog
    with catalog.connect() as connection:
        catalog.refresh_views(connection)
        connection.execute("BEGIN TRANSACTION")
        connection.execute(
            """
            CREATE OR REPLACE TABLE domain_stats AS
            SELECT c.cluster_id, c.name,
                   coalesce(s.documents, 0)::BIGINT AS documents, coalesce(s.tokens, 0)::BIGINT AS tokens
            FROM teacher_clusters AS c
            LEFT JOIN (
                -- Ids are unique within a shard, so (shard, id) identifies a document.
                SELECT a.cluster_id, count(*) AS documents, sum(d.n_tokens) AS tokens
                FROM cluster_assignments AS a JOIN documents AS d USING (shard, id)
                GROUP BY a.cluster_id
            ) AS s USING (cluster_id)
            ORDER BY c.cluster_id
            """
        )
        connection.execute("COMMIT")
        frame = connection.execute("SELECT * FROM domain_stats ORDER BY cluster_id").pl()
        unassigned = connection.execute(
            "SELECT count(*) FROM documents AS d ANTI JOIN cluster_assignments AS a USING (shard, id)"
        ).fetchone()[0]

    if unassigned:
        context.log.warning(
            f"{unassigned:,} documents have no cluster assignment: materialise the missing "
            "cluster_assignments partitions"
        )
    context.log.info(
        f"domain statistics: {int(frame['documents'].sum()):,} documents, "
        f"{int(frame['tokens'].sum()):,} tokens over {frame.height} domains"
    )
    return dg.MaterializeResult(
        metadata={
            "domains": frame.height,
            "documents": int(frame["documents"].sum()),
            "tokens": int(frame["tokens"].sum()),
            "unassigned_documents": int(unassigned),
            "table": dg.MetadataValue.md(markdown_table(frame.to_dicts())),
        }
    )


class MixtureConfig(dg.Config):
    """Token budget and limits of the mixture; defaults come from the GEM_* settings."""

    token_budget: int | None = _SETTINGS.mix_token_budget
    max_epochs: float = _SETTINGS.mix_max_epochs
    min_weight: float = _SETTINGS.mix_min_weight
    temperature: float = _SETTINGS.mix_temperature


@dg.asset(
    deps=[domain_stats],
    partitions_def=strategy_partitions,
    group_name="mixing",
    kinds={"parquet", "json"},
    check_specs=[
        dg.AssetCheckSpec(
            WEIGHTS_CHECK,
            asset="mixture_weights",
            blocking=True,
            description="Weights are non-negative, sum to 1, and no domain exceeds the epoch cap.",
        )
    ],
)
def mixture_weights(
    context: dg.AssetExecutionContext, config: MixtureConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Weight per domain for one mixing strategy, with the tokens and epochs it implies for
    the token budget (DuckDB view mixture_weights, plus weights.json)."""
    strategy = context.partition_key
    with warehouse.catalog.connect(read_only=True) as connection:
        frame = connection.execute("SELECT * FROM domain_stats ORDER BY cluster_id").pl()
    stats = DomainStats.from_frame(frame)
    budget = config.token_budget or int(stats.total_tokens)
    params = {"tau": config.temperature} if strategy == "temperature" else {}

    mixture = compute_weights(
        strategy, stats, budget, max_epochs=config.max_epochs, min_weight=config.min_weight, **params
    )
    table = pl.DataFrame(
        {
            "strategy": [strategy] * stats.n_domains,
            "cluster_id": mixture.cluster_ids.astype(np.int64),
            "name": frame["name"],
            "weight": mixture.weights,
            "tokens": np.rint(mixture.tokens_allocated).astype(np.int64),
            "epochs": mixture.epochs,
        }
    )
    target = warehouse.layout.mixture_file(strategy)
    write_table_atomically(target, table.to_arrow().cast(MIXTURE_SCHEMA))
    weights_file = target.parent / "weights.json"
    temporary = weights_file.parent / ".weights.json.tmp"
    temporary.write_text(
        json.dumps(
            {"strategy": strategy, "token_budget": budget, "max_epochs": config.max_epochs,
             "min_weight": config.min_weight, "params": params, "domains": table.to_dicts()},
            indent=1,
        )
    )
    os.replace(temporary, weights_file)

    valid = bool(
        np.all(mixture.weights >= 0)
        and abs(mixture.weights.sum() - 1.0) < 1e-9
        and np.all(mixture.epochs <= config.max_epochs * (1 + 1e-9))
    )
    context.log.info(
        f"{strategy}: weights {mixture.weights.min():.4f}-{mixture.weights.max():.4f} over "
        f"{stats.n_domains} domains for {budget:,} tokens, at most {mixture.epochs.max():.2f} epochs"
    )
    rows = [
        {"cluster": row["cluster_id"], "name": row["name"], "weight": f"{row['weight']:.4f}",
         "tokens": f"{row['tokens']:,}", "epochs": f"{row['epochs']:.2f}"}
        for row in table.iter_rows(named=True)
    ]
    return dg.MaterializeResult(
        metadata={
            "token_budget": budget,
            "max_epochs_used": float(mixture.epochs.max()),
            "weights": dg.MetadataValue.md(markdown_table(rows)),
            "chart": dg.MetadataValue.md(weight_bars(mixture.weights, [str(n) for n in frame["name"]])),
            "path": dg.MetadataValue.path(str(weights_file)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=WEIGHTS_CHECK,
                passed=valid,
                metadata={"sum": float(mixture.weights.sum()), "max_epochs": float(mixture.epochs.max())},
            )
        ],
    )
