"""Reproducible measurements; results are recorded in BENCHMARKS.md."""
