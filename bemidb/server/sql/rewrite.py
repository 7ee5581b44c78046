"""Postgres SQL -> what to do: a DuckDB query, a setting change, a transaction verb, a materialized view.

`split(sql)` cuts a simple-query string into statements; `translate(statement)` classifies one statement and,
for queries, returns the DuckDB SQL to run. Utility statements (SET/SHOW/RESET, BEGIN..., DISCARD, LISTEN,
materialized views) are recognised by their leading keywords, which is faster and more faithful than
sqlglot's partial support for them; queries go through sqlglot (postgres -> duckdb) plus the transforms in
remap.py. Translations are cached by statement text, so a repeated query costs a dictionary lookup.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import ParseError

from bemidb.server.errors import FEATURE_NOT_SUPPORTED, INSUFFICIENT_PRIVILEGE, READ_ONLY, PgError
from bemidb.server.sql import remap

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # "falling back to Command" warnings are expected


class _Postgres(Postgres):
    """sqlglot's Postgres dialect, except to_char stays a plain call: remap.py converts its template itself."""

    class Parser(Postgres.Parser):
        FUNCTIONS = {**Postgres.Parser.FUNCTIONS,
                     "TO_CHAR": lambda args: exp.Anonymous(this="to_char", expressions=args)}


@dataclass(frozen=True)
class Translated:
    kind: str  # "query" | "set" | "set_config" | "show" | "reset" | "transaction" | "noop" | "empty" | "matview"
    tag: str  # CommandComplete tag word(s): SELECT, SET, SHOW, BEGIN, COMMIT, ROLLBACK, DISCARD ALL, ...
    sql: str | None = None  # DuckDB SQL to run, for kind == "query" (and the matview's query)
    name: str | None = None  # setting name for set/show/reset ("all" for SHOW ALL / RESET ALL); matview name
    value: str | None = None  # setting value for set (None = DEFAULT); matview action: create|refresh|drop
    schema: str | None = None  # matview schema when written qualified (else the session's first schema)
    definition: str | None = None  # matview: the defining query as Postgres SQL (kept in the catalog)
    flags: frozenset[str] = field(default_factory=frozenset)  # matview: if_exists, if_not_exists, no_data ...
    param_hints: tuple[tuple[int, int], ...] = ()  # (0-based parameter index, type OID) DuckDB cannot infer
    new_name: str | None = None  # matview rename: the new name; set_config: the result column's name


# ---------------------------------------------------------------------------------------------------------
# Splitting

def split(sql: str) -> list[str]:
    """Statements of a simple Query message, in order, as the client wrote them; comments-only input gives [].

    Splits on top-level semicolons with a small lexer (quotes, dollar quotes, comments, parentheses), so the
    text of each statement reaches `translate` untouched (sqlglot would re-generate it)."""
    out, start, i, n = [], 0, 0, len(sql)
    depth = 0
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            j = i + 1
            while j < n:
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:
                        j += 2
                        continue
                    break
                if ch == "'" and sql[j] == "\\" and i > 0 and sql[i - 1] in "eE":
                    j += 1
                j += 1
            i = j + 1
            continue
        if ch == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if ch == "/" and sql.startswith("/*", i):
            level, j = 1, i + 2
            while j < n and level:
                if sql.startswith("/*", j):
                    level, j = level + 1, j + 2
                elif sql.startswith("*/", j):
                    level, j = level - 1, j + 2
                else:
                    j += 1
            i = j
            continue
        if ch == "$":
            m = _DOLLAR_TAG.match(sql, i)
            if m and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
                end = sql.find(m.group(0), m.end())
                i = n if end < 0 else end + len(m.group(0))
                continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif ch == ";" and depth == 0:
            out.append(sql[start:i])
            start = i + 1
        i += 1
    out.append(sql[start:])
    return [s.strip() for s in out if _strip_comments(s).strip()]


_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def _strip_comments(sql: str) -> str:
    """Leading/trailing comments and whitespace removed (inner ones kept)."""
    text = sql.strip()
    while True:
        if text.startswith("--"):
            nl = text.find("\n")
            text = "" if nl < 0 else text[nl + 1:].lstrip()
        elif text.startswith("/*"):
            end = text.find("*/")
            text = "" if end < 0 else text[end + 2:].lstrip()
        else:
            break
    return text.rstrip().rstrip(";").rstrip()


