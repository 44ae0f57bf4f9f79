"""Teacher asset: the GEM clustering of the seed sample's embeddings."""

import dataclasses
import json
import time

import numpy as np
import polars as pl

import dagster as dg
from gem_dagster.assets import charts
from gem_dagster.assets.embeddings import embeddings
from gem_dagster.assets.lineage import markdown_table, upstream_path
from gem_dagster.clustering import GEM, balance_entropy, find_objective_decreases
from gem_dagster.resources import ComputeResource, WarehouseResource
from gem_dagster.settings import get_settings
from gem_dagster.warehouse import write_table_atomically

MONOTONE_CHECK = "objective_non_decreasing"
BALANCE_CHECK = "balance_entropy_above_floor"
_SETTINGS = get_settings()


class TeacherConfig(dg.Config):
    """GEM parameters for one fit; defaults come from the GEM_* settings."""

    n_clusters: int = _SETTINGS.n_clusters
    balance: float | None = None if _SETTINGS.balance == "auto" else float(_SETTINGS.balance)
    e_step: str = _SETTINGS.e_step
    kappa: str = _SETTINGS.kappa_mode
    max_iter: int = _SETTINGS.max_iter
    tol: float = _SETTINGS.tol
    seed: int = _SETTINGS.seed
    balance_entropy_floor: float = _SETTINGS.balance_entropy_floor


@dg.asset(
    deps=[embeddings],
    group_name="teacher",
    kinds={"pytorch", "duckdb"},
    pool="gpu",
    check_specs=[
        dg.AssetCheckSpec(
            MONOTONE_CHECK,
            asset="teacher_clustering",
            blocking=True,
            description="The GEM objective never decreased across a half-step (beyond 1e-9 "
            "relative); a decrease means the fit is wrong and nothing downstream may use it.",
        ),
        dg.AssetCheckSpec(
            BALANCE_CHECK,
            asset="teacher_clustering",
            description="Normalised balance entropy H(pi)/log K of the cluster mass is at least "
            "the configured floor.",
        ),
    ],
)
def teacher_clustering(
    context: dg.AssetExecutionContext,
    config: TeacherConfig,
    warehouse: WarehouseResource,
    compute: ComputeResource,
) -> dg.MaterializeResult:
    """GEM fit of the seed embeddings: mean directions, concentrations, cluster mass and
    the objective trace, with every seed document's cluster and probability (DuckDB tables
    teacher_clusters and teacher_assignments)."""
    vectors_file = upstream_path(context, "embeddings")
    vectors = np.load(vectors_file, allow_pickle=False)
    ids = pl.read_parquet(vectors_file.parent / "ids.parquet")["id"]

    model = GEM(
        n_clusters=config.n_clusters,
        balance="auto" if config.balance is None else config.balance,
        e_step=config.e_step,
        kappa=config.kappa,
        max_iter=config.max_iter,
        tol=config.tol,
        random_state=config.seed,
    )
    started = time.perf_counter()
    compute.fit(model, vectors, log=context.log)
    seconds = time.perf_counter() - started

    probabilities = model.predict_proba(vectors)
    labels = probabilities.argmax(axis=1)
    sizes = np.bincount(labels, minlength=config.n_clusters)
    entropy = balance_entropy(model.cluster_mass_)
    decreases = find_objective_decreases(model.objective_trace_, model.objective_steps_)
    context.log.info(
        f"GEM K={config.n_clusters}, lambda={model.balance_:.4g}: {model.n_iter_} iterations, "
        f"F={model.objective_:.6g}, balance entropy {entropy:.4f}, cluster sizes "
        f"{sizes.min()}-{sizes.max()}, kappa {model.concentrations_.min():.1f}-"
        f"{model.concentrations_.max():.1f}"
    )

    folder = warehouse.layout.run_folder("teacher", context.run.run_id)
    model_file = folder / "model.npz"
    np.savez(
        model_file,
        mean_directions=model.mean_directions_,
        concentrations=model.concentrations_,
        cluster_mass=model.cluster_mass_,
        dual_variables=model.dual_variables_,
        objective_trace=model.objective_trace_,
    )
    clusters = pl.DataFrame(
        {
            "cluster_id": np.arange(config.n_clusters, dtype=np.int64),
            "mass": model.cluster_mass_.astype(np.float64),
            "size": sizes.astype(np.int64),
            "concentration": model.concentrations_.astype(np.float64),
            "mean_direction_ref": [
                f"{model_file}#mean_directions[{k}]" for k in range(config.n_clusters)
            ],
        }
    )
    assignments = pl.DataFrame(
        {
            "id": ids,
            "cluster_id": labels.astype(np.int64),
            "probability": probabilities[np.arange(len(labels)), labels].astype(np.float64),
        }
    )
    write_table_atomically(folder / "clusters.parquet", clusters.to_arrow())
    write_table_atomically(folder / "assignments.parquet", assignments.to_arrow())
    history = [dataclasses.asdict(record) for record in model.history_]
    (folder / "fit.json").write_text(
        json.dumps(
            {"config": config.model_dump(), "balance": model.balance_, "n_iter": model.n_iter_,
             "converged": bool(model.converged_), "history": history},
            indent=1,
            default=float,
        )
    )

    catalog = warehouse.catalog
    with catalog.connect() as connection:
        catalog.replace_table(connection, "teacher_clusters", folder / "clusters.parquet")
        catalog.replace_table(connection, "teacher_assignments", folder / "assignments.parquet")

    per_iteration = seconds / max(model.n_iter_, 1)
    return dg.MaterializeResult(
        metadata={
            "documents": len(ids),
            "n_clusters": config.n_clusters,
            "balance_lambda": float(model.balance_),
            "iterations": int(model.n_iter_),
            "converged": bool(model.converged_),
            "objective": float(model.objective_),
            "balance_entropy": round(entropy, 4),
            "largest_share": round(float(sizes.max() / sizes.sum()), 4),
            "smallest_share": round(float(sizes.min() / sizes.sum()), 4),
            "concentration_range": f"{model.concentrations_.min():.1f} - {model.concentrations_.max():.1f}",
            "device": compute.torch_device(),
            "seconds_per_iteration": round(per_iteration, 3),
            "objective_curve": dg.MetadataValue.md(
                charts.objective_curve(model.objective_trace_, model.objective_steps_)
            ),
            "cluster_sizes": dg.MetadataValue.md(charts.cluster_sizes(sizes)),
            "clusters": dg.MetadataValue.md(markdown_table(
                [{"cluster": row["cluster_id"], "size": row["size"], "mass": f"{row['mass']:.4f}",
                  "kappa": f"{row['concentration']:.1f}"} for row in clusters.iter_rows(named=True)]
            )),
            "path": dg.MetadataValue.path(str(model_file)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=MONOTONE_CHECK,
                passed=decreases.size == 0,
                metadata={"half_steps": len(model.objective_trace_),
                          "decreases_at": dg.MetadataValue.json(decreases.tolist())},
            ),
            dg.AssetCheckResult(
                check_name=BALANCE_CHECK,
                passed=entropy >= config.balance_entropy_floor,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"balance_entropy": round(entropy, 4), "floor": config.balance_entropy_floor},
            ),
        ],
    )
