"""The COPY framing: CopyData headers cut out of the byte stream exactly, whatever the values hold (newlines
followed by 'd', a length byte that is a newline) and whatever other messages come in between."""

from __future__ import annotations

import io
import random
import struct

import psycopg
import pytest

from bemidb.sync.postgres_copy import _MessageReader, copy_csv_chunks
from bemidb.sync.postgres_source import begin_snapshot, connect


def _message(code: bytes, payload: bytes) -> bytes:
    return code + struct.pack("!i", len(payload) + 4) + payload


def _rows(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        kind = rng.random()
        if kind < 0.05:
            rows.append(b'%d,"two\nd lines\ndd"\n' % i)  # "\nd" inside a quoted value
        elif kind < 0.1:
            rows.append(b"d" * 5 + b"\n")  # length 10: its header holds 0x0A, then a 'd'
        else:
            rows.append(b"%d,%s\n" % (i, b"x" * rng.randrange(0, 300)))
    return rows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_framing_gives_exactly_the_rows_and_the_other_messages(seed):
    rows = _rows(20_000, seed)
    stream = b"".join(_message(b"d", r) for r in rows[:12_000]) + _message(b"N", b"notice\x00") + \
        b"".join(_message(b"d", r) for r in rows[12_000:]) + _message(b"c", b"") + \
        _message(b"C", b"COPY 20000\x00") + _message(b"Z", b"I")
    reader = _MessageReader(io.BufferedReader(io.BytesIO(stream), buffer_size=64 * 1024))
    got, others = [], []
    while True:
        chunk, other = reader.copy_data(256 * 1024)
        if chunk is not None:
            got.append(chunk.to_pybytes())
        if other is not None:
            others.append(other[0])
            if other[0] == b"Z":
                break
    assert b"".join(got) == b"".join(rows)
    assert others == [b"N", b"c", b"C", b"Z"]


class _Trickle(io.RawIOBase):
    """A socket that hands out 1-700 bytes per read: headers and rows split at every possible place."""

    def __init__(self, data: bytes, seed: int):
        self.data, self.pos, self.rng = data, 0, random.Random(seed)

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        size = min(len(target), self.rng.randrange(1, 700), len(self.data) - self.pos)
        target[:size] = self.data[self.pos:self.pos + size]
        self.pos += size
        return size


def test_framing_with_split_reads_and_a_row_bigger_than_the_buffer(monkeypatch):
    import bemidb.sync.postgres_copy as postgres_copy

    monkeypatch.setattr(postgres_copy, "COALESCE_S", 0)
    rows = _rows(3_000, 7)
    rows.insert(1_500, b"1," + b"y" * (9 * 1024 * 1024) + b"\n")  # more than the 6 MB the reader starts with
    stream = b"".join(_message(b"d", r) for r in rows) + _message(b"c", b"") + _message(b"Z", b"I")
    reader = _MessageReader(io.BufferedReader(_Trickle(stream, 7), buffer_size=512))
    got, others = [], []
    while not others or others[-1] != b"Z":
        chunk, other = reader.copy_data(64 * 1024)
        if chunk is not None:
            got.append(chunk.to_pybytes())
        if other is not None:
            others.append(other[0])
    assert b"".join(got) == b"".join(rows)
    assert others == [b"c", b"Z"]


def test_copy_from_postgres_with_newlines_in_values(pg):
    url = pg.create_database("copy_framing")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t AS SELECT g AS id, CASE WHEN g % 3 = 0 THEN E'a\\nd\\nd' ELSE 'ddddd' END AS v "
                      "FROM generate_series(1, 100000) g")
        expected = conn.execute("SELECT count(*), sum(length(v)) FROM t").fetchone()
    conn = connect(url)
    try:
        begin_snapshot(conn)
        csv = b"".join(bytes(c) for c in copy_csv_chunks(conn, "SELECT id, v FROM t ORDER BY id"))
    finally:
        conn.close()
    import pyarrow.csv as pa_csv

    table = pa_csv.read_csv(io.BytesIO(csv), read_options=pa_csv.ReadOptions(column_names=["id", "v"]),
                            parse_options=pa_csv.ParseOptions(newlines_in_values=True))
    assert table.num_rows == expected[0]
    assert sum(len(v) for v in table.column("v").to_pylist()) == expected[1]
    assert table.column("id").to_pylist() == list(range(1, 100_001))
