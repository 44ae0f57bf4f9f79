"""Mixing assets: documents and tokens per domain, and mixture weights per strategy."""

import json
import os
from dataclasses import replace

import duckdb
import numpy as np
import polars as pl

import dagster as dg
from gem_dagster.assets.charts import weight_bars
from gem_dagster.assets.lineage import markdown_table, upstream_path
from gem_dagster.assets.student import cluster_assignments
from gem_dagster.clustering import find_objective_decreases
from gem_dagster.mixing import PROXY_MODEL_STRATEGIES, DomainStats, compute_weights, plan_selection
from gem_dagster.mixing.presets import resolve_plan
from gem_dagster.mixing.streams import TokenStreams, build_token_streams
from gem_dagster.partitions import strategy_partitions
from gem_dagster.resources import ComputeResource, EmbedderResource, WarehouseResource
from gem_dagster.settings import get_settings
from gem_dagster.warehouse import write_table_atomically
from gem_dagster.warehouse.schemas import MIXTURE_SCHEMA

WEIGHTS_CHECK = "weights_valid"
_SETTINGS = get_settings()
_PROXY_PLAN = resolve_plan(_SETTINGS)


@dg.asset(
    deps=[cluster_assignments],
    group_name="mixing",
    kinds={"duckdb"},
    pool="duckdb_writer",
    # With automation on, the counts follow every change of the assignments.
    automation_condition=dg.AutomationCondition.eager(),
)
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


# Documents are taken per domain in an order fixed by the seed (md5 of seed, shard and id),
# until the domain's running token count reaches the budget.
_PROXY_DOCUMENTS_SQL = """
WITH ranked AS (
    SELECT a.cluster_id, d.text, d.n_tokens,
           sum(d.n_tokens) OVER (
               PARTITION BY a.cluster_id
               ORDER BY md5(CAST(? AS VARCHAR) || '/' || d.shard || '/' || d.id)
               ROWS UNBOUNDED PRECEDING
           ) AS running_tokens
    FROM cluster_assignments AS a JOIN documents AS d USING (shard, id)
)
SELECT cluster_id, text FROM ranked
WHERE running_tokens - n_tokens < ?
ORDER BY cluster_id, running_tokens
"""
_ENCODE_BATCH = 512


class ProxyStreamsConfig(dg.Config):
    """Size of the proxy training text; defaults come from the proxy preset (GEM_PROXY_*)."""

    tokens_per_domain: int = _PROXY_PLAN.tokens_per_domain
    vocabulary: int = _PROXY_PLAN.vocabulary


@dg.asset(deps=[cluster_assignments], group_name="mixing", kinds={"numpy"})
def proxy_token_streams(
    context: dg.AssetExecutionContext,
    config: ProxyStreamsConfig,
    warehouse: WarehouseResource,
    embedder: EmbedderResource,
) -> dg.MaterializeResult:
    """Tokenised training text per domain for the proxy language models of DoReMi, RegMix and
    PerfRe: up to the preset's tokens per domain, in the embedder's tokens, as an .npz file."""
    settings = get_settings()
    counter = embedder.token_counter()

    def encoded_documents():
        with warehouse.catalog.connect(read_only=True) as connection:
            cursor = connection.execute(_PROXY_DOCUMENTS_SQL, [settings.seed, config.tokens_per_domain])
            while batch := cursor.fetchmany(_ENCODE_BATCH):
                token_ids = counter.encode([text for _, text in batch])
                yield from zip((cluster_id for cluster_id, _ in batch), token_ids)

    streams = build_token_streams(encoded_documents(), config.vocabulary)
    folder = warehouse.layout.run_folder("proxy_token_streams", context.run.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "token_streams.npz"
    streams.save(target)

    tokens = streams.tokens_per_domain()
    context.log.info(
        f"proxy token streams: {sum(tokens.values()):,} tokens over {len(tokens)} domains, "
        f"vocabulary {streams.vocab_size:,} ids ({streams.other_share():.1%} of tokens outside it)"
    )
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(target)),
            "preset": settings.proxy_preset,
            "vocab_size": streams.vocab_size,
            "share_outside_vocabulary": round(streams.other_share(), 4),
            "tokens": sum(tokens.values()),
            "tokens_per_domain": dg.MetadataValue.md(
                markdown_table([{"cluster": c, "tokens": f"{n:,}"} for c, n in tokens.items()])
            ),
        }
    )


