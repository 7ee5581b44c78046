"""Column aliases that are SQL keywords (`... AS select, ... AS delete FROM`): Postgres takes any keyword after
AS as a column label, sqlglot fails to parse them. Metabase's table-privileges query is written so. Quoting
them, folded to lower case as Postgres folds a bare name, keeps the statement's meaning."""

from __future__ import annotations

from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

_NAME_TOKENS = {TokenType.VAR, TokenType.IDENTIFIER, TokenType.STRING, TokenType.L_PAREN, TokenType.NUMBER,
                TokenType.PARAMETER, TokenType.PLACEHOLDER}
_AFTER_LABEL = {TokenType.COMMA, TokenType.FROM, TokenType.R_PAREN, TokenType.SEMICOLON}


def quote_keyword_aliases(sql: str) -> str:
    """`sql` with every keyword used as an AS label quoted; unchanged when there is none."""
    try:
        tokens = Postgres().tokenize(sql)
    except TokenError:
        return sql
    cuts = []
    for i, token in enumerate(tokens[:-1]):
        label = tokens[i + 1]
        after = tokens[i + 2].token_type if i + 2 < len(tokens) else None
        if token.token_type != TokenType.ALIAS or label.token_type in _NAME_TOKENS:
            continue
        if (after is None or after in _AFTER_LABEL) and label.text.isidentifier():
            cuts.append((label.start, label.end, f'"{label.text.lower()}"'))
    for start, end, quoted in reversed(cuts):
        sql = sql[:start] + quoted + sql[end + 1:]
    return sql
