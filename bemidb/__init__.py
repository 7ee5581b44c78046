"""bemidb: sync Postgres and SaaS data into Iceberg tables, query them with any Postgres client."""

__version__ = "0.1.0"
