"""Exceptions -> what a Postgres client expects in an ErrorResponse: SQLSTATE, message, position.

DuckDB's messages are reworded to Postgres's where clients or people match on them ("relation ... does not
exist"); the DuckDB detail ("Did you mean ...") goes into the hint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb
from sqlglot.errors import ParseError, TokenError


@dataclass
class PgError(Exception):
    """An error to send to the client as is."""

    sqlstate: str
    message: str
    severity: str = "ERROR"
    position: int | None = None  # 1-based character offset into the statement the client sent
    hint: str | None = None
    detail: str | None = None

    def __str__(self) -> str:
        return f"{self.sqlstate}: {self.message}"

    def fields(self) -> dict[str, str]:
        fields = {"S": self.severity, "V": self.severity, "C": self.sqlstate, "M": self.message}
        if self.detail:
            fields["D"] = self.detail
        if self.hint:
            fields["H"] = self.hint
        if self.position:
            fields["P"] = str(self.position)
        return fields


def fatal(sqlstate: str, message: str) -> PgError:
    return PgError(sqlstate, message, severity="FATAL")


CANCELED = "57014"
READ_ONLY = "25006"
INSUFFICIENT_PRIVILEGE = "42501"
SYNTAX_ERROR = "42601"
PROTOCOL_VIOLATION = "08P01"
FEATURE_NOT_SUPPORTED = "0A000"

# (DuckDB exception class name, message regex, SQLSTATE, Postgres-style message template or None to keep)
_RULES: list[tuple[str, str, str, str | None]] = [
    # DuckDB quotes some names and not others ("a.b" vs b!): the name once, in Postgres's one pair of quotes
    ("CatalogException", r'Table with name "?(.+?)"?!? does not exist', "42P01", 'relation "{0}" does not exist'),
    ("CatalogException", r"Table Function with name (\S+) does not exist", "42883",
     "function {0} does not exist"),
    ("CatalogException", r"(?:Scalar |Aggregate )?Function with name (\S+) does not exist", "42883",
     "function {0} does not exist"),
    ("CatalogException", r'Schema with name "?(.+?)"?!? does not exist', "3F000", 'schema "{0}" does not exist'),
    ("CatalogException", r'Type with name "?(.+?)"?!? does not exist', "42704", 'type "{0}" does not exist'),
    ("CatalogException", r"", "42P01", None),
    ("BinderException", r'Referenced column "([^"]+)" not found', "42703", 'column "{0}" does not exist'),
    ("BinderException", r'Values list "[^"]*" does not have a column named "([^"]+)"', "42703",
     'column "{0}" does not exist'),
    ("BinderException", r'Ambiguous reference to column name "([^"]+)"', "42702",
     'column reference "{0}" is ambiguous'),
    ("BinderException", r'Referenced table "([^"]+)" not found', "42P01",
     'missing FROM-clause entry for table "{0}"'),
    ("BinderException", r"No function matches", "42883", None),
    # int_column = ANY($1) with a text[] parameter: Postgres finds no operator integer = text
    ("BinderException", r"^Cannot compare values of type", "42883", None),
    ("BinderException", r"must appear in the GROUP BY clause", "42803", None),
    ("BinderException", r"", "42601", None),
    ("ParserException", r"", "42601", None),
    ("ConversionException", r'^invalid (date|timestamp) field format: "(.*)", expected', "22007",
     'invalid input syntax for type {0}: "{1}"'),
    ("ConversionException", r'^(?:date|timestamp) field value out of range: "(.*)"', "22008",
     'date/time field value out of range: "{0}"'),
    ("ConversionException", r"Could not convert string '(.*)' to INTERVAL", "22007",
     'invalid input syntax for type interval: "{0}"'),
    *[("ConversionException", rf"out of range for the destination type {duck}\b", "22003", f"{pg} out of range")
      for duck, pg in (("INT16", "smallint"), ("INT32", "integer"), ("INT64", "bigint"))],
    ("ConversionException", r"", "22P02", None),
    ("OutOfRangeException", r"", "22003", None),
    ("InvalidInputException", r"^[Dd]ivision by zero", "22012", "division by zero"),  # 1/0, 1 % 0 on integers
    # the messages of catalog/functions_math.py's macros, Postgres's own words
    ("InvalidInputException", r"^cannot take square root", "2201F", None),
    ("InvalidInputException", r"^cannot take logarithm", "2201E", None),
    ("InvalidInputException", r"^(lower bound cannot equal upper bound|count must be greater than zero)$",
     "2201G", None),
    ("InvalidInputException", r"^negative substring length", "22011", None),
    ("InvalidInputException", r"^(zero raised to a negative power|a negative number raised to a non-integer)", "2201F",
     None),
    # to_date / to_timestamp: digits that do not make a date are out of range, other text does not fit the template
    ("InvalidInputException", r'^Could not parse string "([\d\s:./-]*)" according to format', "22008",
     'date/time field value out of range: "{0}"'),
    ("InvalidInputException", r'^Could not parse string "(.*)" according to format', "22007",
     'invalid value "{0}" for the template'),
    ("InvalidInputException", r"^Malformed JSON", "22P02", "invalid input syntax for type json"),
    ("InvalidInputException", r"", "22023", None),
    ("InterruptException", r"", CANCELED, "canceling statement due to user request"),
    ("PermissionException", r"", INSUFFICIENT_PRIVILEGE, None),
    ("NotImplementedException", r"", FEATURE_NOT_SUPPORTED, None),
    ("OutOfMemoryException", r"", "53200", None),
    ("IOException", r"", "58030", None),
    ("HTTPException", r"", "58030", None),
    ("TypeMismatchException", r"", "42804", None),
    ("DivisionByZeroException", r"", "22012", "division by zero"),
    ("ConstraintException", r"", "23000", None),
]

_PREFIX = re.compile(r"^[A-Za-z ]+ Error: ")
_LINE = re.compile(r"\n*LINE (\d+): (.*)\n( *)\^", re.S)


def _position(message: str, sql: str | None) -> int | None:
    """DuckDB marks the spot as 'LINE n: <window of the line>' with a caret below; map it to an offset."""
    if not sql:
        return None
    m = _LINE.search(message)
    if not m:
        return None
    line_no, snippet, spaces = int(m.group(1)), m.group(2).split("\n")[0], m.group(3)
    column_in_snippet = len(spaces) - len(f"LINE {line_no}: ")
    lines = sql.split("\n")
    if not 1 <= line_no <= len(lines) or column_in_snippet < 0:
        return None
    line = lines[line_no - 1]
    start = line.find(snippet.removeprefix("...").removesuffix("..."))
    if start < 0:
        return None
    offset = sum(len(x) + 1 for x in lines[:line_no - 1]) + start + column_in_snippet
    if snippet.startswith("..."):
        offset -= 3
    return offset + 1 if 0 <= offset <= len(sql) else None


_PY_TRACEBACK = "Traceback (most recent call last):"
_IO_ERRORS = ("OSError", "IOError", "FileNotFoundError", "PermissionError", "TimeoutError", "ConnectionError",
              "ConnectionRefusedError", "ConnectionResetError", "BrokenPipeError")


def _python_error_inside_duckdb(raw: str) -> PgError:
    """A Python exception raised inside DuckDB (our S3 filesystem when S3 is down): DuckDB's text carries the
    whole Python traceback. The client gets its last line only (58030 for I/O), never the traceback."""
    body = _LINE.split(raw)[0] if _LINE.search(raw) else raw  # drop DuckDB's "LINE 1: ... ^^^" marker
    last = [line.strip() for line in body.splitlines() if line.strip()][-1]
    kind, _, message = last.partition(": ")
    kind = kind.rsplit(".", 1)[-1]
    if kind in _IO_ERRORS:
        return PgError("58030", f"could not read data: {message or last}")
    return PgError("XX000", last)


_NO_MATCH = re.compile(r"No function matches the given name and argument types '(\w+)\((.*)\)'")
_DUCK_TYPE_NAMES = {"INTEGER": "integer", "INTEGER_LITERAL": "integer", "BIGINT": "bigint", "SMALLINT": "smallint",
                    "HUGEINT": "numeric", "DOUBLE": "double precision", "FLOAT": "real", "VARCHAR": "text",
                    "STRING_LITERAL": "unknown", "NULL": "unknown", "BLOB": "bytea", "TIMESTAMP":
                    "timestamp without time zone", "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
                    "TIME": "time without time zone"}


def _no_such_function(main: str, position: int | None) -> PgError | None:
    """DuckDB's 'No function matches ... sum(INTERVAL)' and its candidate list -> Postgres's one line and hint."""
    m = _NO_MATCH.search(main)
    if m is None:
        return None

    def pg_name(duck: str) -> str:
        if duck.endswith("[]"):
            return pg_name(duck[:-2]) + "[]"
        return "numeric" if duck.startswith("DECIMAL") else _DUCK_TYPE_NAMES.get(duck, duck.lower())

    types = ", ".join(pg_name(t.strip()) for t in m.group(2).split(", ")) if m.group(2) else ""
    return PgError("42883", f"function {m.group(1).lower()}({types}) does not exist", position=position,
                   hint="No function matches the given name and argument types. You might need to add explicit "
                        "type casts.")


def from_exception(exc: BaseException, sql: str | None = None) -> PgError:
    """Any exception raised while running a statement -> PgError. `sql`: the text the position refers to."""
    if isinstance(exc, PgError):
        return exc
    if isinstance(exc, ParseError):
        first = (exc.errors or [{}])[0]
        message = first.get("description") or str(exc).split("\n")[0]
        return PgError(SYNTAX_ERROR, f"syntax error: {message}")
    if isinstance(exc, duckdb.Error) and _PY_TRACEBACK in str(exc):
        return _python_error_inside_duckdb(str(exc))
    if isinstance(exc, duckdb.Error):
        raw = str(exc)
        position = _position(raw, sql)
        text = _LINE.split(raw)[0] if _LINE.search(raw) else raw
        text = _PREFIX.sub("", text.strip())
        main, _, rest = text.partition("\n")
        hint = rest.strip() or None
        if (missing := _no_such_function(main, position)) is not None:
            return missing
        names = [cls.__name__ for cls in type(exc).__mro__]
        for cls_name, pattern, sqlstate, template in _RULES:
            if cls_name not in names:
                continue
            m = re.search(pattern, main)
            if m:
                message = template.format(*m.groups()) if template else main.rstrip("!")
                return PgError(sqlstate, message, position=position, hint=hint)
        return PgError("XX000", main.rstrip("!"), position=position, hint=hint)
    if isinstance(exc, TokenError):  # unterminated quote, comment or dollar string: a syntax error, not XX000
        return PgError(SYNTAX_ERROR, f"syntax error: {exc}")
    if isinstance(exc, RecursionError):  # deeply nested SQL exhausts the parser's recursion, as Postgres's stack
        return PgError("54001", "stack depth limit exceeded", hint="The statement is nested too deeply.")
    if isinstance(exc, MemoryError):
        return PgError("53200", "out of memory")
    if isinstance(exc, UnicodeError):
        return PgError("22021", f"invalid byte sequence for encoding \"UTF8\": {exc}")
    return PgError("XX000", f"internal error: {type(exc).__name__}: {exc}")
