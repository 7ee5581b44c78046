"""The database under the Iceberg SQL catalog: a SQLite file (embedded) or a Postgres database.

Through the standard library's sqlite3 or pg8000 directly: both take `:name` parameters, so the catalog's SQL
is written once. (SQLAlchemy, which pyiceberg's own SqlCatalog uses, cost every `bemidb` process ~0.3 s of
imports: a third of an incremental sync's run time.) A small pool lets the threaded server share it; a pooled
Postgres connection that went stale (catalog restarted) is replaced and the statement retried once.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pg8000.exceptions import InterfaceError

from bemidb import pg_connect

POOL_SIZE = 8  # idle connections kept; more can be open while busy


class UniqueViolation(Exception):
    """An INSERT or UPDATE hit a primary key that already exists."""


def connection_lost(exc: BaseException) -> bool:
    """The connection itself is gone (not the statement): socket errors, and the FATAL a Postgres sends its
    idle sessions when it shuts down or restarts (SQLSTATE class 57P, or 08 for connection exceptions)."""
    if isinstance(exc, (InterfaceError, OSError)):
        return True
    code = pg_connect.sqlstate(exc) or ""
    return code.startswith(("57P", "08"))


class Executor:
    """Runs statements on one connection; rowcount is the number of rows the last one changed."""

    def __init__(self, conn: Any, postgres: bool):
        self._conn, self._postgres, self.rowcount = conn, postgres, -1

    def __call__(self, sql: str, **params: Any) -> list[tuple]:
        try:
            if self._postgres:
                rows = self._conn.run(sql, **params)
                self.rowcount = self._conn.row_count
                return [tuple(row) for row in rows or ()]
            cursor = self._conn.execute(sql, params)
            rows = cursor.fetchall()
            self.rowcount = cursor.rowcount
            return rows
        except sqlite3.IntegrityError as exc:
            raise UniqueViolation(str(exc)) from exc
        except Exception as exc:
            if pg_connect.sqlstate(exc) == "23505":
                raise UniqueViolation(pg_connect.describe_error(exc)) from exc
            raise


class _Lease:
    def __init__(self, conn: Any, pooled: bool):
        self.conn, self.pooled, self.discard = conn, pooled, False


class CatalogDatabase:
    def __init__(self, connect: Callable[[], Any], postgres: bool):
        self._connect, self.postgres = connect, postgres
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    @classmethod
    def sqlite(cls, path: Path) -> CatalogDatabase:
        def connect() -> sqlite3.Connection:
            # autocommit (transactions are explicit); WAL: readers never block the writer, and vice versa
            conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            return conn

        return cls(connect, postgres=False)

    @classmethod
    def postgres(cls, url: str) -> CatalogDatabase:
        return cls(lambda: pg_connect.connect(url, "catalog Postgres"), postgres=True)

    @contextmanager
    def _connection(self) -> Iterator[_Lease]:
        """A connection, back to the pool afterwards unless it broke or was marked for discarding."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        lease = _Lease(conn or self._connect(), pooled=conn is not None)
        try:
            yield lease
        except Exception as exc:
            if connection_lost(exc):  # never reuse it
                lease.discard = True
            raise
        finally:
            if lease.discard:
                _close(lease.conn)
            else:
                self._release(lease.conn)

    def _release(self, conn: Any) -> None:
        with self._lock:
            if len(self._idle) < POOL_SIZE:
                self._idle.append(conn)
                return
        _close(conn)

    def execute(self, sql: str, **params: Any) -> tuple[list[tuple], int]:
        """One statement in its own transaction: (rows, rows changed)."""
        for attempt in (1, 2):
            pooled = False
            try:
                with self._connection() as lease:
                    pooled = lease.pooled
                    run = Executor(lease.conn, self.postgres)
                    return run(sql, **params), run.rowcount
            except Exception as exc:
                if not connection_lost(exc) or attempt == 2 or not pooled:  # a fresh one failing: an outage
                    raise
        raise AssertionError("unreachable")

    @contextmanager
    def transaction(self) -> Iterator[Executor]:
        """Several statements, committed together or not at all."""
        with self._connection() as lease:
            run = Executor(lease.conn, self.postgres)
            # SQLite: take the write lock up front, so two writers queue instead of deadlocking on upgrade
            run("BEGIN" if self.postgres else "BEGIN IMMEDIATE")
            try:
                yield run
                run("COMMIT")
            except BaseException:
                try:
                    run("ROLLBACK")
                except BaseException:  # noqa: BLE001 - the first error is the one to report
                    lease.discard = True  # its transaction state is unknown
                raise

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            _close(conn)


def _close(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - closing a broken connection may fail too
        pass
