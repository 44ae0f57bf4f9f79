"""Command line: register shards and run the main job against the project's Dagster instance.

    gem-dagster register-shards   add every shard file under the corpus root as a partition
    gem-dagster run               register shards, ingest each one, build the corpus model
    gem-dagster summary           print what the DuckDB catalog contains

Runs go to the instance under DAGSTER_HOME, so they show up in the Dagster UI (`make ui`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from gem_dagster.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    """Run one command; known configuration and input errors print one line and exit 2."""
    from pydantic import ValidationError

    try:
        return _dispatch(argv)
    except (FileNotFoundError, ValidationError, ValueError) as error:
        print(f"gem-dagster: error: {error}", file=sys.stderr)
        return 2


def _dispatch(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="gem-dagster", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("register-shards", help="add shard files under the corpus root as partitions")
    run = commands.add_parser(
        "run", help="ingest every shard, fit the teacher and student, then label every shard"
    )
    run.add_argument(
        "--shard",
        action="append",
        help="ingest only this shard key (repeatable); default: every shard under the corpus root",
    )
    run.add_argument(
        "--proxy-strategies",
        action="store_true",
        help="also compute DoReMi, RegMix and PerfRe weights, which train small proxy language "
        "models (minutes on a CPU with GEM_PROXY_PRESET=cpu)",
    )
    assign = commands.add_parser(
        "assign", help="re-label shards with the latest student, one run per shard, no daemon needed"
    )
    assign.add_argument("--shard", action="append", help="label only this shard key (repeatable)")
    commands.add_parser("summary", help="print document, reject and seed counts from DuckDB")
    arguments = parser.parse_args(argv)

    if arguments.command == "summary":
        print_summary()
        return 0

    instance = _instance()
    keys = register_shards(instance)
    if arguments.command == "run":
        return run_main_job(instance, arguments.shard or keys, with_proxies=arguments.proxy_strategies)
    if arguments.command == "assign":
        return 0 if run_job(instance, "assign_shards", arguments.shard or keys) is not None else 1
    return 0


def _instance():
    from dagster import DagsterInstance

    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise SystemExit(
            "DAGSTER_HOME is not set: point it at an absolute folder for the Dagster instance "
            "(make run sets it to .dagster_home in the project)"
        )
    Path(home).mkdir(parents=True, exist_ok=True)
    return DagsterInstance.get()


def register_shards(instance) -> list[str]:
    """Add every shard file under the corpus root as a `shards` partition; return all keys."""
    from gem_dagster.corpus import list_shard_keys, unsupported_files
    from gem_dagster.partitions import shard_partitions

    root = get_settings().check_corpus_root()
    keys = list_shard_keys(root)
    for path in unsupported_files(root):
        print(f"warning: skipping {path}: not a .jsonl, .jsonl.gz, .jsonl.zst or .parquet shard")
    if not keys:
        raise SystemExit(f"no shard files found under corpus root {root}")

    known = set(instance.get_dynamic_partitions(shard_partitions.name))
    new_keys = [key for key in keys if key not in known]
    if new_keys:
        instance.add_dynamic_partitions(shard_partitions.name, new_keys)
    print(f"shards under {root}: {len(keys)} ({len(new_keys)} newly registered)")
    return keys


def run_main_job(
    instance, shard_keys: list[str], export_strategy: str = "unimax", with_proxies: bool = False
) -> int:
    """Run every stage: ingest, corpus model, assignments, statistics, weights and one export.

    Each stage is a Dagster job run in this process (one run per partition), so the runs
    appear in the UI. Prints the seconds per asset and the process's peak memory after
    each stage. ``with_proxies`` adds the proxy token streams and the DoReMi, RegMix and
    PerfRe weights.
    """
    from gem_dagster.partitions import CHEAP_STRATEGIES, PROXY_STRATEGIES

    stages = [
        ("ingest_shards", shard_keys),
        ("build_corpus_model", [None]),
        ("assign_shards", shard_keys),
        ("count_domains", [None]),
        ("weigh_domains", CHEAP_STRATEGIES),
    ]
    if with_proxies:
        stages += [("tokenise_for_proxies", [None]), ("weigh_domains", PROXY_STRATEGIES)]
    stages.append(("export_training_mix", [export_strategy]))
    started = time.perf_counter()
    seconds_per_asset: dict[str, float] = {}
    peak_after_stage: list[tuple[str, float]] = []
    for job_name, partition_keys in stages:
        run_ids = run_job(instance, job_name, partition_keys)
        if run_ids is None:
            return 1
        for run_id in run_ids:
            for step in instance.get_run_step_stats(run_id):
                if step.end_time and step.start_time:
                    duration = step.end_time - step.start_time
                    seconds_per_asset[step.step_key] = seconds_per_asset.get(step.step_key, 0.0) + duration
        peak_after_stage.append((job_name, _peak_rss_mb()))

    print(f"main job finished in {time.perf_counter() - started:.0f} s")
    print(f"{'asset':<22}{'seconds':>9}")
    for asset, seconds in seconds_per_asset.items():
        print(f"{asset:<22}{seconds:>9.1f}")
    print("process peak memory after each stage: " + ", ".join(
        f"{job_name} {peak:,.0f} MB" for job_name, peak in peak_after_stage
    ))
    export_root = get_settings().storage_root / "export" / export_strategy
    print(f"training mix ({export_strategy}) exported under {export_root}")
    print_summary()
    return 0


def run_job(instance, job_name: str, partition_keys: list[str | None]) -> list[str] | None:
    """Run a job once per partition key (None: unpartitioned) in this process.

    Returns the run ids, or None after printing an error at the first failed run.
    """
    from gem_dagster.definitions import defs

    job = defs.resolve_job_def(job_name)
    run_ids = []
    for key in partition_keys:
        result = job.execute_in_process(instance=instance, partition_key=key, raise_on_error=False)
        run_ids.append(result.run_id)
        # Non-blocking checks (for example the student's teacher agreement) do not stop a
        # run, so their failures are printed where the user reads the run's outcome.
        for evaluation in result.get_asset_check_evaluations():
            if not evaluation.passed:
                where = f" (partition {key!r})" if key is not None else ""
                print(
                    f"warning: check {evaluation.asset_key.to_user_string()}:"
                    f"{evaluation.check_name} failed{where}; see its metadata with `make ui`"
                )
        if not result.success:
            where = f" for partition {key!r}" if key is not None else ""
            print(f"error: {job_name} failed{where} (run {result.run_id}); see `make ui`")
            return None
    return run_ids


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_summary() -> None:
    """Print per-shard counts and the seed sample from the DuckDB catalog."""
    from gem_dagster.warehouse import Catalog, StorageLayout

    settings = get_settings()
    catalog = Catalog(StorageLayout(settings.storage_root), tuple(settings.metadata_fields))
    with catalog.connect(read_only=True) as connection:
        shards = connection.execute(
            """
            SELECT d.shard, d.documents, coalesce(r.rejected, 0) AS rejected, d.tokens
            FROM (SELECT shard, count(*) AS documents, sum(n_tokens) AS tokens
                  FROM documents GROUP BY shard) AS d
            LEFT JOIN (SELECT shard, count(*) AS rejected FROM rejected_documents GROUP BY shard) AS r
            USING (shard)
            ORDER BY d.shard
            """
        ).fetchall()
        seed_count = connection.execute("SELECT count(*) FROM seed_documents").fetchone()[0]
        tables = {row[0] for row in connection.execute("SHOW TABLES").fetchall()}
        weights = {}
        if "mixture_weights" in tables:
            for strategy, cluster_id, weight in connection.execute(
                "SELECT strategy, cluster_id, weight FROM mixture_weights"
            ).fetchall():
                weights.setdefault(cluster_id, {})[strategy] = weight
        domains = []
        if "teacher_clusters" in tables:
            domains = connection.execute(
                """
                SELECT c.cluster_id, coalesce(c.name, ''), c.size, coalesce(a.documents, 0)
                FROM teacher_clusters AS c
                LEFT JOIN (SELECT cluster_id, count(*) AS documents FROM cluster_assignments
                           GROUP BY cluster_id) AS a USING (cluster_id)
                ORDER BY c.cluster_id
                """
            ).fetchall()

    print(f"\ncatalog {catalog.layout.catalog_path}")
    print(f"{'shard':<28}{'documents':>10}{'rejected':>10}{'tokens':>12}")
    for shard, document_count, rejected, tokens in shards:
        print(f"{shard:<28}{document_count:>10,}{rejected:>10,}{tokens:>12,}")
    print(f"seed sample: {seed_count:,} documents")
    if domains:
        corpus_total = max(sum(row[3] for row in domains), 1)
        strategies = sorted({name for row in weights.values() for name in row})
        header = "".join(f"{name:>12}" for name in strategies)
        print(f"\n{'domain':<7}{'name':<36}{'seed docs':>10}{'corpus docs':>12}{'share':>7}{header}")
        for cluster_id, name, seed_size, corpus_size in domains:
            cells = "".join(f"{weights.get(cluster_id, {}).get(s, 0.0):>12.4f}" for s in strategies)
            print(
                f"{cluster_id:<7}{name[:34]:<36}{seed_size:>10,}{corpus_size:>12,}"
                f"{corpus_size / corpus_total:>7.1%}{cells}"
            )
        if strategies:
            print("(last columns: mixture weight per strategy)")


if __name__ == "__main__":
    sys.exit(main())
