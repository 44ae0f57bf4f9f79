"""Taxonomy asset: GIS per seed document, representatives, keywords, names and a tree."""

import json
from collections import Counter

import numpy as np
import polars as pl

import dagster as dg
from gem_dagster.assets.lineage import markdown_table, upstream_path
from gem_dagster.assets.teacher import teacher_clustering
from gem_dagster.resources import ComputeResource, EmbedderResource, NamerResource, WarehouseResource
from gem_dagster.settings import get_settings
from gem_dagster.taxonomy import build_taxonomy
from gem_dagster.warehouse import write_table_atomically

_SETTINGS = get_settings()


class TaxonomyConfig(dg.Config):
    """GIS and taxonomy parameters; defaults come from the GEM_* settings."""

    beta: float = _SETTINGS.gis_beta
    neighbours: int = _SETTINGS.gis_neighbours
    representatives: int = _SETTINGS.representatives
    keywords: int = _SETTINGS.keywords
    n_parents: int | None = None


@dg.asset(
    deps=[teacher_clustering],
    group_name="taxonomy",
    kinds={"duckdb", "json"},
    pool="duckdb_writer",
)
def gis_taxonomy(
    context: dg.AssetExecutionContext,
    config: TaxonomyConfig,
    warehouse: WarehouseResource,
    embedder: EmbedderResource,
    compute: ComputeResource,
    namer: NamerResource,
) -> dg.MaterializeResult:
    """Named domains: the Geometric Influence Score of every seed document, representatives,
    keywords, a name and description per cluster, and a tree of parent groups. Adds names to
    teacher_clusters and the GIS to teacher_assignments."""
    model_file = upstream_path(context, "teacher_clustering")
    teacher_folder = model_file.parent
    model = np.load(model_file, allow_pickle=False)
    assignments = pl.read_parquet(teacher_folder / "assignments.parquet")
    clusters = pl.read_parquet(teacher_folder / "clusters.parquet")

    vectors_file = upstream_path(context, "embeddings")
    vectors = np.load(vectors_file, allow_pickle=False)
    vector_ids = pl.read_parquet(vectors_file.parent / "ids.parquet")["id"]
    seed = pl.read_parquet(upstream_path(context, "seed_sample"), columns=["id", "text"])
    if not vector_ids.equals(assignments["id"]):
        raise RuntimeError(
            "teacher assignments and embeddings list different documents: re-materialise "
            "teacher_clustering from the current embeddings"
        )
    texts = pl.DataFrame({"id": vector_ids}).join(seed, on="id", how="left")["text"]

    term_embedder = embedder.embedder(compute.torch_device())
    folder = warehouse.layout.run_folder("taxonomy", context.run.run_id)
    taxonomy = build_taxonomy(
        texts,
        vector_ids,
        vectors,
        assignments["cluster_id"].to_numpy(),
        assignments["probability"].to_numpy(),
        model["mean_directions"],
        model["concentrations"],
        beta=config.beta,
        neighbours=config.neighbours,
        representatives=config.representatives,
        keywords=config.keywords,
        embed_terms=lambda terms: term_embedder.encode(list(terms)),
        namer=namer.namer(str(warehouse.layout.root / "namer_cache")),
        n_parents=config.n_parents,
    )
    sources = dict(Counter(record.name_source for record in taxonomy.clusters))
    context.log.info(
        f"named {len(taxonomy.clusters)} clusters (name sources {sources}) in "
        f"{len(taxonomy.tree['children'])} parent groups"
    )

    influence = assignments.with_columns(
        gis=pl.Series(taxonomy.gis),
        log_confidence=pl.Series(taxonomy.influence.log_confidence),
        log_centrality=pl.Series(taxonomy.influence.log_centrality),
        log_density=pl.Series(taxonomy.influence.log_density),
    )
    frame = taxonomy.to_frame()
    named_clusters = clusters.join(
        frame.select(
            pl.col("cluster").alias("cluster_id"),
            "name",
            "description",
            pl.col("keywords").list.join(", ").alias("keywords"),
            "parent",
        ),
        on="cluster_id",
        how="left",
    )
    write_table_atomically(folder / "influence.parquet", influence.to_arrow())
    write_table_atomically(folder / "clusters.parquet", named_clusters.to_arrow())
    taxonomy_file = folder / "taxonomy.json"
    taxonomy_file.write_text(json.dumps(taxonomy.to_dict(), indent=1, ensure_ascii=False))
    (folder / "tree.json").write_text(json.dumps(taxonomy.tree, indent=1, ensure_ascii=False))

    catalog = warehouse.catalog
    with catalog.connect() as connection:
        catalog.replace_table(connection, "teacher_clusters", folder / "clusters.parquet")
        catalog.replace_table(connection, "teacher_assignments", folder / "influence.parquet")

    total = max(int(named_clusters["size"].sum()), 1)
    rows = [
        {
            "id": row["cluster_id"],
            "name": row["name"],
            "share": f"{row['size'] / total:.1%}",
            "kappa": f"{row['concentration']:.0f}",
            "keywords": row["keywords"],
            "example": _excerpt(record.excerpts[0] if record.excerpts else ""),
        }
        for row, record in zip(named_clusters.sort("cluster_id").iter_rows(named=True), taxonomy.clusters)
    ]
    return dg.MaterializeResult(
        metadata={
            "clusters": dg.MetadataValue.md(markdown_table(rows)),
            "tree": dg.MetadataValue.md(
                _tree_markdown(taxonomy.tree, {record.cluster: record.name for record in taxonomy.clusters})
            ),
            "names_from": dg.MetadataValue.json(sources),
            "path": dg.MetadataValue.path(str(taxonomy_file)),
        }
    )


def _excerpt(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _tree_markdown(tree: dict, cluster_names: dict[int, str]) -> str:
    """Render the tree as a nested Markdown list: parent groups, then their clusters."""
    lines = [f"- **{tree['name']}**"]
    for group in tree["children"]:
        lines.append(f"  - **{group['name']}**")
        for cluster in group["clusters"]:
            lines.append(f"    - {cluster}: {cluster_names.get(cluster, '')}")
    return "\n".join(lines)
