"""The drain reads the slot in frames (each message's int32 length, then the message; a whole chunk hex-decoded
at once) and decodes changes in place: on real pgoutput messages of a real Postgres 15, that gives exactly the
messages the one-message decoder gives for the same slot, read the plain way (one bytea per row)."""

from __future__ import annotations

import psycopg
import pytest

from bemidb.sync import cdc_source, pgoutput
from bemidb.sync.cdc import _connect
from tests.support.cdc import cdc_source as _source_fixture  # noqa: F401 - the `source` fixture


def _plain(url: str, slot: str, publication: str) -> list:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT data FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL, 'proto_version', "
                            "'1', 'publication_names', %s)", (slot, publication)).fetchall()
    return [m for m in (pgoutput.decode(bytes(data)) for (data,) in rows) if m is not None]


def test_framed_reading_decodes_every_message_as_the_one_message_decoder(source):
    big = "(SELECT string_agg(md5(random()::text || n), '') FROM generate_series(1, 300) n)"  # TOASTed, > 8 kB
    source("CREATE TABLE a (id int PRIMARY KEY, name text, note text, n numeric, tags text[]);"
           "ALTER TABLE a ALTER note SET STORAGE EXTERNAL;"
           "CREATE TABLE b (k text, v int, PRIMARY KEY (k, v));"
           "CREATE TABLE c (x int, y text); ALTER TABLE c REPLICA IDENTITY FULL;"
           "CREATE PUBLICATION p FOR TABLE a, b, c")
    source("SELECT pg_create_logical_replication_slot('s', 'pgoutput')")
    source(f"INSERT INTO a SELECT g, 'näme ' || g || ' ✓', {big}, g / 3.0, ARRAY['x,y', NULL, '\"q\"'] "
           "FROM generate_series(1, 600) g")
    source("INSERT INTO a VALUES (5000, '', NULL, 'NaN', '{}'), (5001, NULL, 'short', NULL, NULL)")
    source("UPDATE a SET name = 'renamed' WHERE id % 7 = 0")  # note is not sent: unchanged TOAST
    source("UPDATE a SET id = id + 100000 WHERE id % 500 = 1")  # a key change: the old key is sent
    source("DELETE FROM a WHERE id % 11 = 0")
    source("INSERT INTO b SELECT 'k' || g, g FROM generate_series(1, 50) g; UPDATE b SET v = -v WHERE v < 5;"
           "DELETE FROM b WHERE v > 45")
    source("INSERT INTO c VALUES (1, 'one'), (2, NULL), (1, 'one'); UPDATE c SET y = 'uno' WHERE x = 1;"
           "DELETE FROM c WHERE x = 2")
    source("BEGIN; INSERT INTO a VALUES (9000, 'two tables', 'in', 1); INSERT INTO b VALUES ('same', 1); COMMIT")
    with psycopg.connect(source.url) as conn:  # rolled back: never sent
        conn.execute("INSERT INTO a VALUES (9001, 'gone', 'x', 1)")
        conn.rollback()
    source("TRUNCATE b")

    expected = _plain(source.url, "s", "p")
    conn = _connect(source.url)
    try:
        framed = list(cdc_source.peek_messages(conn, "s", "p", cdc_source.current_lsn(conn)))
    finally:
        conn.close()
    assert framed == expected
    changes = [m for m in framed if isinstance(m, pgoutput.Change)]
    assert len(changes) > 600
    assert any(pgoutput.UNCHANGED in m.new for m in changes if m.kind == "U")
    assert any(m.old is not None for m in changes if m.kind == "U")  # the key change, and c's whole old rows
    assert any(isinstance(m, pgoutput.Truncate) for m in framed)
    assert ("5000", "", None, "NaN", "{}") in [m.new for m in changes]
    assert any(m.new[1] == "näme 2 ✓" and m.new[4] == '{"x,y",NULL,"\\"q\\""}' for m in changes if m.kind == "I")


def test_a_message_cut_short_or_of_another_kind_is_refused():
    insert = b"I" + (16384).to_bytes(4, "big") + b"N" + (1).to_bytes(2, "big") + b"t" + (3).to_bytes(4, "big") + b"abc"
    framed = len(insert).to_bytes(4, "big") + insert
    assert list(pgoutput.decode_frames(framed * 2)) == [pgoutput.Change("I", 16384, ("abc",), None)] * 2
    with pytest.raises(pgoutput.ProtocolError):
        list(pgoutput.decode_frames((len(insert) + 1).to_bytes(4, "big") + insert + b"x"))  # longer than its tuple
    binary = insert.replace(b"t", b"b", 1)  # a binary value: never asked for
    with pytest.raises(pgoutput.ProtocolError):
        list(pgoutput.decode_frames(len(binary).to_bytes(4, "big") + binary))
