"""Student assets: the fastText model distilled from the teacher, and corpus-wide labels."""

import json
import time

import polars as pl

import dagster as dg
from gem_dagster.assets.corpus import documents
from gem_dagster.assets.lineage import markdown_table, upstream_path
from gem_dagster.assets.taxonomy import gis_taxonomy
from gem_dagster.partitions import shard_partitions
from gem_dagster.resources import WarehouseResource
from gem_dagster.settings import get_settings
from gem_dagster.student import StudentModel, StudentParams, agreement_rate, split_for_distillation
from gem_dagster.student.assign import assign_shard

AGREEMENT_CHECK = "teacher_agreement_above_floor"
COVERAGE_CHECK = "every_document_assigned_once"
_SETTINGS = get_settings()


class StudentConfig(dg.Config):
    """Distillation parameters; defaults come from the GEM_* settings."""

    per_cluster: int = _SETTINGS.student_per_cluster
    epochs: int = _SETTINGS.student_epochs
    learning_rate: float = _SETTINGS.student_learning_rate
    word_ngrams: int = _SETTINGS.student_word_ngrams
    dimension: int = _SETTINGS.student_dimension
    max_tokens: int = _SETTINGS.student_max_tokens
    quantize: bool = _SETTINGS.student_quantize
    seed: int = _SETTINGS.seed
    agreement_floor: float = _SETTINGS.student_agreement_floor

    def params(self) -> StudentParams:
        return StudentParams(
            epochs=self.epochs,
            learning_rate=self.learning_rate,
            word_ngrams=self.word_ngrams,
            dimension=self.dimension,
            max_tokens=self.max_tokens,
            quantize=self.quantize,
            seed=self.seed,
        )


@dg.asset(
    deps=[gis_taxonomy],
    group_name="student",
    kinds={"fasttext"},
    check_specs=[
        dg.AssetCheckSpec(
            AGREEMENT_CHECK,
            asset="student_model",
            description="The student agrees with the teacher on randomly drawn seed documents it "
            "never saw, at least at the configured floor.",
        )
    ],
)
def student_model(
    context: dg.AssetExecutionContext, config: StudentConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """fastText classifier trained with the teacher's hard labels on the top-GIS seed
    documents of every cluster, the same number per cluster. It labels the whole corpus."""
    influence_file = upstream_path(context, "gis_taxonomy").parent / "influence.parquet"
    seed = pl.read_parquet(upstream_path(context, "seed_sample"), columns=["id", "text"])
    table = seed.join(pl.read_parquet(influence_file), on="id", how="inner").sort("id")
    if table.height != seed.height:
        raise RuntimeError(
            f"{seed.height - table.height} seed documents have no GIS: re-materialise "
            "teacher_clustering and gis_taxonomy from the current seed sample"
        )

    texts = table["text"].to_list()
    teacher = table["cluster_id"].to_numpy()
    split = split_for_distillation(
        teacher, table["gis"].to_numpy(), config.per_cluster, seed=config.seed
    )
    if split.short_clusters:
        context.log.warning(
            f"clusters with fewer than {config.per_cluster} training candidates: {split.short_clusters}"
        )

    started = time.perf_counter()
    model = StudentModel.train([texts[i] for i in split.train], teacher[split.train], config.params())
    training_seconds = time.perf_counter() - started

    test_labels, _ = model.predict([texts[i] for i in split.test])
    agreement_labels, _ = model.predict([texts[i] for i in split.agreement])
    test_accuracy = agreement_rate(test_labels, teacher[split.test])
    agreement = agreement_rate(agreement_labels, teacher[split.agreement])
    context.log.info(
        f"student trained on {len(split.train):,} documents in {training_seconds:.1f} s: held-out "
        f"accuracy {test_accuracy:.3f} on {len(split.test):,}, teacher agreement {agreement:.3f} on "
        f"{len(split.agreement):,} random seed documents"
    )

    folder = warehouse.layout.run_folder("student", context.run.run_id)
    model_file = folder / ("student.ftz" if config.quantize else "student.bin")
    model.save(model_file)
    metrics = {
        "training_documents": len(split.train),
        "test_documents": len(split.test),
        "agreement_documents": len(split.agreement),
        "test_accuracy": round(test_accuracy, 4),
        "teacher_agreement": round(agreement, 4),
        "short_clusters": split.short_clusters,
        "params": model.describe(),
    }
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=1))

    return dg.MaterializeResult(
        metadata={
            **{key: value for key, value in metrics.items() if isinstance(value, (int, float))},
            "training_seconds": round(training_seconds, 2),
            "model_bytes": model_file.stat().st_size,
            "params": dg.MetadataValue.json(model.describe()),
            "path": dg.MetadataValue.path(str(model_file)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=AGREEMENT_CHECK,
                passed=agreement >= config.agreement_floor,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"teacher_agreement": round(agreement, 4), "floor": config.agreement_floor},
            )
        ],
    )


