"""Corpus assets: validated documents per shard and the teacher's seed sample."""

import pyarrow.parquet as pq

import dagster as dg
from gem_dagster.assets.lineage import markdown_table
from gem_dagster.corpus import ingest_shard
from gem_dagster.corpus.sampling import select_seed_sample
from gem_dagster.partitions import shard_partitions
from gem_dagster.resources import CorpusResource, EmbedderResource, WarehouseResource
from gem_dagster.settings import get_settings
from gem_dagster.warehouse import write_table_atomically

RECONCILED_CHECK = "records_reconciled"
_SETTINGS = get_settings()


class SeedSampleConfig(dg.Config):
    """Size and seed of the seed sample; defaults come from the GEM_* settings."""

    documents: int = _SETTINGS.seed_sample_documents
    tokens: int | None = _SETTINGS.seed_sample_tokens
    seed: int = _SETTINGS.seed


@dg.asset(
    partitions_def=shard_partitions,
    group_name="corpus",
    kinds={"parquet"},
    check_specs=[
        dg.AssetCheckSpec(
            RECONCILED_CHECK,
            asset="documents",
            blocking=True,
            description="Documents plus rejected records equal the input records of the shard.",
        )
    ],
)
def documents(
    context: dg.AssetExecutionContext,
    corpus: CorpusResource,
    warehouse: WarehouseResource,
    embedder: EmbedderResource,
) -> dg.MaterializeResult:
    """Validated documents of one shard (id, text, token count, hash), with rejected records
    and their reasons written beside them. Read in batches, written atomically as Parquet."""
    shard = context.partition_key
    layout = warehouse.layout
    documents_file = layout.documents_file(shard)
    rejects_file = layout.rejects_file(shard)

    report = ingest_shard(
        source=corpus.shard_file(shard),
        shard=shard,
        documents_target=documents_file,
        rejects_target=rejects_file,
        options=corpus.reader_options(),
        count_tokens=embedder.token_counter().count,
    )
    rate = report.documents / report.seconds if report.seconds > 0 else 0.0
    context.log.info(
        f"shard {shard}: {report.records:,} records -> {report.documents:,} documents, "
        f"{report.rejects:,} rejected, {report.tokens:,} tokens in {report.seconds:.1f} s "
        f"({rate:,.0f} docs/s)"
    )
    if report.rejects:
        context.log.warning(f"shard {shard}: rejected records by reason {report.rejects_by_reason}")

    # Count what actually landed on disk, not what the reader believes it wrote.
    written_documents = pq.ParquetFile(documents_file).metadata.num_rows
    written_rejects = pq.ParquetFile(rejects_file).metadata.num_rows
    reconciled = written_documents + written_rejects == report.records

    return dg.MaterializeResult(
        metadata={
            "records": report.records,
            "documents": written_documents,
            "rejected": written_rejects,
            "rejects_by_reason": dg.MetadataValue.json(report.rejects_by_reason),
            "tokens": report.tokens,
            "documents_per_second": round(rate, 1),
            "path": dg.MetadataValue.path(str(documents_file)),
            "rejects_path": dg.MetadataValue.path(str(rejects_file)),
            "preview": dg.MetadataValue.md(markdown_table(report.preview)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=RECONCILED_CHECK,
                passed=reconciled,
                metadata={
                    "records": report.records,
                    "documents": written_documents,
                    "rejected": written_rejects,
                },
            )
        ],
    )


@dg.asset(
    deps=[documents],
    group_name="corpus",
    kinds={"duckdb", "parquet"},
    pool="duckdb_writer",
)
def seed_sample(
    context: dg.AssetExecutionContext, config: SeedSampleConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Stratified sample of documents across all shards: the teacher's input. Stored as the
    DuckDB table seed_documents and a Parquet file of this run."""
    catalog = warehouse.catalog
    by_tokens = config.tokens is not None
    size = config.tokens if by_tokens else config.documents
    columns = ("id", "shard", "text", "n_tokens", *warehouse.metadata_fields)

    with catalog.connect() as connection:
        catalog.refresh_views(connection)
        total = connection.execute("SELECT count(*) FROM documents").fetchone()[0]
        if total == 0:
            raise RuntimeError(
                "the documents view is empty: register shards and materialise the documents "
                "partitions before seed_sample (make run does both)"
            )
        sample = select_seed_sample(
            connection, size, config.seed, by="tokens" if by_tokens else "documents",
            columns=columns,
        )
        target = warehouse.layout.run_folder("seed", context.run.run_id) / "seed.parquet"
        write_table_atomically(target, sample.to_arrow())
        stored = catalog.replace_table(connection, "seed_documents", target)

    per_shard = sample.group_by("shard").len().sort("shard")
    context.log.info(
        f"seed sample: {stored:,} of {total:,} documents from {per_shard.height} shards, "
        f"{int(sample['n_tokens'].sum()):,} tokens"
    )
    preview = [
        {"id": row["id"], "shard": row["shard"], "text": " ".join(row["text"].split())[:100]}
        for row in sample.head(5).iter_rows(named=True)
    ]
    return dg.MaterializeResult(
        metadata={
            "documents": stored,
            "corpus_documents": int(total),
            "tokens": int(sample["n_tokens"].sum()),
            "per_shard": dg.MetadataValue.md(markdown_table(per_shard.to_dicts())),
            "path": dg.MetadataValue.path(str(target)),
            "preview": dg.MetadataValue.md(markdown_table(preview)),
        }
    )
