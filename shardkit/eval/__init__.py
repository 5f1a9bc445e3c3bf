"""Evaluation: requests and answer parsing, sample records, statistics and metrics."""
