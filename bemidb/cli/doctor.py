"""`bemidb doctor`: check the configuration end to end and print a checklist.

Each check does the real thing the other commands will do (open the catalog, write and delete an object where
the warehouse lives, log in to the source, bind the port), so a green checklist means sync and serve can start.
Exit code 1 when any check fails.
"""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

from rich.table import Table

from bemidb.config import Config, url_password
from bemidb.console import UserError, stdout

CONNECT_TIMEOUT = 5.0  # seconds: an unreachable host fails the check quickly instead of hanging the checklist


@dataclass(frozen=True)
class Result:
    ok: bool | None  # None: a note, neither passed nor failed
    detail: str


class CheckFailed(Exception):
    """A check's own clear reason for failing (no exception type prefix needed)."""


def _reach_database(url: str) -> str:
    """Resolve a database URL as libpq would (PGHOST, PGPORT...), check its host answers; host:port/db."""
    from bemidb.pg_connect import resolve

    target = resolve(url)
    if not target.unix_socket:
        _reach(target.host, target.port)
    return target.where


def _reach(host: str, port: int) -> None:
    """A plain TCP connect with a timeout, so 'cannot reach' is told apart from 'login refused'."""
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise CheckFailed(f"cannot reach {host}:{port} ({exc.strerror or exc})") from None


def check_catalog(cfg: Config) -> Result:
    from bemidb.storage.catalog import open_catalog

    if cfg.catalog_database_url:
        where = "Postgres " + _reach_database(cfg.catalog_database_url)
    elif not cfg.sqlite_catalog_path.exists():
        # Not created here: only `sync` makes a catalog (a typo in --data-dir must not leave an empty one).
        return Result(None, f"no catalog yet: SQLite {cfg.sqlite_catalog_path} (the first `bemidb sync` "
                            "creates it; `tables` refuses this data dir until then)")
    else:
        where = f"SQLite {cfg.sqlite_catalog_path}"
    catalog = open_catalog(cfg)
    try:
        namespaces = catalog.list_namespaces()
        tables = sum(len(catalog.list_tables(ns)) for ns in namespaces)
    finally:
        catalog.close()
    return Result(True, f"{where}: {len(namespaces)} schemas, {tables} tables")


def _file_io(cfg: Config):
    from pyiceberg.io.pyarrow import PyArrowFileIO

    from bemidb.storage.catalog import file_io_properties

    props = file_io_properties(cfg)
    if cfg.uses_s3:
        props.update({"s3.connect-timeout": str(CONNECT_TIMEOUT), "s3.request-timeout": "30"})
    return PyArrowFileIO(props)


# pyarrow's S3 errors read "When ...: AWS Error CODE during OPERATION: ..."; the code names the setting to fix.
_S3_HINTS = {
    "SIGNATURE_DOES_NOT_MATCH": "check AWS_SECRET_ACCESS_KEY",
    "INVALID_ACCESS_KEY_ID": "check AWS_ACCESS_KEY_ID",
    "NO_SUCH_BUCKET": "check AWS_S3_BUCKET (the bucket must exist)",
    "ACCESS_DENIED": "the key may not write to this bucket",
}


def _s3_reason(exc: OSError) -> str:
    match = re.search(r"AWS Error (\w+) during (\w+) operation", str(exc))
    if not match:
        raise exc
    code, operation = match.groups()
    hint = _S3_HINTS.get(code, "check the AWS_* settings")
    return f"S3 refused {operation}: {code}; {hint}"


def check_warehouse(cfg: Config) -> Result:
    """Put, read back and delete a probe object where the table files go."""
    try:
        return _probe_warehouse(cfg)
    except OSError as exc:
        if not cfg.uses_s3:
            raise
        raise CheckFailed(_s3_reason(exc)) from None


def _probe_warehouse(cfg: Config) -> Result:
    if cfg.uses_s3 and cfg.s3_endpoint_url:
        endpoint = urlparse(cfg.s3_endpoint_url)
        _reach(endpoint.hostname, endpoint.port or (443 if endpoint.scheme == "https" else 80))
    if not cfg.uses_s3 and not cfg.local_warehouse_path.exists():
        return _probe_missing_folder(cfg.local_warehouse_path)
    io = _file_io(cfg)
    probe = f"{cfg.warehouse}/.bemidb-doctor-{uuid.uuid4().hex}"
    payload = b"bemidb doctor probe"
    with io.new_output(probe).create(overwrite=True) as out:
        out.write(payload)
    try:
        with io.new_input(probe).open() as stream:
            if stream.read() != payload:
                raise CheckFailed("the probe object read back differs from what was written")
    finally:
        io.delete(probe)
    where = f"s3://{cfg.aws_s3_bucket} via {cfg.s3_endpoint_url or 'AWS ' + cfg.aws_region}" if cfg.uses_s3 \
        else str(cfg.local_warehouse_path)
    return Result(True, f"{where}: put, read and delete a probe object")


def _probe_missing_folder(path) -> Result:
    """The warehouse folder is made by the first sync: check it could be, without making it."""
    import os

    parent = path
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CheckFailed(f"{path} does not exist and {parent} is not writable: the first sync cannot create it")
    return Result(True, f"{path} does not exist yet; the first sync creates it ({parent} is writable)")


