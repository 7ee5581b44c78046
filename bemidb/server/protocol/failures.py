"""What a failed statement tells the client and the log beyond the error itself.

A relation that does not exist may be a source table under the name bemidb serves it as (BemiDB's naming puts
`analytics.page_views` at `public.analytics_page_views`): the client gets a Postgres-style HINT naming it. The
log line carries the statement, shortened, with its string literals hidden at INFO (they hold passwords, emails,
tokens); DEBUG shows them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

log = logging.getLogger("bemidb.server")  # the session's logger, where failure lines have always been

LOGGED_QUERY_CHARS = 300

# '...' with '' inside, E'...' with backslash escapes, $tag$...$tag$ (dollar quoting)
_LITERAL = re.compile(r"""[Ee]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*'|(\$[A-Za-z_0-9]*\$).*?\1""", re.S)
_SPACE = re.compile(r"\s+")


def served_as_hint(relation: str, served: Iterable[tuple[str, str]]) -> str | None:
    """A HINT for 'relation "<relation>" does not exist' naming the served table that is most likely meant."""
    schema, _, table = relation.lower().rpartition(".")
    tables = sorted({(s, n) for s, n in served})
    if schema:
        renamed = [(s, n) for s, n in tables if n.lower() == f"{schema}_{table}"]
        if renamed:
            s, n = renamed[0]
            return (f'Perhaps you meant to reference the table "{s}.{n}": tables of the source schema {schema} '
                    f"are served as {s}.{schema}_<table> (BemiDB's naming; `bemidb sync postgres "
                    "--keep-schemas` keeps the source's schemas).")
        elsewhere = [(s, n) for s, n in tables if n.lower() == table]
    else:  # not on the search_path, or synced from another schema
        elsewhere = [(s, n) for s, n in tables if n.lower() == table or n.lower().endswith(f"_{table}")]
    if not elsewhere:
        return None
    s, n = elsewhere[0]
    return f'Perhaps you meant to reference the table "{s}.{n}".'


def query_for_log(sql: str, with_literals: bool) -> str:
    """The statement on one short line; string literals replaced by '***' unless `with_literals`."""
    text = sql if with_literals else _LITERAL.sub("'***'", sql)
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= LOGGED_QUERY_CHARS else text[:LOGGED_QUERY_CHARS] + "…"


def report(error, sql: str, tables, pid: int) -> None:
    """Before `error` goes to the client: a missing relation gets a hint naming the table it is served as;
    the log line names the statement."""
    missing = re.fullmatch(r'relation "(.+)" does not exist', error.message) if error.sqlstate == "42P01" else None
    if missing:
        error.hint = served_as_hint(missing.group(1), ((t.schema, t.name) for t in tables)) or error.hint
    if sql:
        query = query_for_log(sql, with_literals=log.isEnabledFor(logging.DEBUG))
        log.info("pid %d: error %s: %s; query: %s", pid, error.sqlstate, error.message, query)
    else:
        log.info("pid %d: error %s: %s", pid, error.sqlstate, error.message)