# ---------------------------------------------------------------------------------------------------------
# Utility statements, by their leading keywords

_WORD = r"[A-Za-z_][A-Za-z0-9_$]*"
_NAME = rf'(?:"(?:[^"]|"")+"|{_WORD})'
_QNAME = rf"(?P<qname>{_NAME}(?:\s*\.\s*{_NAME})?)"

_SET = re.compile(r"^SET\s+(?:(?:SESSION|LOCAL)\s+)?(?P<rest>.*)$", re.I | re.S)
_SET_TIME_ZONE = re.compile(r"^TIME\s+ZONE\s+(?P<value>.*)$", re.I | re.S)
_SET_ASSIGN = re.compile(rf"^(?P<name>{_NAME}(?:\.{_NAME})*)\s*(?:=|\bTO\b)\s*(?P<value>.*)$", re.I | re.S)
_SHOW = re.compile(rf"^SHOW\s+(?P<name>ALL|TIME\s+ZONE|TRANSACTION\s+ISOLATION\s+LEVEL|SESSION\s+AUTHORIZATION|"
                   rf"{_NAME}(?:\.{_NAME})*)$", re.I | re.S)
_RESET = re.compile(rf"^RESET\s+(?P<name>ALL|TIME\s+ZONE|SESSION\s+AUTHORIZATION|ROLE|{_NAME}(?:\.{_NAME})*)$",
                    re.I | re.S)
_BEGIN = re.compile(r"^(?:BEGIN|START\s+TRANSACTION)\b", re.I)
_COMMIT = re.compile(r"^(?:COMMIT|END)(?:\s+(?:WORK|TRANSACTION))?(?:\s+AND\s+(?:NO\s+)?CHAIN)?$", re.I)
_ROLLBACK = re.compile(r"^(?:ROLLBACK|ABORT)(?:\s+(?:WORK|TRANSACTION))?(?:\s+AND\s+(?:NO\s+)?CHAIN)?$", re.I)
_ROLLBACK_TO = re.compile(rf"^ROLLBACK(?:\s+(?:WORK|TRANSACTION))?\s+TO\s+(?:SAVEPOINT\s+)?{_NAME}$", re.I)
_SAVEPOINT = re.compile(rf"^SAVEPOINT\s+{_NAME}$", re.I)
_RELEASE = re.compile(rf"^RELEASE\s+(?:SAVEPOINT\s+)?{_NAME}$", re.I)
_DISCARD = re.compile(r"^DISCARD\s+(?P<what>ALL|PLANS|SEQUENCES|TEMP|TEMPORARY)$", re.I)
_DEALLOCATE = re.compile(rf"^DEALLOCATE\s+(?:PREPARE\s+)?(?P<what>ALL|{_NAME})$", re.I)
_LISTEN = re.compile(rf"^(?P<verb>LISTEN|UNLISTEN|NOTIFY)\s+(?:\*|{_NAME})(?:\s*,.*)?$", re.I | re.S)
_HARMLESS = re.compile(r"^(?P<verb>CHECKPOINT|ANALYZE|VACUUM)\b", re.I)
# Loading code into the engine: Postgres's LOAD of a library and DuckDB's INSTALL/LOAD of an extension would
# both hand a client the server process. Refused like LOAD for a non-superuser in Postgres.
_LOAD_CODE = re.compile(r"^(?:FORCE\s+)?(?P<verb>LOAD|INSTALL)\b", re.I)
_CLOSE = re.compile(rf"^CLOSE\s+(?:ALL|{_NAME})$", re.I)
# SELECT set_config('name', 'value', is_local): Postgres's function form of SET, as tools send it (pg_dump's
# search_path, ORMs). With literal arguments it is a SET that answers one row, the new value.
_LITERAL = r"'(?:[^']|'')*'"
_SET_CONFIG = re.compile(rf"^SELECT\s+(?:pg_catalog\s*\.\s*)?set_config\s*\(\s*(?P<name>{_LITERAL})\s*,\s*"
                         rf"(?P<value>{_LITERAL})\s*,\s*(?P<local>true|false|'t'|'f'|'true'|'false')\s*\)"
                         rf"(?:\s+(?:AS\s+)?(?P<alias>{_NAME}))?$", re.I | re.S)

