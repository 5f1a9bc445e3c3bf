"""Offline resources: WordNet 3.0, the AudioSet ontology and label index, and the bundled sample audio."""
