"""`bemidb tables`: what is synced, how big, how fresh."""

from __future__ import annotations

import datetime as dt

from rich.table import Table

from bemidb.console import UserError, stdout
from bemidb.storage.catalog import PROP_CDC_LSN, PROP_SOURCE, open_catalog


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def run(cfg, args) -> int:
    try:
        catalog = open_catalog(cfg)
        namespaces = sorted(ns[0] for ns in catalog.list_namespaces())
    except Exception as exc:  # noqa: BLE001 - an unreachable catalog is one clear line, not a traceback
        raise UserError(f"cannot open the catalog: {' '.join(str(exc).split())[:300]}") from None
    table = Table(title="Synced tables")
    for column in ("schema", "table", "source", "rows", "size", "last sync (UTC)"):
        table.add_column(column, justify="right" if column in ("rows", "size") else "left")
    for namespace in namespaces:
        if args.only_schema and namespace != args.only_schema:
            continue
        for identifier in sorted(catalog.list_tables(namespace)):
            iceberg_table = catalog.load_table(identifier)
            snapshot = iceberg_table.current_snapshot()
            summary = snapshot.summary if snapshot else None
            rows = int(summary["total-records"]) if summary and "total-records" in summary else 0
            size = int(summary["total-files-size"]) if summary and "total-files-size" in summary else 0
            when = (dt.datetime.fromtimestamp(snapshot.timestamp_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
                    if snapshot else "never")
            source = iceberg_table.properties.get(PROP_SOURCE, "")
            if PROP_CDC_LSN in iceberg_table.properties:  # kept by CDC: the source position applied through
                source += f" (cdc {iceberg_table.properties[PROP_CDC_LSN]})"
            table.add_row(namespace, identifier[-1], source, f"{rows:,}", _size(size), when)
    stdout.print(table)
    if cfg.source_postgres_database_url:
        _print_slots(cfg)
    return 0


def _print_slots(cfg) -> None:
    """The WAL each CDC slot holds on the source: the cost of a slot nobody drains."""
    from bemidb.sync import cdc_source
    from bemidb.sync import postgres_source as source

    try:
        conn = source.connect(cfg.source_postgres_database_url, timeout=5)
        try:
            slots = cdc_source.slot_report(conn, cfg.source_postgres_replication_slot or "")
        finally:
            conn.close()
    except Exception as exc:  # noqa: BLE001 - the table list above stands; the source is a bonus
        stdout.print(f"source Postgres: {' '.join(str(exc).split())[:300]}")
        return
    for name, state in slots:
        stdout.print(cdc_source.describe_slot(name, state))
