"""`bemidb tables`: what is synced, how big, how fresh.

On a terminal a table sized to it; piped or redirected, whole names in plain columns (so `| grep` finds every
table); `--format csv|json` for scripts, with exact numbers (bytes, snapshot ids, ISO times).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys

from bemidb.console import UserError, human_bytes
from bemidb.storage.catalog import PROP_CDC_LSN, PROP_SOURCE, open_catalog

FORMATS = ("table", "plain", "csv", "json")
COLUMNS = ("schema", "table", "source", "rows", "size", "last sync (UTC)")


def _rows(cfg, only_schema: str | None) -> list[dict]:
    try:
        catalog = open_catalog(cfg)
        namespaces = sorted(ns[0] for ns in catalog.list_namespaces())
    except Exception as exc:  # noqa: BLE001 - an unreachable catalog is one clear line, not a traceback
        raise UserError(f"cannot open the catalog: {' '.join(str(exc).split())[:300]}") from None
    rows = []
    for namespace in namespaces:
        if only_schema and namespace != only_schema:
            continue
        for identifier in sorted(catalog.list_tables(namespace)):
            iceberg_table = catalog.load_table(identifier)
            snapshot = iceberg_table.current_snapshot()
            summary = snapshot.summary if snapshot else None
            rows.append({
                "schema": namespace,
                "table": identifier[-1],
                "source": iceberg_table.properties.get(PROP_SOURCE, ""),
                "rows": int(summary["total-records"]) if summary and "total-records" in summary else 0,
                "size_bytes": int(summary["total-files-size"]) if summary and "total-files-size" in summary else 0,
                "last_sync": (dt.datetime.fromtimestamp(snapshot.timestamp_ms / 1000, dt.UTC)
                              .isoformat(timespec="seconds") if snapshot else None),
                "snapshot_id": snapshot.snapshot_id if snapshot else None,
                "cdc_lsn": iceberg_table.properties.get(PROP_CDC_LSN),  # the source position CDC applied through
            })
    return rows


def _cells(row: dict) -> list[str]:
    when = row["last_sync"].replace("T", " ").removesuffix("+00:00") if row["last_sync"] else "never"
    source = row["source"] + (f" (cdc {row['cdc_lsn']})" if row.get("cdc_lsn") else "")
    return [row["schema"], row["table"], source, f"{row['rows']:,}", human_bytes(row["size_bytes"]), when]


def _print_rich(rows: list[dict]) -> None:
    from rich.table import Table

    from bemidb.console import stdout

    table = Table(title="Synced tables")
    for column in COLUMNS:
        table.add_column(column, justify="right" if column in ("rows", "size") else "left")
    for row in rows:
        table.add_row(*_cells(row))
    stdout.print(table)


def _print_plain(rows: list[dict]) -> None:
    """Aligned columns, nothing cut, no colour: what `| grep`, `| sort` and `| column` expect."""
    lines = [list(COLUMNS), *(_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    for line in lines:
        cells = [cell.rjust(width) if column in ("rows", "size") else cell.ljust(width)
                 for cell, width, column in zip(line, widths, COLUMNS, strict=True)]
        sys.stdout.write("  ".join(cells).rstrip() + "\n")


def run(cfg, args) -> int:
    rows = _rows(cfg, args.only_schema)
    output_format = args.format or ("table" if sys.stdout.isatty() else "plain")
    if output_format == "json":
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif output_format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else
                                ["schema", "table", "source", "rows", "size_bytes", "last_sync", "snapshot_id",
                                 "cdc_lsn"],
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    elif output_format == "plain":
        _print_plain(rows)
    else:
        _print_rich(rows)
    if output_format in ("table", "plain") and cfg.source_postgres_database_url:
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
        sys.stdout.write(f"source Postgres: {' '.join(str(exc).split())[:300]}\n")
        return
    for name, state in slots:
        sys.stdout.write(cdc_source.describe_slot(name, state) + "\n")
