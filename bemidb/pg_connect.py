"""Connecting to a Postgres URL with pg8000 the way psql would: libpq's URL, environment and password file.

pg8000 reads none of libpq's conventions, so they are applied here: what the URL leaves out comes from PGHOST,
PGPORT, PGUSER, PGDATABASE, PGPASSWORD, then ~/.pgpass (or PGPASSFILE); sslmode and sslrootcert come from the
URL or PGSSLMODE / PGSSLROOTCERT. Used for the source database of `sync postgres` and for a Postgres Iceberg
catalog (CATALOG_DATABASE_URL).
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
import ssl
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import pg8000.native
from pg8000.exceptions import DatabaseError, InterfaceError

from bemidb.console import UserError

log = logging.getLogger(__name__)

DEFAULT_SOCKET_DIRS = ("/var/run/postgresql", "/tmp")  # Debian's libpq, then upstream's default
CANCEL_REQUEST_CODE = 80877102


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


@dataclass(frozen=True)
class Target:
    """Where and as whom to connect, every part resolved as libpq would."""

    host: str  # a host name, or the directory of a Unix socket (starts with /)
    port: int
    user: str
    dbname: str
    password: str | None
    password_from: str  # "URL", "PGPASSWORD", the password file's path, or why there is none
    sslmode: str
    sslrootcert: str | None
    application_name: str

    @property
    def unix_socket(self) -> str | None:
        return f"{self.host}/.s.PGSQL.{self.port}" if self.host.startswith("/") else None

    @property
    def where(self) -> str:
        """host:port/dbname, without credentials (safe to print)."""
        return f"{self.host}:{self.port}/{self.dbname}"


def _default_host(port: int) -> str:
    """libpq without a host: the Unix socket in its default directory, else localhost."""
    for directory in DEFAULT_SOCKET_DIRS:
        if os.path.exists(f"{directory}/.s.PGSQL.{port}"):
            return directory
    return "localhost"


def resolve(url: str, env=None) -> Target:
    """The URL's parts, else its query parameters (?host=/tmp), else the PG* variables, else libpq's defaults."""
    env = os.environ if env is None else env
    parsed = urlparse(url)
    query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    port_text = str(parsed.port) if parsed.port else query.get("port") or env.get("PGPORT") or "5432"
    try:
        port = int(port_text)
    except ValueError:
        raise UserError(f"PGPORT: {port_text!r} is not a port number", 2) from None
    host = unquote(parsed.hostname or "") or query.get("host") or env.get("PGHOST") or _default_host(port)
    user = unquote(parsed.username or "") or query.get("user") or env.get("PGUSER") or _os_user()
    dbname = unquote(parsed.path.lstrip("/")) or query.get("dbname") or env.get("PGDATABASE") or user
    password, password_from = _password(parsed, query, env, host, port, dbname, user)
    return Target(host=host, port=port, user=user, dbname=dbname, password=password,
                  password_from=password_from,
                  sslmode=query.get("sslmode") or env.get("PGSSLMODE") or "prefer",
                  sslrootcert=query.get("sslrootcert") or env.get("PGSSLROOTCERT") or None,
                  application_name=query.get("application_name") or "bemidb")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "postgres"


def _password(parsed, query, env, host: str, port: int, dbname: str, user: str) -> tuple[str | None, str]:
    if parsed.password:
        return unquote(parsed.password), "URL"
    if query.get("password"):
        return query["password"], "URL"
    if env.get("PGPASSWORD"):
        return env["PGPASSWORD"], "PGPASSWORD"
    passfile = Path(env.get("PGPASSFILE") or Path.home() / ".pgpass").expanduser()
    return _from_passfile(passfile, host, port, dbname, user)


def _from_passfile(path: Path, host: str, port: int, dbname: str, user: str) -> tuple[str | None, str]:
    """libpq's password file: host:port:database:user:password lines, `*` matches anything, \\: and \\\\ escape;
    the first match wins; a file others can read is ignored (as libpq does)."""
    try:
        info = path.stat()
    except OSError:
        return None, f"no password in the URL, PGPASSWORD or {path}"
    if not stat.S_ISREG(info.st_mode):
        return None, f"{path} is not a plain file"
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return None, f"{path} was ignored: others can read it (chmod 600 {path})"
    # On a Unix socket in the default directory libpq matches the host field "localhost".
    hosts = {host, "localhost"} if host in DEFAULT_SOCKET_DIRS else {host}
    wanted = [hosts, {str(port)}, {dbname}, {user}]
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return None, f"{path} could not be read ({exc.strerror or exc})"
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = _passfile_fields(line)
        if len(fields) < 5:
            continue
        if all(field == "*" or field in options for field, options in zip(fields[:4], wanted, strict=True)):
            return fields[4], str(path)
    return None, f"no password in the URL, PGPASSWORD or a matching line of {path}"


def _passfile_fields(line: str) -> list[str]:
    fields, current, chars = [], [], iter(line)
    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))
        elif char == ":" and len(fields) < 4:
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields


def ssl_arguments(target: Target) -> dict:
    """libpq's sslmode for pg8000 (which does not read it): pg8000's ssl_context=None already means "prefer"
    (try TLS, fall back to plain), False means "disable"; require skips verification unless a root
    certificate is given (then, as in libpq, it verifies like verify-ca); verify-ca checks the chain,
    verify-full the host name too. sslrootcert=system (or none given) uses the system's CAs."""
    mode = target.sslmode
    if target.unix_socket or mode == "disable":
        return {"ssl_context": False}
    if mode in ("allow", "prefer"):
        return {}
    if mode not in ("require", "verify-ca", "verify-full"):
        raise UserError(f"sslmode: {mode!r} is not one of disable, allow, prefer, require, verify-ca, "
                        "verify-full", 2)
    rootcert = target.sslrootcert if target.sslrootcert not in (None, "system") else None
    if rootcert and not Path(rootcert).expanduser().is_file():
        raise UserError(f"sslrootcert: no such file {rootcert}", 2)
    if mode == "require" and rootcert:
        mode = "verify-ca"
    try:
        context = ssl.create_default_context(cafile=str(Path(rootcert).expanduser()) if rootcert else None)
    except ssl.SSLError as exc:
        raise UserError(f"sslrootcert {rootcert}: not a PEM certificate file ({exc.reason})", 2) from None
    if mode == "require":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif mode == "verify-ca":
        context.check_hostname = False
    return {"ssl_context": context}


