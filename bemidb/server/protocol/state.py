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
    timer: threading.Timer | None = None
    duck_types: list = field(default_factory=list)  # DuckDB column types of the running result


@dataclass
class SessionState:
    """The logged-in session: who, its settings and DuckDB cursor, and ReadyForQuery's transaction status."""

    user: str
    pid: int
    settings: SessionSettings
    cursor: duckdb.DuckDBPyConnection
    status: str = "I"  # I idle, T in a transaction block, E failed transaction block
    access: object = None  # grants.store.Access for a users-file user (what it may read); None: everything