_CREATE_MATVIEW = re.compile(
    rf"^CREATE\s+MATERIALIZED\s+VIEW\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?{_QNAME}\s*(?:\((?P<cols>[^)]*)\)\s*)?"
    r"(?:WITH\s*\([^)]*\)\s*)?(?:TABLESPACE\s+\S+\s+)?AS\s+(?P<query>.*?)"
    r"(?:\s+WITH\s+(?P<no>NO\s+)?DATA)?$", re.I | re.S)
_REFRESH_MATVIEW = re.compile(rf"^REFRESH\s+MATERIALIZED\s+VIEW\s+(?P<conc>CONCURRENTLY\s+)?{_QNAME}"
                              r"(?:\s+WITH\s+(?P<no>NO\s+)?DATA)?$", re.I | re.S)
_DROP_MATVIEW = re.compile(rf"^DROP\s+MATERIALIZED\s+VIEW\s+(?P<ie>IF\s+EXISTS\s+)?{_QNAME}"
                           r"(?:\s+(?:CASCADE|RESTRICT))?$", re.I | re.S)

_RENAME_MATVIEW = re.compile(rf"^ALTER\s+MATERIALIZED\s+VIEW\s+(?P<ie>IF\s+EXISTS\s+)?{_QNAME}\s+RENAME\s+TO\s+"
                             rf"(?P<new>{_NAME})$", re.I | re.S)

_WRITE_VERBS = re.compile(r"^(?P<verb>INSERT|UPDATE|DELETE|MERGE|TRUNCATE|CREATE|DROP|ALTER|GRANT|REVOKE|"
                          r"COMMENT|REINDEX|CLUSTER|REFRESH|SECURITY\s+LABEL|IMPORT|LOCK|CALL|DO|COPY\s+\S+\s+FROM)"
                          r"\b", re.I)
_UNSUPPORTED = re.compile(r"^(?P<verb>PREPARE|EXECUTE|DECLARE|FETCH|MOVE|COPY)\b", re.I)


def _unquote(name: str) -> str:
    name = name.strip()
    if name.startswith('"') and name.endswith('"'):
        return name[1:-1].replace('""', '"')
    return name.lower()


def _split_qname(qname: str) -> tuple[str | None, str]:
    parts = re.findall(_NAME, qname)
    if len(parts) == 2:
        return _unquote(parts[0]), _unquote(parts[1])
    return None, _unquote(parts[0])


def _setting_value(raw: str) -> str | None:
    """The value part of SET as Postgres flattens it: 'quoted' -> text, ident -> lower-case, lists joined."""
    raw = raw.strip()
    if re.fullmatch(r"DEFAULT", raw, re.I):
        return None
    items = []
    for token in re.finditer(r"'(?:[^']|'')*'|E'(?:[^'\\]|\\.|'')*'|\"(?:[^\"]|\"\")*\"|[^,\s]+", raw):
        text = token.group(0)
        if text.startswith("'"):
            items.append(text[1:-1].replace("''", "'"))
        elif text[:2] in ("E'", "e'"):
            items.append(text[2:-1].replace("''", "'").encode().decode("unicode_escape"))
        elif text.startswith('"'):
            items.append(text)
        else:
            items.append(text.lower())
    return ", ".join(items)


