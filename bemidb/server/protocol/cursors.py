"""Server-side cursors: DECLARE / FETCH / MOVE / CLOSE and the protocol's Describe of a cursor by name; and
the commands that drop a session's named objects, DEALLOCATE and DISCARD ALL.

Each cursor streams its query on a DuckDB cursor of its own (so other statements can run between FETCHes) and
holds at most one Arrow batch: a FETCH of n rows over a 10M-row result keeps memory flat. Cursors only go
forward, as a Postgres cursor declared NO SCROLL. Without WITH HOLD a cursor lives until its transaction ends.
The open cursors are published to DuckDB as the variable pg_cursors reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from bemidb.quoting import quote_literal
from bemidb.server import duckdb_calls
from bemidb.server.catalog.pg_catalog import CURSOR_LIST
from bemidb.server.engine import check_statement
from bemidb.server.errors import FEATURE_NOT_SUPPORTED, PgError
from bemidb.server.protocol import wire
from bemidb.server.protocol.connection import Connection
from bemidb.server.protocol.results import ResultEncoder, TableColumns
from bemidb.server.protocol.running import BATCH_ROWS, next_batch
from bemidb.server.protocol.state import OpenCursor, SessionState
from bemidb.server.sql.plans import DeclareCursor, FetchCursor

# The guard runs a call on a DuckDB cursor with cancel, statement_timeout and error mapping (the executor's).
Guard = Callable[[object], AbstractContextManager]


def _no_backward() -> PgError:
    error = PgError("55000", "cursor can only scan forward")
    error.hint = "Declare it with SCROLL option to enable backward scan."
    return error


def _missing(name: str) -> PgError:
    return PgError("34000", f'cursor "{name}" does not exist')


class Cursors:
    def __init__(self, conn: Connection, engine, state: SessionState):
        self.conn = conn
        self.engine = engine
        self.state = state

    def declare(self, plan: DeclareCursor, text: str, params: list, guard: Guard) -> None:
        state = self.state
        if plan.scroll:
            raise PgError(FEATURE_NOT_SUPPORTED, "SCROLL cursors are not supported; cursors only go forward here")
        if not plan.hold and state.status != "T":
            raise PgError("25P01", "DECLARE CURSOR can only be used in transaction blocks")
        if plan.name in state.cursors:
            raise PgError("42P03", f'cursor "{plan.name}" already exists')
        duck = self.engine.cursor()
        try:
            with guard(duck):
                check_statement(duck, plan.query.sql)
                state.settings.apply(duck)
                types, reader = duckdb_calls.stream(duck, plan.query.sql, params, BATCH_ROWS)
        except BaseException:
            self._close_duck(duck)
            raise
        if reader is None:
            self._close_duck(duck)
            raise PgError("42601", "DECLARE CURSOR needs a query that returns rows")
        # a FETCH's RowDescription names the source columns as the same SELECT's does (psqlODBC's
        # UseDeclareFetch reads nullability and sizes from pg_attribute by them)
        origins = TableColumns(plan.query.origins, self.engine, state.settings.search_path_schemas()) \
            if plan.query.origins else None
        state.cursors[plan.name] = OpenCursor(plan.name, text, plan.hold, plan.binary, time.time(), duck, reader,
                                              reader.schema, types, origins=origins)
        self._publish()
        self.conn.send(wire.command_complete(plan.tag))

    def encoder(self, name: str, formats: list[int]) -> ResultEncoder | None:
        """RowDescription of a cursor (Describe of the portal of that name, or of a FETCH from it)."""
        cursor = self.state.cursors.get(name)
        if cursor is None:
            return None
        return ResultEncoder.from_schema(cursor.schema, formats or ([1] if cursor.binary else []),
                                         self.state.settings.timezone, cursor.duck_types, cursor.origins)

    def fetch(self, plan: FetchCursor, formats: list[int], describe: bool, guard: Guard) -> None:
        cursor = self.state.cursors.get(plan.name)
        if cursor is None:
            raise _missing(plan.name)
        skip, take = _span(cursor, plan)
        encoder = None if plan.move else self.encoder(plan.name, formats)
        if describe and encoder is not None:
            self.conn.send(encoder.row_description())
        sent = 0
        with guard(cursor.duck):
            if take == 0:  # FETCH RELATIVE 0 / FORWARD 0: the current row again
                batches = [cursor.current] if cursor.current is not None else []
            else:
                _skip(cursor, skip)
                batches = _rows(cursor, take)
            for batch in batches:
                sent += batch.num_rows
                if encoder is not None:
                    for chunk in encoder.data_rows(batch):
                        self.conn.send(chunk)
        self.conn.send(wire.command_complete(f"{plan.tag} {sent}"))

    def close(self, name: str | None) -> None:
        """CLOSE name / CLOSE ALL."""
        if name is None:
            self.close_all()
            return
        cursor = self.state.cursors.pop(name, None)
        if cursor is None:
            raise _missing(name)
        self._close_duck(cursor.duck)
        self._publish()

    def end_transaction(self) -> None:
        """COMMIT / ROLLBACK: cursors without WITH HOLD go."""
        for name in [n for n, c in self.state.cursors.items() if not c.hold]:
            self._close_duck(self.state.cursors.pop(name).duck)
        self._publish()

    def close_all(self) -> None:
        for cursor in self.state.cursors.values():
            self._close_duck(cursor.duck)
        had = bool(self.state.cursors)
        self.state.cursors.clear()
        if had:
            self._publish()

    def deallocate(self, statements: dict, name: str | None, tag: str) -> None:
        """DEALLOCATE name | ALL: the protocol's prepared statements too (psqlODBC reuses plan names)."""
        if name is None:
            statements.clear()
        elif statements.pop(name, None) is None:
            raise PgError("26000", f'prepared statement "{name}" does not exist')
        self.conn.send(wire.command_complete(tag))

    def discard_all(self, statements: dict) -> None:
        """DISCARD ALL: cursors, prepared statements and settings back to the session's start."""
        if self.state.status != "I":
            raise PgError("25001", "DISCARD ALL cannot run inside a transaction block")
        self.close_all()
        statements.clear()
        self.conn.send_parameter_statuses(self.state.settings.reset_all())
        self.conn.send(wire.command_complete("DISCARD ALL"))

    def _close_duck(self, duck) -> None:
        self.state.settings.forget(duck)
        try:
            duck.close()
        except Exception:  # noqa: BLE001 - closing a broken DuckDB cursor must not hide why we close it
            pass

    def _publish(self) -> None:
        """pg_cursors reads the session's open cursors from a DuckDB variable of the session's cursor."""
        items = ", ".join(
            f"{{'name': {quote_literal(c.name)}, 'statement': {quote_literal(c.statement)}, "
            f"'is_holdable': {str(c.hold).lower()}, 'is_binary': {str(c.binary).lower()}, "
            f"'created': {c.created!r}}}" for c in self.state.cursors.values())
        try:
            self.state.cursor.execute(f"SET VARIABLE bemidb_cursors = [{items}]::{CURSOR_LIST}")
        except Exception:  # noqa: BLE001 - the listing is informative; the cursors themselves work without it
            pass


