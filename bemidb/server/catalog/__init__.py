"""The Postgres catalog clients read: the type table (pg_types), pg_catalog and information_schema rows for the
synced tables, and Postgres's client-facing functions as DuckDB macros.

May import server's errors and settings and bemidb.storage; never sql/, codec/ or protocol/.
"""
