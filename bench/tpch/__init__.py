"""TPC-H through bemidb's wire vs DuckDB in-process over the same Parquet files vs Postgres itself."""