def check_source_postgres(cfg: Config) -> Result:
    """Log in as `sync postgres` does and list what it would sync: every selected table must be readable."""
    from bemidb.sync import postgres_source as source
    from bemidb.sync.naming import select_tables

    url = cfg.source_postgres_database_url
    where = _reach_database(url)
    conn = source.connect(url, timeout=CONNECT_TIMEOUT)
    try:
        version = conn.run("SHOW server_version")[0][0]
        relations = {(r.schema, r.name): r for r in source.list_relations(conn) if r.kind in ("r", "p")}
        selection = select_tables(list(relations), cfg.source_postgres_include_tables or [],
                                  cfg.source_postgres_exclude_tables or [])
        parents = source.partition_parents(conn, selection.unknown) if selection.unknown else {}
        replication = _replication(cfg, conn)
    finally:
        conn.close()
    if selection.unknown:
        named = [f"{name} (a partition of {parents[name]}: include {parents[name]})" if name in parents else name
                 for name in selection.unknown]
        raise CheckFailed(f"SOURCE_POSTGRES_INCLUDE_TABLES names tables the source does not have: "
                          f"{', '.join(named)}")
    unreadable = [relations[key].qualified for key in selection.selected if not relations[key].can_select]
    if unreadable:
        raise CheckFailed(f"no SELECT privilege on {', '.join(unreadable[:5])}"
                          f"{' and more' if len(unreadable) > 5 else ''}: GRANT SELECT, or exclude them")
    return Result(True, f"{where}: PostgreSQL {version.split()[0]}, "
                        f"{len(selection.selected)} of {len(relations)} tables to sync; {replication}")


def _replication(cfg: Config, conn) -> str:
    """wal_level, and the WAL each bemidb CDC slot holds on the source (an abandoned slot fills its disk)."""
    from bemidb.sync import cdc_source
    from bemidb.sync.cdc import slot_name

    level = conn.run("SHOW wal_level")[0][0]
    if level != "logical":
        if cfg.source_postgres_sync_mode == "cdc":
            raise CheckFailed(cdc_source.WAL_LEVEL_HINT.format(level=level))
        return f"wal_level {level} (no CDC)"
    slots = cdc_source.slot_report(conn, slot_name(cfg))
    lost = [cdc_source.describe_slot(name, state) for name, state in slots if state.lost]
    if lost:
        raise CheckFailed("; ".join(lost))
    return "; ".join(cdc_source.describe_slot(n, s) for n, s in slots) or "wal_level logical"


def check_port(cfg: Config) -> Result:
    family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # The server sets SO_REUSEADDR too: a socket in TIME_WAIT does not make the port busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((cfg.host, cfg.port))
        except OSError as exc:
            reason = exc.strerror or str(exc)
        else:
            return Result(True, f"{cfg.host}:{cfg.port} is free for `bemidb serve`")
    from bemidb.cli.port_owner import is_bemidb_server, listener_command

    owner = listener_command(cfg.port)
    if owner and is_bemidb_server(owner[1]):
        # Not a problem to fix: the server this checklist is about is up.
        return Result(True, f"a bemidb server (pid {owner[0]}) is already serving on port {cfg.port}")
    who = f" by pid {owner[0]} ({' '.join(owner[1])[:80]})" if owner else ""
    raise CheckFailed(f"cannot listen on {cfg.host}:{cfg.port} ({reason}): the port is taken{who}; "
                      "use --port / BEMIDB_PORT")


def check_tls(cfg: Config) -> Result:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    return Result(True, f"{cfg.tls_cert} and its key load")


def checks(cfg: Config) -> list[tuple[str, Callable[[Config], Result] | None, str]]:
    """(name, check or None when not configured, why it is skipped)."""
    return [
        ("catalog", check_catalog, ""),
        ("warehouse", check_warehouse, ""),
        ("source postgres", check_source_postgres if cfg.source_postgres_database_url else None,
         "not configured (SOURCE_POSTGRES_DATABASE_URL)"),
        ("server port", check_port, ""),
        ("TLS", check_tls if cfg.tls_cert else None, "not configured (BEMIDB_TLS_CERT)"),
    ]


def _secrets(cfg: Config) -> list[str]:
    from bemidb.config import SETTINGS

    found = []
    for name, value in cfg.values.items():
        if SETTINGS[name].secret and isinstance(value, str) and value:
            found.append(value)
            if "://" in value and url_password(value):
                found.append(url_password(value))
    return sorted(found, key=len, reverse=True)


def _reason(exc: BaseException, secrets: list[str]) -> str:
    """One line, never a secret: the first line of the message, prefixed with the type when it is not ours."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not isinstance(exc, (CheckFailed, UserError)):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    for secret in secrets:
        text = text.replace(secret, "***")
    return text[:300]


def run(cfg: Config, args) -> int:
    secrets = _secrets(cfg)
    table = Table(title="bemidb doctor", show_header=True)
    table.add_column("", width=4)
    table.add_column("check")
    table.add_column("result", overflow="fold")
    failed = 0
    for name, check, skip_reason in checks(cfg):
        if check is None:
            table.add_row("[dim]-[/]", name, f"[dim]{skip_reason}[/]")
            continue
        try:
            result = check(cfg)
        except Exception as exc:  # any failure is a red line in the checklist, never a traceback
            result = Result(False, _reason(exc, secrets))
        if result.ok is None:
            table.add_row("[yellow]note[/]", name, f"[yellow]{result.detail}[/]")
            continue
        failed += not result.ok
        mark = "[green]ok[/]" if result.ok else "[bold red]FAIL[/]"
        table.add_row(mark, name, result.detail if result.ok else f"[red]{result.detail}[/]")
    stdout.print(table)
    if failed:
        stdout.print(f"[bold red]{failed} check(s) failed.[/] Fix the setting named above and run "
                     "`bemidb doctor` again.")
        return 1
    stdout.print("[green]All checks passed.[/]")
    return 0
