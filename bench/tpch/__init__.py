"""TPC-H through bemidb's wire vs DuckDB in-process over the same Parquet files vs Postgres itself."""


def main(quick: bool = False) -> dict:
    """The `python -m bench` convention (see bench/README.md); the work is in bench.tpch.runner."""
    from bench.tpch.runner import main as run_main

    return run_main(quick)
