"""Quoting names and values into SQL text, the one copy every floor uses (Postgres and DuckDB quote alike)."""

from __future__ import annotations

import re

_PLAIN_IDENT = re.compile(r"^[a-z_][a-z0-9_$]*$")


def quote_ident(name: str) -> str:
    """Always quoted: safe for any name in SQL we generate."""
    return '"' + name.replace('"', '""') + '"'


def quote_ident_if_needed(name: str) -> str:
    """As Postgres's quote_ident() and its catalog text (pg_get_indexdef, regclass output): quoted only when the
    name is not a plain lower-case identifier."""
    return name if _PLAIN_IDENT.match(name) else quote_ident(name)


def quote_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "'" + str(value).replace("'", "''") + "'"
