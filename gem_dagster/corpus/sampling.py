"""Stratified seed sample: every shard contributes in proportion to its size.

Documents are ranked inside their shard by a hash of (seed, shard, id), so the sample is a
deterministic function of the corpus and the seed, and a document's rank does not depend on
which other documents exist.
"""

from __future__ import annotations

import duckdb
import polars as pl


def allocate_quotas(sizes: dict[str, int], total: int) -> dict[str, int]:
    """Split ``total`` over shards proportionally to ``sizes`` by largest remainders.

    The quotas sum to ``min(total, sum(sizes))`` and no quota exceeds its shard's size.
    """
    available = sum(sizes.values())
    target = min(total, available)
    if target == 0:
        return {shard: 0 for shard in sizes}

    exact = {shard: size * target / available for shard, size in sizes.items()}
    quotas = {shard: int(share) for shard, share in exact.items()}
    shortfall = target - sum(quotas.values())
    by_remainder = sorted(sizes, key=lambda shard: (quotas[shard] - exact[shard], shard))
    for shard in by_remainder[:shortfall]:
        quotas[shard] += 1
    return quotas


def select_seed_sample(
    connection: duckdb.DuckDBPyConnection,
    size: int,
    seed: int,
    by: str = "documents",
    columns: tuple[str, ...] = ("id", "shard", "text", "n_tokens"),
) -> pl.DataFrame:
    """Return a stratified sample of the ``documents`` view as a Polars frame.

    Parameters
    ----------
    connection : duckdb.DuckDBPyConnection
        A connection whose ``documents`` view covers every shard.
    size : int
        Documents (``by="documents"``) or tokens (``by="tokens"``) to select in total.
    seed : int
        Changes which documents are chosen; the same seed gives the same sample.
    by : {"documents", "tokens"}
        What ``size`` counts.
    columns : tuple of str
        Columns of ``documents`` to return.
    """
    if by not in {"documents", "tokens"}:
        raise ValueError(f"invalid sample unit {by!r}: use 'documents' or 'tokens'")

    measure = "count(*)" if by == "documents" else "sum(n_tokens)"
    sizes = dict(
        connection.execute(f"SELECT shard, {measure} FROM documents GROUP BY shard").fetchall()
    )
    quotas = allocate_quotas({shard: int(value) for shard, value in sizes.items()}, size)
    quota_frame = pl.DataFrame(
        {"shard": list(quotas), "quota": list(quotas.values())},
        schema={"shard": pl.String, "quota": pl.Int64},
    )
    connection.register("seed_quotas", quota_frame.to_arrow())

    # Documents in ranked order are taken while the running total stays within the quota.
    running = "row_number()" if by == "documents" else "sum(n_tokens)"
    selected = ", ".join(f"d.{name}" for name in columns)
    query = f"""
        WITH ranked AS (
            SELECT d.*, {running} OVER (
                PARTITION BY d.shard ORDER BY md5(concat_ws(':', ?, d.shard, d.id))
                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
            ) AS running_total
            FROM documents AS d
        )
        SELECT {selected}
        FROM ranked AS d JOIN seed_quotas AS q USING (shard)
        WHERE d.running_total <= q.quota
        ORDER BY d.shard, d.id
    """
    try:
        return connection.execute(query, [str(seed)]).pl()
    finally:
        connection.unregister("seed_quotas")
