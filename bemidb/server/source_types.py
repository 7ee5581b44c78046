"""View columns for source types Parquet cannot carry as such, stored as their Postgres text by the syncer:
timetz (Postgres's '12:00:00.123456-05', read as DuckDB TIMETZ, which keeps the offset and orders by the UTC
instant, then the offset, as Postgres does) and enums (read as a DuckDB ENUM of the labels in their declaration
order, recorded at sync: ORDER BY, min/max and comparisons follow that order, as in Postgres).

A timetz column written before (an Iceberg time, converted to UTC) is read as it is: served as before until
its next full sync writes the text form.
"""

from __future__ import annotations

from pyiceberg.types import ListType, StringType

from bemidb.quoting import quote_literal
from bemidb.server.catalog import pg_types


def enum_sql_type(labels: list[str]) -> str:
    """DuckDB's type for an enum of these labels, in declaration order."""
    return "ENUM(" + ", ".join(quote_literal(label) for label in labels) + ")"


def enum_of(pg_type: str, enums: dict[str, dict]) -> dict | None:
    """The recorded enum ({"oid", "labels"}) of a source type text ('mood', 'mood[]'), or None."""
    base = pg_type[:-2].strip() if pg_type.endswith("[]") else pg_type
    found = enums.get(base)
    return found if isinstance(found, dict) and found.get("labels") else None


def view_cast(ident: str, name: str, iceberg_type, pg_type: str, enums: dict[str, dict]) -> str | None:
    """The typed expression of a stored-as-text column, or None when the Parquet column is read as it is."""
    is_list = isinstance(iceberg_type, ListType)
    leaf = iceberg_type.element_type if is_list else iceberg_type
    if not isinstance(leaf, StringType) or pg_type.endswith("]") != is_list:
        return None
    enum = enum_of(pg_type, enums)
    if enum is not None:
        target = enum_sql_type(enum["labels"]) + ("[]" if is_list else "")
    else:
        parsed = pg_types.parse_type_name(pg_type)
        if parsed is None or pg_types.element_of(parsed[0]).name != "timetz":
            return None
        target = "TIMETZ[]" if is_list else "TIMETZ"
    # a label added at the source after the sync (or a text DuckDB cannot read) fails the query, never NULL
    value = f"TRY_CAST({ident} AS {target})"
    if is_list:
        nulls = "len(list_filter({}, lambda x: x IS NULL))"
        bad = f"{ident} IS NOT NULL AND ({value} IS NULL OR {nulls.format(value)} > {nulls.format(ident)})"
    else:
        bad = f"{ident} IS NOT NULL AND {value} IS NULL"
    message = quote_literal(f"bemidb cannot read column {name} as {pg_type}: sync the table again")
    return f"CASE WHEN {bad} THEN error({message}) ELSE {value} END"