class MixtureConfig(dg.Config):
    """Token budget and limits of the mixture; defaults come from the GEM_* settings."""

    token_budget: int | None = _SETTINGS.mix_token_budget
    max_epochs: float = _SETTINGS.mix_max_epochs
    min_weight: float = _SETTINGS.mix_min_weight
    temperature: float = _SETTINGS.mix_temperature
    proxy_steps: int = _PROXY_PLAN.steps
    regmix_mixtures: int = _PROXY_PLAN.regmix_mixtures


@dg.asset(
    deps=[domain_stats, proxy_token_streams],
    partitions_def=strategy_partitions,
    group_name="mixing",
    kinds={"parquet", "json"},
    # The proxy model strategies train on the compute device; the others finish in
    # milliseconds, so sharing the pool costs them nothing.
    pool="gpu",
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
    context: dg.AssetExecutionContext,
    config: MixtureConfig,
    warehouse: WarehouseResource,
    compute: ComputeResource,
) -> dg.MaterializeResult:
    """Weight per domain for one mixing strategy, with the tokens and epochs it implies for
    the token budget (DuckDB view mixture_weights, plus weights.json). DoReMi, RegMix and
    PerfRe train proxy language models on proxy_token_streams; the others use only counts."""
    strategy = context.partition_key
    with warehouse.catalog.connect(read_only=True) as connection:
        frame = connection.execute("SELECT * FROM domain_stats ORDER BY cluster_id").pl()
    stats = DomainStats.from_frame(frame)
    budget = config.token_budget or int(stats.total_tokens)
    params = {"tau": config.temperature} if strategy == "temperature" else {}
    if strategy in PROXY_MODEL_STRATEGIES:
        params = _proxy_parameters(context, config, strategy, stats, compute.torch_device())

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
             "min_weight": config.min_weight, "params": mixture.params, "domains": table.to_dicts()},
            indent=1,
            # Strategy parameters may hold NumPy scalars (for example RegMix's Spearman).
            default=float,
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
    proxy_metadata = {}
    if strategy in PROXY_MODEL_STRATEGIES:
        proxy_metadata["proxy"] = dg.MetadataValue.json(mixture.params["proxy"])
    if "spearman" in mixture.params:
        proxy_metadata["regmix_heldout_spearman"] = float(mixture.params["spearman"])
    return dg.MaterializeResult(
        metadata={
            **proxy_metadata,
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


def _proxy_parameters(
    context: dg.AssetExecutionContext,
    config: MixtureConfig,
    strategy: str,
    stats: DomainStats,
    device: str,
) -> dict:
    """Load the token streams and build the proxy configuration for DoReMi, RegMix or PerfRe."""
    settings = get_settings()
    plan = replace(_PROXY_PLAN, steps=config.proxy_steps, regmix_mixtures=config.regmix_mixtures)
    streams = TokenStreams.load(upstream_path(context, "proxy_token_streams"))

    # Every domain with tokens needs a stream. A stream asset older than the latest
    # assignments can lack one, and the error explains how to refresh it.
    missing = sorted(set(int(c) for c in stats.cluster_ids[stats.tokens > 0]) - set(streams.domains))
    if missing:
        raise ValueError(
            f"domains {missing} have tokens in domain_stats but no proxy token stream: "
            "re-materialise proxy_token_streams after the latest cluster_assignments"
        )
    proxy = plan.proxy_config(streams.vocab_size, device, settings.seed)
    active_domains = int(np.count_nonzero(stats.tokens))
    if strategy == "doremi" and proxy.batch_size < active_domains:
        # DoReMi draws every domain into each batch, so a batch needs one row per domain.
        context.log.info(
            f"doremi: batch raised from {proxy.batch_size} to {active_domains} rows, one per domain"
        )
        proxy = replace(proxy, batch_size=active_domains)
    context.log.info(
        f"{strategy}: proxy d_model={proxy.d_model} layers={proxy.n_layers} seq_len={proxy.seq_len} "
        f"batch={proxy.batch_size} steps={proxy.steps} vocabulary={proxy.vocab_size} on {device}"
    )
    params: dict = {"token_streams": streams.domains, "proxy": proxy}
    if strategy == "regmix":
        params.update(n_mixtures=plan.regmix_mixtures, seed=settings.seed)
    return params


EXPORT_GATE_CHECK = "export_matches_weights"


class TrainingMixConfig(dg.Config):
    """Shuffle seed and output shard size of the exported mix."""

    seed: int = _SETTINGS.seed
    shard_documents: int = _SETTINGS.export_shard_documents


@dg.asset(
    deps=[mixture_weights, cluster_assignments],
    partitions_def=strategy_partitions,
    group_name="mixing",
    kinds={"parquet"},
    check_specs=[
        dg.AssetCheckSpec(
            EXPORT_GATE_CHECK,
            asset="training_mix",
            description="Exported tokens per domain fall short of weight x budget by less than "
            "the domain's longest document, and no domain exceeds the epoch cap.",
        )
    ],
)
def training_mix(
    context: dg.AssetExecutionContext, config: TrainingMixConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Token-budgeted training set for one strategy: documents sampled per domain by weight,
    shuffled deterministically, in Parquet shards (id, text, cluster) with manifest.json and a
    Megatron-LM style blend file."""
    strategy = context.partition_key
    layout = warehouse.layout
    _reject_untrusted_inputs(context, layout, strategy)
    weights = json.loads((layout.mixture_file(strategy).parent / "weights.json").read_text())
    budget = int(weights["token_budget"])
    targets = {int(row["cluster_id"]): int(round(row["weight"] * budget)) for row in weights["domains"]}

    folder = layout.root / "export" / strategy / context.run.run_id
    folder.mkdir(parents=True, exist_ok=True)

    with duckdb.connect() as connection:
        # An in-memory database over the Parquet files: partitioned assets never open the
        # catalog file, which allows one writer only. The catalog's views keep one copy of an
        # id repeated across shards, so the export never contains a document twice.
        warehouse.catalog.refresh_views(connection)
        connection.execute(
            """
            CREATE VIEW labelled AS
            SELECT a.shard, a.id, a.cluster_id, d.n_tokens
            FROM cluster_assignments AS a JOIN documents AS d USING (shard, id)
            """
        )
        corpus_tokens = dict(
            connection.execute(
                "SELECT cluster_id, sum(n_tokens)::BIGINT FROM labelled GROUP BY cluster_id"
            ).fetchall()
        )
        selection = plan_selection(connection, targets, config.seed).with_row_index("position")
        connection.register("selection", selection.to_arrow())
        rows = connection.execute(
            """
            SELECT s.id, s.shard, s.cluster_id AS cluster, s.pass, d.text, d.n_tokens
            FROM selection AS s JOIN documents AS d USING (shard, id)
            ORDER BY s.position
            """
        ).pl()

    parts = []
    for number, start in enumerate(range(0, rows.height, config.shard_documents)):
        part = folder / f"part-{number:05d}.parquet"
        chunk = rows.slice(start, config.shard_documents)
        write_table_atomically(part, chunk.select("id", "text", "cluster").to_arrow())
        parts.append((part, int(chunk["n_tokens"].sum())))

    exported = rows.group_by("cluster").agg(
        pl.len().alias("documents"), pl.col("n_tokens").sum().alias("tokens"), pl.col("pass").max().alias("passes")
    )
    exported_tokens = dict(zip(exported["cluster"].to_list(), exported["tokens"].to_list()))
    domain_rows = {int(row["cluster_id"]): row for row in weights["domains"]}
    longest = dict(rows.group_by("cluster").agg(pl.col("n_tokens").max()).iter_rows())
    shortfalls = {
        cluster: targets[cluster] - int(exported_tokens.get(cluster, 0)) for cluster in targets
    }
    within = all(
        0 <= shortfall <= max(int(longest.get(cluster, 0)), 0) for cluster, shortfall in shortfalls.items()
    )
    total_tokens = sum(tokens for _, tokens in parts)

    manifest = {
        "strategy": strategy,
        "seed": config.seed,
        "token_budget": budget,
        "exported_tokens": total_tokens,
        "documents": rows.height,
        "domains": [
            {"cluster_id": cluster, "name": domain_rows[cluster]["name"],
             "weight": domain_rows[cluster]["weight"], "target_tokens": targets[cluster],
             "exported_tokens": int(exported_tokens.get(cluster, 0)),
             "epochs": float(exported_tokens.get(cluster, 0)) / max(corpus_tokens.get(cluster, 0), 1)}
            for cluster in sorted(targets)
        ],
        "shards": [{"path": part.name, "tokens": tokens} for part, tokens in parts],
        "inputs": _input_runs(context, strategy),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    # Megatron-LM reads a blend as alternating weight and path; each shard is already mixed,
    # so its weight is its share of the exported tokens.
    blend = " ".join(f"{tokens / max(total_tokens, 1):.6f} {part}" for part, tokens in parts)
    (folder / "blend.txt").write_text(blend + "\n")

    context.log.info(
        f"{strategy}: exported {rows.height:,} documents, {total_tokens:,} of {budget:,} budget "
        f"tokens in {len(parts)} shards to {folder}"
    )
    return dg.MaterializeResult(
        metadata={
            "documents": rows.height,
            "exported_tokens": total_tokens,
            "token_budget": budget,
            "shards": len(parts),
            "path": dg.MetadataValue.path(str(folder / "manifest.json")),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=EXPORT_GATE_CHECK,
                passed=within,
                metadata={"largest_shortfall_tokens": max(shortfalls.values(), default=0)},
            )
        ],
    )


def _reject_untrusted_inputs(context: dg.AssetExecutionContext, layout, strategy: str) -> None:
    """Raise before exporting from a teacher whose objective decreased or invalid weights."""
    teacher = np.load(upstream_path(context, "teacher_clustering"), allow_pickle=False)
    decreases = find_objective_decreases(teacher["objective_trace"])
    if decreases.size:
        raise RuntimeError(
            f"refusing to export: the teacher's objective decreased at half-steps "
            f"{decreases.tolist()[:5]}, so its clusters are not trustworthy; refit teacher_clustering"
        )

    weights_file = layout.mixture_file(strategy).parent / "weights.json"
    if not weights_file.exists():
        raise FileNotFoundError(f"no weights for strategy {strategy!r}: materialise mixture_weights first")
    weights = json.loads(weights_file.read_text())
    values = np.array([row["weight"] for row in weights["domains"]], dtype=np.float64)
    epochs = np.array([row["epochs"] for row in weights["domains"]], dtype=np.float64)
    if np.any(values < 0) or abs(values.sum() - 1.0) > 1e-9 or np.any(epochs > weights["max_epochs"] * (1 + 1e-9)):
        raise RuntimeError(
            f"refusing to export: weights of {strategy!r} in {weights_file} are negative, do not "
            "sum to 1 or exceed the epoch cap; re-materialise mixture_weights"
        )


def _input_runs(context: dg.AssetExecutionContext, strategy: str) -> dict[str, str | None]:
    """Return the run that last materialised each input of the export."""
    runs: dict[str, str | None] = {}
    for asset in ["teacher_clustering", "gis_taxonomy", "student_model", "domain_stats"]:
        event = context.instance.get_latest_materialization_event(dg.AssetKey(asset))
        runs[asset] = event.run_id if event is not None else None
    runs["weights"] = str(strategy)
    return runs