def connect(url: str, what: str = "source Postgres", timeout: float = 15) -> pg8000.native.Connection:
    """A pg8000 native connection to `url`, or a UserError naming `what` could not be reached and why."""
    target = resolve(url)
    where = target.where
    try:
        conn = pg8000.native.Connection(
            target.user, host=None if target.unix_socket else target.host, port=target.port,
            unix_sock=target.unix_socket, database=target.dbname, password=target.password, timeout=timeout,
            application_name=target.application_name, **ssl_arguments(target))
    except DatabaseError as exc:  # wrong password, unknown database, no pg_hba entry...
        raise UserError(f"{what} {where}: {describe_error(exc)}{_password_note(exc, target)}") from None
    except (InterfaceError, AttributeError) as exc:
        # pg8000 without a password: InterfaceError for md5/password, AttributeError for SCRAM
        if target.password is None and ("password" in str(exc).lower() or isinstance(exc, AttributeError)):
            raise UserError(f"{what} {where} asks a password for user {target.user} and none was given "
                            f"({target.password_from})") from None
        cause = exc.__cause__ or exc
        raise UserError(f"cannot reach {what} at {target.host}:{target.port}: {describe_error(cause)}") from None
    except OSError as exc:
        raise UserError(f"cannot reach {what} at {target.host}:{target.port}: {describe_error(exc)}") from None
    conn._bemidb_address = target.unix_socket or (target.host, target.port)  # for send_cancel
    return conn


def _password_note(exc: BaseException, target: Target) -> str:
    """Which password was used, when the server refused it (28P01): the URL's, PGPASSWORD's or a file's."""
    return f" (password from {target.password_from})" if sqlstate(exc) == "28P01" else ""


def send_cancel(conn, timeout: float = 5) -> bool:
    """Send the server a CancelRequest for what `conn` is running now (a new connection, as libpq's
    PQcancel does). False when it could not be sent."""
    key = getattr(conn, "_backend_key_data", None)
    address = getattr(conn, "_bemidb_address", None)
    if not key or not address:
        return False
    try:
        if isinstance(address, str):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as cancel:
                cancel.settimeout(timeout)
                cancel.connect(address)
                cancel.sendall(struct.pack("!ii", 16, CANCEL_REQUEST_CODE) + key)
        else:
            with socket.create_connection(address, timeout=timeout) as cancel:
                cancel.sendall(struct.pack("!ii", 16, CANCEL_REQUEST_CODE) + key)
    except OSError:
        return False
    return True
