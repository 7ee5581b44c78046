"""What one connection keeps between messages: prepared statements, portals, and the session's state."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import duckdb

from bemidb.server.sql.plans import Plan, Query
from bemidb.server.sql.session_settings import SessionSettings


@dataclass
class Statement:
    """A parsed (prepared) statement: what Parse stored."""

    sql: str  # as the client sent it
    plan: Plan
    param_oids: list[int]
    last_encoder: tuple | None = None  # (result shape key, ResultEncoder) of its last run, reused when alike

    @property
    def query(self) -> Query | None:
        """The query whose rows a portal of this statement streams (a COPY's inner query), if any."""
        plan = self.plan
        return plan if isinstance(plan, Query) else getattr(plan, "query", None)


@dataclass
class Portal:
    """A bound statement, possibly half-read (Execute with a row limit)."""

    statement: Statement
    params: list
    result_formats: list[int]
    reader: object = None  # pyarrow RecordBatchReader once running
    encoder: object = None  # results.ResultEncoder once described
    leftover: object = None  # the unsent tail of a batch after a row limit
    done: bool = False
    no_rows: bool = False  # started at Describe: a statement without rows, already run
    timer: threading.Timer | None = None
    admitted: bool = False  # holds a place in the engine's query gate (admission.py) until stopped
    duck_types: list = field(default_factory=list)  # DuckDB column types of the running result


@dataclass
class OpenCursor:
    """A server-side cursor (DECLARE): its query streaming on a DuckDB cursor of its own, so the session's
    other statements can run between two FETCHes; only one batch is held at a time."""

    name: str
    statement: str  # the DECLARE as the client wrote it (pg_cursors.statement)
    hold: bool
    binary: bool
    created: float  # time.time() (pg_cursors.creation_time)
    duck: duckdb.DuckDBPyConnection
    reader: object = None  # pyarrow RecordBatchReader
    schema: object = None  # its Arrow schema
    duck_types: list = field(default_factory=list)
    leftover: object = None  # unread rows of the current batch
    current: object = None  # the last row returned (FETCH RELATIVE 0 / FORWARD 0 re-read it)
    position: int = 0  # rows read so far
    origins: object = None  # results.TableColumns: the synced columns its result columns are (RowDescription)


@dataclass
class SessionState:
    """The logged-in session: who, its settings and DuckDB cursor, and ReadyForQuery's transaction status."""

    user: str
    pid: int
    settings: SessionSettings
    cursor: duckdb.DuckDBPyConnection
    status: str = "I"  # I idle, T in a transaction block, E failed transaction block
    cursors: dict[str, OpenCursor] = field(default_factory=dict)  # DECLAREd cursors by name
    access: object = None  # grants.store.Access for a users-file user (what it may read); None: everything
