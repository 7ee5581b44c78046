"""Fast `COPY (SELECT ...) TO STDOUT (FORMAT csv)` over a pg8000 connection, decoded into Arrow batches.

Postgres sends one CopyData message per row. pg8000's generic message loop costs a few Python calls per
message, which made the copy ~2x slower than psql; here socket reads land in one preallocated buffer, one
tight loop finds where each message starts, and vectorised Arrow steps check the message codes and cut the
5-byte headers out, handing ~4 MB slices of pure CSV (always whole rows) to pyarrow.csv, which parses them in
C++ with explicit column types. Memory: the buffer, one slice and the Arrow table decoded from it.
"""

from __future__ import annotations

import re
import struct
import time
from array import array
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from pg8000.exceptions import DatabaseError, InterfaceError

from bemidb.pg_connect import send_cancel
from bemidb.storage.types import ColumnPlan, value_bytes

CHUNK_BYTES = 4 * 1024 * 1024  # CSV handed to pyarrow at once
READ_BYTES = 1024 * 1024
# Postgres prints rows slower than we frame them, so a read finds ~20 kB waiting (a few hundred rows) and each
# costs a wake-up: after a small read, wait a moment so the next one brings ~150 kB (lineitem: 34k -> 5k reads,
# ~0.3 s less CPU). The socket buffers hold far more than Postgres prints in that time, so it never waits on us.
SMALL_READ = 256 * 1024
COALESCE_S = 0.001
QUERY_CANCELED = "57014"

_HEADER = struct.Struct("!ci")
_LENGTH = struct.Struct("!i")


class UnsafeValues(Exception):
    """An optimistic column met a value it cannot parse (BC date, infinity...): re-run with safe plans."""


class CopyError(Exception):
    """The COPY failed on the server (message from its ErrorResponse) or the connection broke."""

    def __init__(self, message: str, sqlstate: str | None = None, connection_lost: bool = False):
        super().__init__(message)
        self.sqlstate = sqlstate
        self.connection_lost = connection_lost  # the socket broke: the run cannot go on with other tables


def _error_fields(payload: bytes) -> dict[str, str]:
    return {part[:1].decode("ascii"): part[1:].decode("utf-8", "replace")
            for part in payload.split(b"\x00") if part}


