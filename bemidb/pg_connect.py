"""Connecting to a Postgres URL with pg8000: libpq's URL and sslmode, one-line errors.

Used for the source database of `sync postgres` and for a Postgres Iceberg catalog (CATALOG_DATABASE_URL).
"""

from __future__ import annotations

import ssl
from urllib.parse import parse_qs, unquote, urlparse

import pg8000.native
from pg8000.exceptions import DatabaseError, InterfaceError

from bemidb.console import UserError


def describe_error(exc: BaseException) -> str:
    """pg8000 errors carry a dict of ErrorResponse fields: keep the message (and the hint) on one line."""
    if isinstance(exc, DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        fields = exc.args[0]
        message = fields.get("M", str(exc))
        return message + (f" ({fields['H']})" if fields.get("H") else "")
    return " ".join(str(exc).split()) or type(exc).__name__


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a pg8000 DatabaseError (None for anything else)."""
    if isinstance(exc, DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        return exc.args[0].get("C")
    return None


def ssl_arguments(url: str) -> dict:
    """libpq's sslmode for pg8000 (which does not read it): pg8000's ssl_context=None already means "prefer"
    (try TLS, fall back to plain), False means "disable"; require skips verification, verify-* verify."""
    mode = parse_qs(urlparse(url).query).get("sslmode", ["prefer"])[0]
    if mode == "disable":
        return {"ssl_context": False}
    if mode in ("allow", "prefer"):
        return {}
    context = ssl.create_default_context()
    if mode == "require":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return {"ssl_context": context}


def connect(url: str, what: str = "source Postgres", timeout: float = 15) -> pg8000.native.Connection:
    """A pg8000 native connection to `url`, or a UserError naming `what` could not be reached and why."""
    parsed = urlparse(url)
    dbname = unquote(parsed.path.lstrip("/")) or "postgres"
    host, port = parsed.hostname, parsed.port or 5432
    application_name = parse_qs(parsed.query).get("application_name", ["bemidb"])[0]
    try:
        conn = pg8000.native.Connection(
            unquote(parsed.username or "postgres"), host=host, port=port, database=dbname,
            password=unquote(parsed.password) if parsed.password else None, timeout=timeout,
            application_name=application_name, **ssl_arguments(url))
    except DatabaseError as exc:  # wrong password, unknown database, no pg_hba entry...
        raise UserError(f"{what} {host}:{port}/{dbname}: {describe_error(exc)}") from None
    except (InterfaceError, OSError) as exc:
        cause = exc.__cause__ or exc
        raise UserError(f"cannot reach {what} at {host}:{port}: {describe_error(cause)}") from None
    conn._bemidb_address = (host, port)  # for CancelRequest (see sync/postgres_copy)
    return conn
