"""Postgres SQL -> DuckDB SQL, with sqlglot. The seam between the protocol (session.py) and the engine.

`split(sql)` cuts a simple-query string into statements; `translate(statement, state)` says what one
statement is and, for queries, the DuckDB SQL to run. Translations are cached by text (and the few
session settings they depend on), so a repeated query costs a dictionary lookup.

This first version transpiles with sqlglot's postgres -> duckdb dialects and classifies statements; the
compatibility layer deepens it (function and cast remaps, catalog tables, SET/SHOW semantics).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError


@dataclass(frozen=True)
class Translated:
    kind: str  # "query" | "set" | "show" | "reset" | "transaction" | "noop" | "empty"
    tag: str  # CommandComplete tag word(s): SELECT, SET, SHOW, BEGIN, COMMIT, ROLLBACK, DISCARD ALL, ...
    sql: str | None = None  # DuckDB SQL to run, for kind == "query"
    name: str | None = None  # setting name, for set/show/reset
    value: str | None = None  # setting value, for set


def split(sql: str) -> list[str]:
    """Statements of a simple Query message, in order; comments-only input gives []."""
    try:
        expressions = sqlglot.parse(sql, read="postgres")
    except ParseError:
        return [sql] if sql.strip() else []
    return [e.sql(dialect="postgres") for e in expressions if e is not None]


@lru_cache(maxsize=4096)
def translate(statement: str) -> Translated:
    """One statement -> what to do with it. Raises ParseError (SQLSTATE 42601) when it cannot be parsed."""
    tree = sqlglot.parse_one(statement, read="postgres")
    if isinstance(tree, exp.Set):
        item = tree.expressions[0] if tree.expressions else None
        eq = item.this if item is not None else None
        if isinstance(eq, exp.EQ):
            return Translated("set", "SET", name=eq.left.name.lower(), value=eq.right.name)
        return Translated("noop", "SET")
    if isinstance(tree, exp.Transaction):
        return Translated("transaction", "BEGIN")
    if isinstance(tree, exp.Commit):
        return Translated("transaction", "COMMIT")
    if isinstance(tree, exp.Rollback):
        return Translated("transaction", "ROLLBACK")
    return Translated("query", "SELECT", sql=tree.sql(dialect="duckdb"))
