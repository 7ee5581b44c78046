"""Benchmarks: `python -m bench all --quick` runs every one and prints one summary table (see bench/README.md)."""
