"""Which source tables a run syncs, and what they are called in the destination (BemiDB's naming)."""

from __future__ import annotations

from dataclasses import dataclass


def destination_name(schema: str, table: str) -> str:
    """`public.t` -> `t`, `s.t` -> `s_t` (BemiDB's rule, so its users' queries keep working)."""
    return table if schema == "public" else f"{schema}_{table}"


def destination(schema: str, table: str, namespace: str, keep_schemas: bool = False) -> tuple[str, str]:
    """Where source `schema.table` lands: BemiDB's naming into `namespace` (the default), or the same
    schema and name as in the source (SOURCE_POSTGRES_KEEP_SCHEMAS), so queries written with schema-qualified
    names run unchanged."""
    return (schema, table) if keep_schemas else (namespace, destination_name(schema, table))


def matches(pattern: str, schema: str, table: str) -> bool:
    pattern_schema, pattern_table = pattern.split(".", 1)
    return pattern_schema == schema and pattern_table in ("*", table)


@dataclass
class Selection:
    selected: list[tuple[str, str]]  # (schema, table) in source order
    unknown: list[str]  # --include entries naming no table (wildcards matching nothing are just notes)
    empty_wildcards: list[str]


def select_tables(tables: list[tuple[str, str]], include: list[str], exclude: list[str]) -> Selection:
    """All tables when `include` is empty; `exclude` always wins."""
    selected = [t for t in tables
                if (not include or any(matches(p, *t) for p in include))
                and not any(matches(p, *t) for p in exclude)]
    unknown, empty = [], []
    for pattern in include:
        if not any(matches(pattern, *t) for t in tables):
            (empty if pattern.endswith(".*") else unknown).append(pattern)
    return Selection(selected, unknown, empty)
