"""Embeddings asset: unit-norm vectors of the seed sample."""

import time

import numpy as np
import polars as pl

import dagster as dg
from gem_dagster.assets.corpus import seed_sample
from gem_dagster.assets.lineage import upstream_path
from gem_dagster.resources import ComputeResource, EmbedderResource, WarehouseResource
from gem_dagster.warehouse import write_table_atomically


@dg.asset(deps=[seed_sample], group_name="teacher", kinds={"pytorch", "numpy"}, pool="gpu")
def embeddings(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    embedder: EmbedderResource,
    compute: ComputeResource,
) -> dg.MaterializeResult:
    """Unit-norm float32 embeddings of the seed sample (vectors.npy, rows in the order of
    ids.parquet), computed by the embedder resource on the compute device."""
    seed_file = upstream_path(context, "seed_sample")
    seed = pl.read_parquet(seed_file, columns=["id", "text"])
    device = compute.torch_device()
    model = embedder.embedder(device)

    def log_progress(done: int, total: int, seconds: float) -> None:
        context.log.info(f"embedded {done:,}/{total:,} documents in {seconds:.0f} s")

    started = time.perf_counter()
    vectors = model.encode(seed["text"].to_list(), progress=log_progress)
    seconds = time.perf_counter() - started
    rate = len(seed) / seconds if seconds > 0 else 0.0
    context.log.info(
        f"embedded {len(seed):,} documents in {seconds:.1f} s ({rate:,.1f} docs/s) on {device}"
    )

    folder = warehouse.layout.run_folder("embeddings", context.run.run_id)
    vectors_file = folder / "vectors.npy"
    temporary = folder / ".vectors.npy.tmp"
    with open(temporary, "wb") as handle:
        np.save(handle, vectors)
    temporary.replace(vectors_file)
    write_table_atomically(folder / "ids.parquet", seed.select("id").to_arrow())

    return dg.MaterializeResult(
        metadata={
            "documents": len(seed),
            "dimension": int(vectors.shape[1]),
            "dtype": str(vectors.dtype),
            "model": str(model.model_path),
            "device": device,
            "seconds": round(seconds, 1),
            "documents_per_second": round(rate, 1),
            "path": dg.MetadataValue.path(str(vectors_file)),
            "ids_path": dg.MetadataValue.path(str(folder / "ids.parquet")),
        }
    )