def _utility(text: str) -> Translated | None:
    """A utility statement's meaning, or None for a query."""
    head = text[:12].upper()
    if head.startswith("SET"):
        m = _SET.match(text)
        rest = m.group("rest").strip() if m else ""
        if m := _SET_TIME_ZONE.match(rest):
            value = m.group("value").strip()
            if re.fullmatch(r"LOCAL|DEFAULT", value, re.I):
                return Translated("reset", "SET", name="TimeZone")
            if re.fullmatch(r"INTERVAL\s+.*", value, re.I | re.S):
                raise PgError(FEATURE_NOT_SUPPORTED, "SET TIME ZONE INTERVAL is not supported; use a zone name")
            return Translated("set", "SET", name="TimeZone", value=_setting_value(value))
        if re.match(r"(?:(?:SESSION\s+)?CHARACTERISTICS\s+AS\s+)?TRANSACTION\b", rest, re.I):
            return Translated("noop", "SET")  # isolation/read-only: every transaction here is read-only
        if re.match(r"(?:SESSION\s+AUTHORIZATION|ROLE)\b", rest, re.I):
            return Translated("noop", "SET")
        if m := re.match(r"NAMES\s+(?P<value>.*)$", rest, re.I | re.S):
            return Translated("set", "SET", name="client_encoding", value=_setting_value(m.group("value")))
        if m := _SET_ASSIGN.match(rest):
            return Translated("set", "SET", name=m.group("name").strip('"'), value=_setting_value(m.group("value")))
        raise ParseError(f'syntax error at or near "{rest.split()[0] if rest.split() else "SET"}"')
    if head.startswith("SELECT") and (m := _SET_CONFIG.match(text)):
        name, value = (m.group(g)[1:-1].replace("''", "'") for g in ("name", "value"))
        # is_local is taken as SET LOCAL is here: for the session (every transaction is read-only anyway)
        return Translated("set_config", "SELECT 1", name=name, value=value,
                          new_name=_unquote(m.group("alias")) if m.group("alias") else "set_config")
    if head.startswith("SHOW"):
        if m := _SHOW.match(text):
            name = " ".join(m.group("name").split())
            upper = name.upper()
            name = {"TIME ZONE": "TimeZone", "TRANSACTION ISOLATION LEVEL": "transaction_isolation",
                    "SESSION AUTHORIZATION": "session_authorization"}.get(upper, name.strip('"'))
            return Translated("show", "SHOW", name="all" if upper == "ALL" else name)
        return None
    if head.startswith("RESET"):
        if m := _RESET.match(text):
            name = " ".join(m.group("name").split())
            upper = name.upper()
            if upper in ("SESSION AUTHORIZATION", "ROLE"):
                return Translated("noop", "RESET")
            name = {"TIME ZONE": "TimeZone"}.get(upper, name.strip('"'))
            return Translated("reset", "RESET", name="all" if upper == "ALL" else name)
        return None
    if _BEGIN.match(text):
        return Translated("transaction", "START TRANSACTION" if head.startswith("START") else "BEGIN")
    if _COMMIT.match(text):
        return Translated("transaction", "COMMIT")
    if _ROLLBACK_TO.match(text) or _ROLLBACK.match(text):
        return Translated("transaction", "ROLLBACK")
    if _SAVEPOINT.match(text):
        return Translated("transaction", "SAVEPOINT")
    if _RELEASE.match(text):
        return Translated("transaction", "RELEASE")
    if m := _DISCARD.match(text):
        what = m.group("what").upper()
        return Translated("noop", "DISCARD " + ("TEMP" if what == "TEMPORARY" else what))
    if m := _DEALLOCATE.match(text):
        return Translated("noop", "DEALLOCATE ALL" if m.group("what").upper() == "ALL" else "DEALLOCATE",
                          name=_unquote(m.group("what")))
    if m := _LISTEN.match(text):
        return Translated("noop", m.group("verb").upper())
    if _CLOSE.match(text):
        return Translated("noop", "CLOSE CURSOR")
    if m := _HARMLESS.match(text):
        return Translated("noop", m.group("verb").upper())
    if m := _LOAD_CODE.match(text):
        raise PgError(INSUFFICIENT_PRIVILEGE, f"permission denied to {m.group('verb').upper()}: this server "
                                              "does not load libraries or extensions")
    if head.startswith(("CREATE", "REFRESH", "DROP", "ALTER")):
        matview = _matview(text)
        if matview is not None:
            return matview
    if m := _WRITE_VERBS.match(text):
        verb = " ".join(m.group("verb").upper().split()[:1])
        raise PgError(READ_ONLY, f"cannot execute {verb} in a read-only transaction")
    if (m := _UNSUPPORTED.match(text)) and not text[:4].upper() == "COPY":
        raise PgError(FEATURE_NOT_SUPPORTED, f"{m.group('verb').upper()} statements are not supported; "
                                             "use the extended query protocol for prepared statements")
    return None


