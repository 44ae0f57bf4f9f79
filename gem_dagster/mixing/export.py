"""Select documents per domain up to each domain's token target, then shuffle them.

A domain whose target exceeds its tokens is repeated in whole passes, and the last pass is
partial. The weights' epoch cap bounds the number of passes. Inside a pass, documents are
taken in the order of a hash of (seed, pass, shard, id), so a selection is a deterministic
function of the corpus, the weights and the seed.
"""

from __future__ import annotations

import duckdb
import polars as pl


def plan_selection(
    connection: duckdb.DuckDBPyConnection,
    targets: dict[int, int],
    seed: int,
) -> pl.DataFrame:
    """Return (shard, id, cluster_id, n_tokens, pass) rows meeting each domain's token target.

    ``connection`` must expose a relation ``labelled`` with columns shard, id, cluster_id and
    n_tokens. For each domain the running token total of the last, partial pass stays at or
    below the remaining target, so a domain falls short of its target by less than one
    document.
    """
    totals = dict(
        connection.execute(
            "SELECT cluster_id, sum(n_tokens)::BIGINT FROM labelled GROUP BY cluster_id"
        ).fetchall()
    )
    passes = []
    for cluster_id, target in targets.items():
        available = int(totals.get(cluster_id, 0))
        if target <= 0 or available == 0:
            continue
        full_passes, remainder = divmod(target, available)
        passes.extend((cluster_id, number, None) for number in range(full_passes))
        if remainder:
            passes.append((cluster_id, full_passes, remainder))

    frames = []
    for cluster_id, number, limit in passes:
        # The running total orders documents by their hash, so each pass is a new shuffle.
        frame = connection.execute(
            """
            SELECT shard, id, cluster_id, n_tokens, ?::BIGINT AS pass,
                   sum(n_tokens) OVER (
                       ORDER BY md5(concat_ws(':', ?, ?, shard, id))
                       ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
                   ) AS running_tokens
            FROM labelled WHERE cluster_id = ?
            """,
            [number, str(seed), str(number), cluster_id],
        ).pl()
        if limit is not None:
            frame = frame.filter(pl.col("running_tokens") <= limit)
        frames.append(frame.drop("running_tokens"))

    if not frames:
        return pl.DataFrame(
            schema={"shard": pl.String, "id": pl.String, "cluster_id": pl.Int64,
                    "n_tokens": pl.Int64, "pass": pl.Int64}
        )
    # One global shuffle, again by md5 (stable across library versions), so that domains
    # are interleaved in the output.
    connection.register("selection", pl.concat(frames).to_arrow())
    try:
        return connection.execute(
            """
            SELECT * FROM selection
            ORDER BY md5(concat_ws(':', ?, 'shuffle', pass, shard, id)), shard, id, pass
            """,
            [str(seed)],
        ).pl()
    finally:
        connection.unregister("selection")
