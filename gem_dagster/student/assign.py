"""Label one shard's documents with the student, streaming batches into Parquet."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gem_dagster.student.model import StudentModel
from gem_dagster.warehouse.parquet import AtomicParquetWriter
from gem_dagster.warehouse.schemas import ASSIGNMENTS_SCHEMA


@dataclass
class AssignmentReport:
    """Counts from labelling one shard."""

    documents: int = 0
    low_confidence: int = 0
    seconds: float = 0.0
    distribution: Counter[int] = field(default_factory=Counter)


def assign_shard(
    model: StudentModel,
    documents_file: Path,
    target: Path,
    shard: str,
    batch_rows: int = 8192,
    low_confidence_threshold: float = 0.5,
) -> AssignmentReport:
    """Write (id, shard, cluster_id, probability) for every document of ``documents_file``.

    Only one batch of texts is in memory at a time, whatever the shard's size, and the
    output replaces ``target`` atomically once every batch is written.
    """
    report = AssignmentReport()
    started = time.perf_counter()
    with AtomicParquetWriter(target, ASSIGNMENTS_SCHEMA) as writer:
        for batch in pq.ParquetFile(documents_file).iter_batches(batch_size=batch_rows, columns=["id", "text"]):
            clusters, probabilities = model.predict(batch.column("text").to_pylist())
            writer.write(
                pa.table(
                    {
                        "id": batch.column("id"),
                        "shard": pa.array([shard] * batch.num_rows, pa.string()),
                        "cluster_id": clusters,
                        "probability": probabilities,
                    },
                    schema=ASSIGNMENTS_SCHEMA,
                )
            )
            report.distribution.update(clusters.tolist())
            report.low_confidence += int(np.sum(probabilities < low_confidence_threshold))
        report.documents = writer.rows_written
    report.seconds = time.perf_counter() - started
    return report