def copy_csv_chunks(conn, select_sql: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Yield CSV bytes of `COPY (select_sql) TO STDOUT`, each chunk ending on a row boundary.

    On early exit (the consumer failed) the query is cancelled and the connection drained back to idle,
    so the transaction (and its snapshot) can go on with the next table after ROLLBACK TO SAVEPOINT.
    """
    sql = f"COPY ({select_sql}) TO STDOUT WITH (FORMAT csv)".encode()
    sock = conn._sock  # pg8000's buffered socket file: we speak the simple-query protocol ourselves
    try:
        sock.write(b"Q" + _LENGTH.pack(len(sql) + 5) + sql + b"\x00")
        sock.flush()
    except OSError as exc:
        raise CopyError(f"connection to the source lost: {exc}", connection_lost=True) from None
    reader = _MessageReader(sock)
    finished = False
    try:
        error: dict[str, str] | None = None
        while True:
            rows, other = reader.copy_data(chunk_bytes)
            if rows is not None:
                yield rows
                del rows
            if other is None:
                continue
            code, payload = other
            if code == b"E":
                error = _error_fields(payload)
            elif code == b"Z":
                finished = True
                break
            # H (CopyOutResponse), c (CopyDone), C (CommandComplete), N (notice), S (parameter): nothing to do
        if error is not None:
            raise CopyError(error.get("M", "COPY failed"), error.get("C"))
    finally:
        if not finished:
            _cancel_and_drain(conn, reader)


class _MessageReader:
    """Backend messages read straight into one preallocated buffer (readinto1: no bytes object per read, no
    copy into the buffer); bytes [pos, end) are read and not handed out yet."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = bytearray(CHUNK_BYTES + 2 * READ_BYTES)
        self.pos = 0
        self.end = 0

    def _read_more(self) -> None:
        if len(self.buffer) - self.end < READ_BYTES:  # a message bigger than the buffer: grow (offsets stay)
            self.buffer.extend(bytes(max(READ_BYTES, len(self.buffer))))
        try:
            with memoryview(self.buffer) as view:
                count = self.sock.readinto1(view[self.end:])
        except OSError as exc:
            raise CopyError(f"connection to the source lost: {exc}", connection_lost=True) from None
        if not count:
            raise CopyError("connection to the source closed during COPY", connection_lost=True)
        self.end += count
        if count < SMALL_READ:
            time.sleep(COALESCE_S)

    def copy_data(self, limit: int):
        """(rows, other): the CSV of consecutive CopyData messages (~limit bytes, None if there were none),
        and the first other message as (code, payload) or None when the limit was reached first."""
        buffer = self.buffer
        pos = first = self.pos
        starts = array("i")  # where each whole message starts (CopyData until proven otherwise)
        while True:
            pos = _scan_messages(buffer, pos, self.end, starts)
            full = pos - first >= limit
            # The codes are checked once per chunk, and before any read that could wait: a COPY always ends
            # with ReadyForQuery, so when the stream pauses its last whole message is not CopyData. (A read
            # brings ~20 kB, a few hundred rows: a vectorised check per read cost more than it saved.)
            other = _first_other(buffer, starts, self.end) if full or (starts and buffer[starts[-1]] != 100) else -1
            if other >= 0:
                at = starts[other]
                end = at + 1 + _LENGTH.unpack_from(buffer, at + 1)[0]
                message = (bytes(buffer[at:at + 1]), bytes(buffer[at + 5:end]))
                del starts[other:]
                rows = _strip_headers(buffer, at, starts) if starts else None
                self._consume(end)
                return rows, message
            if full:
                rows = _strip_headers(buffer, pos, starts)
                self._consume(pos)
                return rows, None
            self._read_more()  # grows the buffer in place when full: the offsets in `starts` stay valid

    def _consume(self, upto: int) -> None:
        """Forget buffer[:upto] (the rest, a partial message, moves to the front)."""
        rest = self.end - upto
        if rest:
            self.buffer[:rest] = self.buffer[upto:self.end]
        self.pos, self.end = 0, rest

    def __iter__(self):
        while True:
            _rows, other = self.copy_data(CHUNK_BYTES)  # rows are dropped: only used to drain
            if other is not None:
                yield other


def _scan_messages(buffer: bytearray, pos: int, end: int, starts: array) -> int:
    """Append the start of every whole message in buffer[pos:end] to `starts`; return where the first
    partial one starts. The hot loop: per row only a jump by its length; the message codes are checked
    after it, vectorised (_first_other), and headers cut out in one vectorised step (_strip_headers)."""
    mark = starts.append
    length_at = _LENGTH.unpack_from
    last = end - 5  # a header needs 5 bytes
    while pos <= last:
        mark(pos)
        pos += 1 + length_at(buffer, pos + 1)[0]
    if pos > end:  # the last one marked is not whole yet
        pos = starts.pop()
    return pos


def _first_other(buffer: bytearray, starts: array, end: int) -> int:
    """Index in `starts` of the first message that is not CopyData ('d'), or -1."""
    if not starts:
        return -1
    data = pa.Array.from_buffers(pa.uint8(), end, [None, pa.py_buffer(buffer)])
    at = pa.Array.from_buffers(pa.int32(), len(starts), [None, pa.py_buffer(starts)])
    index = pc.index(pc.not_equal(pc.take(data, at), 100), True).as_py()
    del data, at  # release the exports: the buffer and `starts` may be resized next
    return index


def _strip_headers(buffer: bytearray, stop: int, starts: array) -> pa.Buffer:
    """The messages at `starts` (the last ending at `stop`) without their 5-byte headers (a copy).

    The messages are viewed as one Arrow binary array (value i = message i, header included), then one
    vectorised binary_slice drops the first 5 bytes of every value: no Python work per row."""
    starts.append(stop)  # their offsets: native int32, as Arrow's
    offsets = pa.py_buffer(starts)
    messages = pa.Array.from_buffers(pa.binary(), len(starts) - 1, [None, offsets, pa.py_buffer(buffer)])
    payloads = pc.binary_slice(messages, 5, 2**31 - 1)
    del messages, offsets  # release the exports so the buffer can be reused
    return value_bytes(payloads)


def _cancel_and_drain(conn, reader: _MessageReader) -> None:
    """Ask the server to stop this COPY (CancelRequest) and read until ReadyForQuery."""
    if getattr(conn, "_bemidb_abandoned", False):
        return  # interrupted: the connection is shut (sync/interrupt.py), there is nothing left to read
    sent = send_cancel(conn)  # when it could not be sent, draining still works, it only takes longer
    cancelled = False
    try:
        for code, payload in reader:
            if code == b"E" and _error_fields(payload).get("C") == QUERY_CANCELED:
                cancelled = True
            if code == b"Z":
                break
    except CopyError:
        return
    if sent and not cancelled:
        _absorb_late_cancel(conn)


def _absorb_late_cancel(conn) -> None:
    """The COPY finished before our CancelRequest reached it, so the cancel may still land on the next
    statement (seen: it cancelled the exact re-read of a table). Give it a harmless statement to land on; the
    caller rolls back to its savepoint after an early exit, which also clears an aborted transaction."""
    try:
        conn.run("SELECT pg_sleep(0.2)")
    except DatabaseError:
        pass  # the late cancel arrived here, where it harms nothing


def csv_options(plans: list[ColumnPlan]):
    names = [f"c{i}" for i in range(len(plans))]  # positional: column names may repeat case-insensitively
    # One thread: on a small machine that also runs Postgres, pyarrow's parallel CSV parsing with
    # newlines_in_values costs twice the CPU for no wall-clock gain (measured, bench/sync.py).
    read = pa_csv.ReadOptions(column_names=names, block_size=4 * 1024 * 1024, use_threads=False)
    parse = pa_csv.ParseOptions(newlines_in_values=True)
    convert = pa_csv.ConvertOptions(
        column_types={name: plan.csv_type for name, plan in zip(names, plans, strict=True)},
        null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False,
        true_values=["t"], false_values=["f"])
    return read, parse, convert


def decode_chunks(chunks: Iterator[bytes], plans: list[ColumnPlan], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """CSV chunks -> Arrow record batches of `schema`, every conversion vectorised."""
    read, parse, convert = csv_options(plans)
    try:
        yield from _decode(chunks, plans, schema, read, parse, convert)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # cancels an unfinished COPY now, not when garbage collected


def _decode(chunks, plans, schema, read, parse, convert):
    for chunk in chunks:
        try:
            # One block per chunk: a row of any size (a 100 MB text value) parses, nothing straddles blocks.
            read.block_size = max(len(chunk) + 1, 1 << 20)
            table = pa_csv.read_csv(pa.py_buffer(chunk), read_options=read, parse_options=parse,
                                    convert_options=convert)
        except pa.ArrowInvalid as exc:
            plan = _failed_plan(str(exc), plans)
            if plan is not None and plan.optimistic:
                raise UnsafeValues(plan.column.name) from None
            raise CopyError(_explain_parse_error(str(exc), plans)) from None
        del chunk
        columns = converted_columns(table, plans)
        decoded = pa.Table.from_arrays(columns, schema=schema)
        del table, columns
        yield from decoded.to_batches()


def converted_columns(table: pa.Table, plans: list[ColumnPlan]) -> list[pa.ChunkedArray]:
    """The CSV reader's columns with each plan's vectorized conversion applied (text forms Arrow's CSV reader
    cannot type itself)."""
    columns = []
    for index, plan in enumerate(plans):
        column = table.column(index)
        if plan.convert is not None:
            column = pa.chunked_array([plan.convert(c) for c in column.chunks], plan.arrow_type)
        columns.append(column)
    return columns


def _failed_plan(message: str, plans: list[ColumnPlan]) -> ColumnPlan | None:
    match = re.search(r"column #?(\d+)|'c(\d+)'", message)
    if match:
        index = int(match.group(1) or match.group(2))
        if 0 <= index < len(plans):
            return plans[index]
    return None


def _explain_parse_error(message: str, plans: list[ColumnPlan]) -> str:
    """pyarrow names our positional column (c3): say which source column and type it was."""
    first_line = message.splitlines()[0] if message else "CSV parse error"
    plan = _failed_plan(message, plans)
    if plan is None:
        return first_line
    hint = " (NaN or Infinity cannot be stored as a decimal)" if plan.column.base == "numeric" else ""
    detail = first_line.split(": ", 1)[-1]
    return f"column {plan.column.name} ({plan.column.pg_type}): {detail}{hint}"


__all__ = ["UnsafeValues", "CopyError", "copy_csv_chunks", "decode_chunks", "DatabaseError", "InterfaceError"]
