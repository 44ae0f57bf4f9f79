"""Partitions of the asset graph."""

import dagster as dg

# One partition per shard file, keyed by its path relative to the corpus root. Keys are added
# by the shard sensor or by `gem-dagster register-shards`.
shard_partitions = dg.DynamicPartitionsDefinition(name="shards")
