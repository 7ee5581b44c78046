"""Parameter types DuckDB's binder cannot infer, found from the context around the parameter as Postgres does.

DuckDB infers `col = $1`, `col IN ($1)`, `col LIKE $1`, casts and function arguments itself; it leaves
`col = ANY($1)` / `ALL($1)` unknown, where Postgres says "an array of col's type" (psycopg, node-postgres,
asyncpg, pgx send untyped lists that way). The probe query rewrites each `ANY($n)` to a plain `$n`, so DuckDB
infers the element type from the same context; the caller makes that an array type.
"""

from __future__ import annotations

from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

_QUANTIFIERS = {TokenType.ANY, TokenType.ALL, TokenType.SOME}


def quantified_probe(sql: str) -> tuple[str, set[int]] | None:
    """(probe SQL, 0-based indexes of the parameters written `ANY($n)` / `ALL($n)` / `SOME($n)`), or None."""
    try:
        tokens = DuckDB().tokenize(sql)
    except TokenError:
        return None
    cuts: list[tuple[int, int, str]] = []  # (start, end inclusive, replacement) in sql
    indexes: set[int] = set()
    for i, token in enumerate(tokens[:-4]):
        if token.token_type not in _QUANTIFIERS or tokens[i + 1].token_type != TokenType.L_PAREN:
            continue
        dollar, number, close = tokens[i + 2], tokens[i + 3], tokens[i + 4]
        if dollar.token_type != TokenType.PARAMETER or number.token_type != TokenType.NUMBER or \
                close.token_type != TokenType.R_PAREN or not number.text.isdigit():
            continue
        cuts.append((token.start, close.end, f"${number.text}"))
        indexes.add(int(number.text) - 1)
    if not cuts:
        return None
    out, last = [], 0
    for start, end, replacement in cuts:
        out.append(sql[last:start])
        out.append(replacement)
        last = end + 1
    out.append(sql[last:])
    return "".join(out), indexes
