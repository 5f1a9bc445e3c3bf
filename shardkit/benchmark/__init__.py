"""SHARD: the senses file, clip manifests, item generation and the dataset card."""
