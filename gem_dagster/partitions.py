"""Partitions of the asset graph."""

import dagster as dg

# One partition per shard file, keyed by its path relative to the corpus root. Keys are added
# by the shard sensor or by `gem-dagster register-shards`.
shard_partitions = dg.DynamicPartitionsDefinition(name="shards")

# Strategies computed without a proxy language model. DoReMi, RegMix and PerfRe need a trained
# proxy model and are not offered yet.
strategy_partitions = dg.StaticPartitionsDefinition(["uniform", "natural", "temperature", "unimax"])