def _matview(text: str) -> Translated | None:
    if m := _CREATE_MATVIEW.match(text):
        schema, name = _split_qname(m.group("qname"))
        definition = m.group("query").strip()
        query = translate(definition)
        if query.kind != "query":
            raise ParseError("a materialized view needs a query")
        flags = {"if_not_exists"} if m.group("ine") else set()
        if m.group("no"):
            flags.add("no_data")
        if m.group("cols"):
            cols = [_unquote(c) for c in m.group("cols").split(",")]
            wrapped = f"SELECT * FROM ({query.sql}) AS bemidb_matview({', '.join(_quote(c) for c in cols)})"
            query = Translated("query", "SELECT", sql=wrapped)
        return Translated("matview", "SELECT", sql=query.sql, name=name, value="create", schema=schema,
                          definition=definition, flags=frozenset(flags))
    if m := _REFRESH_MATVIEW.match(text):
        schema, name = _split_qname(m.group("qname"))
        flags = {"no_data"} if m.group("no") else set()
        if m.group("conc"):
            flags.add("concurrently")
        return Translated("matview", "REFRESH MATERIALIZED VIEW", name=name, value="refresh", schema=schema,
                          flags=frozenset(flags))
    if m := _RENAME_MATVIEW.match(text):
        schema, name = _split_qname(m.group("qname"))
        return Translated("matview", "ALTER MATERIALIZED VIEW", name=name, value="rename", schema=schema,
                          new_name=_unquote(m.group("new")),
                          flags=frozenset({"if_exists"} if m.group("ie") else set()))
    if m := _DROP_MATVIEW.match(text):
        schema, name = _split_qname(m.group("qname"))
        return Translated("matview", "DROP MATERIALIZED VIEW", name=name, value="drop", schema=schema,
                          flags=frozenset({"if_exists"} if m.group("ie") else set()))
    return None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------------------------------------------------
# Queries

PASS_THROUGH_CHARS = 256 * 1024


@lru_cache(maxsize=4096)
def translate(statement: str) -> Translated:
    """One statement -> what to do with it. Raises ParseError (SQLSTATE 42601) when it cannot be parsed, and
    PgError for statements a read-only server refuses (25006) or does not support (0A000)."""
    text = _strip_comments(statement)
    if not text:
        return Translated("empty", "")
    utility = _utility(text)
    if utility is not None:
        return utility
    if len(statement) > PASS_THROUGH_CHARS:
        # Huge statements are data (IN lists, VALUES): sqlglot takes seconds per MB, DuckDB milliseconds.
        return Translated("query", _tag_of(text), sql=statement)
    tree = sqlglot.parse_one(_OID_ARRAY.sub("::bigint[]", statement), read=_Postgres)
    if tree is None:
        return Translated("empty", "")
    if isinstance(tree, exp.Command):
        # sqlglot gave up on the statement (EXPLAIN ANALYZE, VALUES forms ...): DuckDB gets it as written.
        return Translated("query", _tag_of(text), sql=statement)
    tree = remap.transform(tree)
    return Translated("query", _tag_of(text), sql=tree.sql(dialect="duckdb"), param_hints=_param_hints(statement))


# Parameter types Postgres clients rely on that DuckDB would infer differently (asyncpg binds its type
# introspection query's $1 as oid[]; an int8[] there makes it introspect forever).
_PARAM_CAST = re.compile(r"\$(\d+)\s*::\s*(?:pg_catalog\.)?(oid|regclass|regtype|name)\s*(\[\])?", re.I)
_HINT_OIDS = {("oid", False): 26, ("oid", True): 1028, ("regclass", False): 2205, ("regtype", False): 2206,
              ("name", False): 19, ("name", True): 1003}


def _param_hints(statement: str) -> tuple[tuple[int, int], ...]:
    hints = []
    for m in _PARAM_CAST.finditer(statement):
        oid = _HINT_OIDS.get((m.group(2).lower(), bool(m.group(3))))
        if oid:
            hints.append((int(m.group(1)) - 1, oid))
    return tuple(hints)


# sqlglot reads `oid[]` as the oid type indexed by [], not as an array type (asyncpg sends $1::oid[]).
_OID_ARRAY = re.compile(r"::\s*(?:pg_catalog\.)?(?:oid|regtype|regclass)\s*\[\]", re.I)


def _tag_of(text: str) -> str:
    word = text.split(None, 1)[0].upper().lstrip("(") if text.split() else "SELECT"
    return "EXPLAIN" if word == "EXPLAIN" else "SELECT"
