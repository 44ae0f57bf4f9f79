"""Partitions of the asset graph."""

import dagster as dg

# One partition per shard file, keyed by its path relative to the corpus root. Keys are added
# by the shard sensor or by `gem-dagster register-shards`.
shard_partitions = dg.DynamicPartitionsDefinition(name="shards")

# The cheap strategies use only token counts. DoReMi, RegMix and PerfRe train proxy language
# models on proxy_token_streams, minutes on a CPU with the "cpu" preset.
CHEAP_STRATEGIES = ["uniform", "natural", "temperature", "unimax"]
PROXY_STRATEGIES = ["doremi", "regmix", "perfre"]
strategy_partitions = dg.StaticPartitionsDefinition(CHEAP_STRATEGIES + PROXY_STRATEGIES)
