"""Utility statements, recognised by their leading keywords (faster and more faithful than sqlglot's partial
support for them): SET/SHOW/RESET, set_config, transaction verbs, DISCARD/DEALLOCATE/LISTEN, COPY ... TO STDOUT,
materialized views, and the writes and code loading a read-only server refuses."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlglot.errors import ParseError

from bemidb.quoting import quote_ident, quote_ident_if_needed
from bemidb.server.errors import (
    FEATURE_NOT_SUPPORTED,
    INSUFFICIENT_PRIVILEGE,
    READ_ONLY,
    SYNTAX_ERROR,
    PgError,
)
from bemidb.server.sql.plans import (
    CloseCursor,
    CopyOut,
    Deallocate,
    DeclareCursor,
    FetchCursor,
    Matview,
    NoOp,
    Plan,
    Query,
    ResetSetting,
    SetConfig,
    SetSetting,
    ShowSetting,
    Transaction,
)

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
_CLOSE = re.compile(rf"^CLOSE\s+(?P<name>ALL|{_NAME})$", re.I)
_DECLARE = re.compile(rf"^DECLARE\s+(?P<name>{_NAME})\s+(?P<opts>(?:(?:BINARY|ASENSITIVE|INSENSITIVE|NO\s+SCROLL|"
                      rf"SCROLL)\s+)*)CURSOR\s+(?:(?P<hold>WITH|WITHOUT)\s+HOLD\s+)?FOR\s+(?P<query>.*)$",
                      re.I | re.S)
_FETCH = re.compile(rf"^(?P<verb>FETCH|MOVE)\s+(?:(?P<dir>NEXT|PRIOR|FIRST|LAST|ALL|(?:ABSOLUTE|RELATIVE)\s+[-+]?\d+|"
                    rf"[-+]?\d+|(?:FORWARD|BACKWARD)(?:\s+(?:ALL|[-+]?\d+))?)\s+)?(?:(?:FROM|IN)\s+)?"
                    rf"(?P<name>{_NAME})$", re.I | re.S)
# GUCs whose list items Postgres re-quotes as identifiers when it flattens SET's arguments (GUC_LIST_QUOTE)
_LIST_QUOTE = {"search_path", "temp_tablespaces", "session_preload_libraries", "local_preload_libraries",
               "shared_preload_libraries"}
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


def _setting_value(raw: str, name: str = "") -> str | None:
    """The value part of SET as Postgres flattens it: 'quoted' and "quoted" -> their text, ident -> lower-case,
    lists joined; for list settings such as search_path each item is re-quoted as an identifier if it needs it."""
    list_quote = name.lower() in _LIST_QUOTE
    raw = raw.strip()
    if re.fullmatch(r"DEFAULT", raw, re.I):
        return None
    items = []
    for token in re.finditer(r"'(?:[^']|'')*'|E'(?:[^'\\]|\\.|'')*'|\"(?:[^\"]|\"\")*\"|[^,\s]+", raw):
        text = token.group(0)
        if text.startswith("'"):
            item = text[1:-1].replace("''", "'")
        elif text[:2] in ("E'", "e'"):
            item = text[2:-1].replace("''", "'").encode().decode("unicode_escape")
        elif text.startswith('"'):
            item = text[1:-1].replace('""', '"')
        else:
            item = text.lower()
            list_quote = list_quote and not re.fullmatch(r"[-+]?[\d.]+", item)
        items.append(quote_ident_if_needed(item) if list_quote else item)
    return ", ".join(items)


def classify(text: str, translate: Callable[[str], Plan]) -> Plan | None:
    """A utility statement's plan, or None for a query. `translate` plans the query inside a COPY or a
    materialized view (rewrite.translate, passed in so that this module does not import its caller)."""
    head = text[:12].upper()
    if head.startswith("SET"):
        m = _SET.match(text)
        rest = m.group("rest").strip() if m else ""
        if m := _SET_TIME_ZONE.match(rest):
            value = m.group("value").strip()
            if re.fullmatch(r"LOCAL|DEFAULT", value, re.I):
                return ResetSetting("TimeZone", tag="SET")
            if re.fullmatch(r"INTERVAL\s+.*", value, re.I | re.S):
                raise PgError(FEATURE_NOT_SUPPORTED, "SET TIME ZONE INTERVAL is not supported; use a zone name")
            return SetSetting("TimeZone", _setting_value(value))
        if re.match(r"(?:(?:SESSION\s+)?CHARACTERISTICS\s+AS\s+)?TRANSACTION\b", rest, re.I):
            return NoOp("SET")  # isolation/read-only: every transaction here is read-only
        if re.match(r"(?:SESSION\s+AUTHORIZATION|ROLE)\b", rest, re.I):
            return NoOp("SET")
        if m := re.match(r"NAMES\s+(?P<value>.*)$", rest, re.I | re.S):
            return SetSetting("client_encoding", _setting_value(m.group("value")))
        if m := _SET_ASSIGN.match(rest):
            name = m.group("name").strip('"')
            return SetSetting(name, _setting_value(m.group("value"), name))
        raise ParseError(f'syntax error at or near "{rest.split()[0] if rest.split() else "SET"}"')
    if head.startswith("SELECT") and (m := _SET_CONFIG.match(text)):
        name, value = (m.group(g)[1:-1].replace("''", "'") for g in ("name", "value"))
        # is_local is taken as SET LOCAL is here: for the session (every transaction is read-only anyway)
        return SetConfig(name, value, _unquote(m.group("alias")) if m.group("alias") else "set_config")
    if head.startswith("SHOW"):
        if m := _SHOW.match(text):
            name = " ".join(m.group("name").split())
            upper = name.upper()
            name = {"TIME ZONE": "TimeZone", "TRANSACTION ISOLATION LEVEL": "transaction_isolation",
                    "SESSION AUTHORIZATION": "session_authorization"}.get(upper, name.strip('"'))
            return ShowSetting("all" if upper == "ALL" else name)
        return None
    if head.startswith("RESET"):
        if m := _RESET.match(text):
            name = " ".join(m.group("name").split())
            upper = name.upper()
            if upper in ("SESSION AUTHORIZATION", "ROLE"):
                return NoOp("RESET")
            name = {"TIME ZONE": "TimeZone"}.get(upper, name.strip('"'))
            return ResetSetting("all" if upper == "ALL" else name)
        return None
    if head.startswith("COPY"):
        return _copy(text, translate)
    if _BEGIN.match(text):
        return Transaction("START TRANSACTION" if head.startswith("START") else "BEGIN")
    if _COMMIT.match(text):
        return Transaction("COMMIT")
    if _ROLLBACK_TO.match(text):
        return Transaction("ROLLBACK", to_savepoint=True)
    if _ROLLBACK.match(text):
        return Transaction("ROLLBACK")
    if _SAVEPOINT.match(text):
        return Transaction("SAVEPOINT")
    if _RELEASE.match(text):
        return Transaction("RELEASE")
    if m := _DISCARD.match(text):
        what = m.group("what").upper()
        return NoOp("DISCARD " + ("TEMP" if what == "TEMPORARY" else what))
    if m := _DEALLOCATE.match(text):
        if m.group("what").upper() == "ALL":
            return Deallocate(None, "DEALLOCATE ALL")
        return Deallocate(_unquote(m.group("what")))
    if m := _LISTEN.match(text):
        return NoOp(m.group("verb").upper())
    if m := _CLOSE.match(text):
        if m.group("name").upper() == "ALL":
            return CloseCursor(None, "CLOSE CURSOR ALL")
        return CloseCursor(_unquote(m.group("name")))
    if head.startswith("DECLARE"):
        return _declare(text, translate)
    if head.startswith(("FETCH", "MOVE")):
        return _fetch(text)
    if m := _HARMLESS.match(text):
        return NoOp(m.group("verb").upper())
    if m := _LOAD_CODE.match(text):
        raise PgError(INSUFFICIENT_PRIVILEGE, f"permission denied to {m.group('verb').upper()}: this server "
                                              "does not load libraries or extensions")
    if head.startswith(("CREATE", "REFRESH", "DROP", "ALTER")):
        matview = _matview(text, translate)
        if matview is not None:
            return matview
    if m := _WRITE_VERBS.match(text):
        verb = " ".join(m.group("verb").upper().split()[:1])
        raise PgError(READ_ONLY, f"cannot execute {verb} in a read-only transaction")
    if m := _UNSUPPORTED.match(text):
        raise PgError(FEATURE_NOT_SUPPORTED, f"{m.group('verb').upper()} statements are not supported; "
                                             "use the extended query protocol for prepared statements")
    return None


def _declare(text: str, translate: Callable[[str], Plan]) -> DeclareCursor:
    m = _DECLARE.match(text)
    if m is None:
        raise ParseError(f'syntax error at or near "{text.split()[2] if len(text.split()) > 2 else "DECLARE"}"')
    opts = " ".join(m.group("opts").upper().split())
    inner = m.group("query").strip()
    try:
        query = translate(inner)
    except ParseError:  # DuckDB may parse what sqlglot cannot: checked when the cursor starts
        query = Query(inner, unparsed=True)
    if not isinstance(query, Query) or query.tag != "SELECT":
        raise PgError(SYNTAX_ERROR, "DECLARE CURSOR needs a SELECT or VALUES query")
    return DeclareCursor(_unquote(m.group("name")), query, hold=(m.group("hold") or "").upper() == "WITH",
                         binary="BINARY" in opts.split(), scroll="SCROLL" in opts and "NO SCROLL" not in opts)


def _fetch(text: str) -> FetchCursor:
    """FETCH/MOVE's direction as (direction, count): forward n (None: ALL), relative n, absolute n; the
    backward forms keep their sign so the executor can refuse them as Postgres refuses them on NO SCROLL."""
    m = _FETCH.match(text)
    if m is None:
        raise ParseError(f'syntax error at or near "{text.split()[-1]}"')
    words = (m.group("dir") or "NEXT").upper().split()
    move = m.group("verb").upper() == "MOVE"
    name = _unquote(m.group("name"))
    tag = "MOVE" if move else "FETCH"
    number = int(words[-1]) if re.fullmatch(r"[-+]?\d+", words[-1]) else None
    match words[0]:
        case "NEXT":
            direction, count = "forward", 1
        case "PRIOR":
            direction, count = "forward", -1
        case "FIRST":
            direction, count = "absolute", 1
        case "LAST":
            direction, count = "absolute", -1
        case "ALL":
            direction, count = "forward", None
        case "ABSOLUTE" | "RELATIVE":
            direction, count = words[0].lower(), number
        case "FORWARD" | "BACKWARD":
            count = 1 if len(words) == 1 else number
            if words[0] == "BACKWARD":
                count = -(count if count is not None else 1)
            direction = "forward"
        case _:
            direction, count = "forward", number
    return FetchCursor(name, direction, count, move, tag)


def _matview(text: str, translate: Callable[[str], Plan]) -> Matview | None:
    if m := _CREATE_MATVIEW.match(text):
        schema, name = _split_qname(m.group("qname"))
        definition = m.group("query").strip()
        query = translate(definition)
        if not isinstance(query, Query):
            raise ParseError("a materialized view needs a query")
        flags = {"if_not_exists"} if m.group("ine") else set()
        if m.group("no"):
            flags.add("no_data")
        sql = query.sql
        if m.group("cols"):
            cols = [_unquote(c) for c in m.group("cols").split(",")]
            sql = f"SELECT * FROM ({sql}) AS bemidb_matview({', '.join(quote_ident(c) for c in cols)})"
        return Matview("create", name, "SELECT", schema=schema, sql=sql, definition=definition,
                       flags=frozenset(flags))
    if m := _REFRESH_MATVIEW.match(text):
        schema, name = _split_qname(m.group("qname"))
        flags = {"no_data"} if m.group("no") else set()
        if m.group("conc"):
            flags.add("concurrently")
        return Matview("refresh", name, "REFRESH MATERIALIZED VIEW", schema=schema, flags=frozenset(flags))
    if m := _RENAME_MATVIEW.match(text):
        schema, name = _split_qname(m.group("qname"))
        return Matview("rename", name, "ALTER MATERIALIZED VIEW", schema=schema, new_name=_unquote(m.group("new")),
                       flags=frozenset({"if_exists"} if m.group("ie") else set()))
    if m := _DROP_MATVIEW.match(text):
        schema, name = _split_qname(m.group("qname"))
        return Matview("drop", name, "DROP MATERIALIZED VIEW", schema=schema,
                       flags=frozenset({"if_exists"} if m.group("ie") else set()))
    return None


_COPY_TO_STDOUT = re.compile(
    r"^copy\s+(?:\((?P<query>.*)\)|(?P<table>[^\s(]+)\s*(?:\((?P<cols>[^)]*)\))?)\s+to\s+stdout\b(?P<opts>.*)$",
    re.I | re.S)


def _copy(text: str, translate: Callable[[str], Plan]) -> CopyOut:
    """COPY ... TO STDOUT streams a query's rows; COPY FROM and COPY to a file are refused."""
    m = _COPY_TO_STDOUT.match(text)
    if m is None:
        if re.search(r"\bfrom\b", text, re.I) and not re.search(r"\bto\b", text, re.I):
            raise PgError(READ_ONLY, "cannot execute COPY FROM in a read-only transaction")
        raise PgError(INSUFFICIENT_PRIVILEGE, "COPY to a file is not allowed; use COPY ... TO STDOUT")
    inner = m.group("query") or f"SELECT {m.group('cols') or '*'} FROM {m.group('table')}"
    try:
        query = translate(inner)
    except ParseError:  # DuckDB may parse what sqlglot cannot: the session checks before running it
        query = Query(inner, unparsed=True)
    if not isinstance(query, Query):
        raise PgError(SYNTAX_ERROR, "COPY needs a query")
    return CopyOut(query, copy_options(m.group("opts")))


def copy_options(text: str) -> dict:
    """COPY options, new style `WITH (FORMAT csv, HEADER true, DELIMITER ',')` or old style `CSV HEADER`."""
    text = (text or "").strip()
    options: dict = {"format": "text"}
    m = re.match(r"^(?:with\s*)?\((.*)\)\s*$", text, re.I | re.S)
    if m:
        for item in m.group(1).split(","):
            parts = item.strip().split(None, 1)
            if parts:
                key = parts[0].lower()
                value = parts[1].strip().strip("'") if len(parts) > 1 else "true"
                options[key] = value.lower() if key in ("format", "header") else value
    else:
        words = re.findall(r"'[^']*'|\S+", re.sub(r"^with\b", "", text, flags=re.I))
        i = 0
        while i < len(words):
            word = words[i].lower()
            if word in ("csv", "binary"):
                options["format"] = word
            elif word == "header":
                options["header"] = "true"
            elif word in ("delimiter", "null", "quote", "escape") and i + 1 < len(words):
                i += 1
                options[word] = words[i].strip("'")
            i += 1
    if options["format"] not in ("text", "csv"):
        raise PgError(FEATURE_NOT_SUPPORTED, f"COPY format {options['format']} is not supported")
    return options