def _span(cursor: OpenCursor, plan: FetchCursor) -> tuple[int, int | None]:
    """(rows to skip, rows to return; None: all, 0: the current row again) of a FETCH/MOVE, forward only."""
    count = plan.count
    if plan.direction == "forward":
        if count is not None and count < 0:
            raise _no_backward()
        return 0, count
    if plan.direction == "relative":
        if count < 0:
            raise _no_backward()
        return (0, 0) if count == 0 else (count - 1, 1)
    # absolute
    if count == cursor.position and count > 0:
        return 0, 0
    if count < 0 or count < cursor.position or (count == 0 and cursor.position > 0):
        raise _no_backward()
    return (0, 0) if count == 0 else (count - 1 - cursor.position, 1)


def _rows(cursor: OpenCursor, limit: int | None):
    """Up to `limit` rows (None: all) as batches, advancing the cursor."""
    taken = 0
    while limit is None or taken < limit:
        batch = next_batch(cursor)
        if batch is None:
            cursor.current = None  # past the end: nothing to re-read
            return
        if limit is not None and taken + batch.num_rows > limit:
            cursor.leftover = batch.slice(limit - taken)
            batch = batch.slice(0, limit - taken)
        taken += batch.num_rows
        cursor.position += batch.num_rows
        cursor.current = batch.slice(batch.num_rows - 1, 1)
        yield batch


def _skip(cursor: OpenCursor, rows: int) -> None:
    for _batch in _rows(cursor, rows) if rows else ():
        pass