class AssignmentConfig(dg.Config):
    """Batching and the confidence threshold for labelling one shard."""

    batch_rows: int = _SETTINGS.assign_batch_rows
    low_confidence_threshold: float = _SETTINGS.low_confidence_threshold


@dg.asset(
    partitions_def=shard_partitions,
    deps=[documents, student_model],
    group_name="student",
    kinds={"fasttext", "parquet"},
    # With automation on (default_automation_condition_sensor), a new student re-labels
    # every shard and a re-ingested shard is re-labelled; nothing runs without a student.
    automation_condition=dg.AutomationCondition.eager(),
    check_specs=[
        dg.AssetCheckSpec(
            COVERAGE_CHECK,
            asset="cluster_assignments",
            blocking=True,
            description="Every document of the shard has exactly one assignment and no "
            "assignment names a document outside it.",
        )
    ],
)
def cluster_assignments(
    context: dg.AssetExecutionContext, config: AssignmentConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Student cluster and probability for every document of one shard, streamed in batches
    and written atomically as Parquet (DuckDB view cluster_assignments)."""
    shard = context.partition_key
    layout = warehouse.layout
    documents_file = layout.documents_file(shard)
    if not documents_file.exists():
        raise FileNotFoundError(
            f"no documents for shard {shard!r} at {documents_file}: materialise the documents "
            "partition first"
        )
    model_file = upstream_path(context, "student_model")
    params = StudentParams(**json.loads((model_file.parent / "metrics.json").read_text())["params"])
    model = StudentModel.load(model_file, params)

    target = layout.assignments_file(shard)
    report = assign_shard(
        model, documents_file, target, shard, config.batch_rows, config.low_confidence_threshold
    )
    rate = report.documents / report.seconds if report.seconds > 0 else 0.0
    context.log.info(
        f"shard {shard}: assigned {report.documents:,} documents in {report.seconds:.1f} s "
        f"({rate:,.0f} docs/s)"
    )

    coverage = _coverage(documents_file, target)
    return dg.MaterializeResult(
        metadata={
            "documents": report.documents,
            "documents_per_second": round(rate, 1),
            "low_confidence_share": round(report.low_confidence / max(report.documents, 1), 4),
            "cluster_distribution": dg.MetadataValue.md(
                markdown_table(
                    [{"cluster": k, "documents": v} for k, v in sorted(report.distribution.items())]
                )
            ),
            "path": dg.MetadataValue.path(str(target)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=COVERAGE_CHECK,
                passed=coverage["missing"] == 0 and coverage["duplicated"] == 0 and coverage["unknown"] == 0,
                metadata=coverage,
            )
        ],
    )


def _coverage(documents_file, assignments_file) -> dict[str, int]:
    """Compare the ids of a shard's documents and assignments, reading both files back."""
    import duckdb

    with duckdb.connect() as connection:
        row = connection.execute(
            """
            WITH d AS (SELECT id FROM read_parquet(?)),
                 a AS (SELECT id, count(*) AS n FROM read_parquet(?) GROUP BY id)
            SELECT
                (SELECT count(*) FROM d),
                (SELECT count(*) FROM d ANTI JOIN a USING (id)),
                (SELECT count(*) FROM a WHERE n > 1),
                (SELECT count(*) FROM a ANTI JOIN d USING (id))
            """,
            [str(documents_file), str(assignments_file)],
        ).fetchone()
    return {"documents": row[0], "missing": row[1], "duplicated": row[2], "unknown": row[3]}
