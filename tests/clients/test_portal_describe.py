"""Describe of a portal starts its query (issue 17: a primary-key lookup is not bound twice). The same
extended-protocol message sequences go to the test Postgres and to bemidb serving a sync of it, byte for byte
in the rows: pipelined portals whose Describes come before their Executes, a Parse between a portal's Describe
and its Execute, row limits over several Executes, a portal closed before its Execute; and psycopg's prepared
statements (Bind/Describe/Execute every time) over many keys."""

from __future__ import annotations

import psycopg
import pytest

from tests.support import wire_client as raw
from tests.support.synced import create_source, serve_synced

SOURCE_DDL = """
CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL, note text, amount numeric(12,2));
INSERT INTO orders SELECT g, g % 97, 'order ' || g, g * 1.25 FROM generate_series(1, 20000) g;
"""
LOOKUP = "SELECT id, customer, note, amount FROM orders WHERE id = $1"
RANGE = "SELECT id, note FROM orders WHERE id >= $1 ORDER BY id LIMIT 25"


@pytest.fixture(scope="module")
def source(pg):
    return create_source(pg, "compat_portal_describe", SOURCE_DDL)


@pytest.fixture(scope="module")
def server(source, warehouse):
    yield from serve_synced(source, warehouse)


def _clients(pg, server):
    """A raw client logged in to the test Postgres (the oracle) and one to bemidb."""
    postgres = raw.RawClient("127.0.0.1", pg.port)
    assert postgres.startup(pg.user, "compat_portal_describe", password=pg.password)[-1].tag == b"Z"
    bemidb = raw.RawClient("127.0.0.1", server.port)
    assert bemidb.startup()[-1].tag == b"Z"
    return postgres, bemidb


def _replies(client: raw.RawClient, messages: bytes) -> list[tuple]:
    """(tag, data row / command tag / SQLSTATE) of every reply up to ReadyForQuery: what must be equal.
    RowDescription is left out (its table OIDs differ by design); that it came is in the tags."""
    client.send(messages)
    out = []
    for message in client.read_until_ready():
        if message.tag == b"D":
            out.append((b"D", message.data_row()))
        elif message.tag == b"C":
            out.append((b"C", message.payload))
        elif message.tag == b"E":
            out.append((b"E", message.sqlstate))
        else:
            out.append((message.tag, None))
    return out


SEQUENCES = {
    "describes before executes": (
        raw.parse(LOOKUP, name="s") + raw.bind([b"3"], "s", "p1") + raw.bind([b"7"], "s", "p2")
        + raw.describe(b"P", "p1") + raw.describe(b"P", "p2") + raw.execute("p2") + raw.execute("p1")
        + raw.sync()),
    "a Parse between Describe and Execute": (
        raw.parse(LOOKUP, name="s") + raw.bind([b"11"], "s", "p1") + raw.describe(b"P", "p1")
        + raw.parse(RANGE, name="r") + raw.bind([b"500"], "r", "p2") + raw.describe(b"P", "p2")
        + raw.execute("p1") + raw.execute("p2") + raw.sync()),
    "row limits after a Describe": (
        raw.parse(RANGE) + raw.bind([b"19990"]) + raw.describe(b"P") + raw.execute(b"", 4)
        + raw.execute(b"", 4) + raw.execute(b"", 0) + raw.execute(b"", 0) + raw.sync()),
    "a described portal closed unexecuted, then another run": (
        raw.parse(LOOKUP, name="s") + raw.bind([b"5"], "s", "p1") + raw.describe(b"P", "p1")
        + raw.close(b"P", "p1") + raw.bind([b"6"], "s", "p1") + raw.describe(b"P", "p1") + raw.execute("p1")
        + raw.sync()),
    "an unknown key": raw.parse(LOOKUP) + raw.bind([b"-1"]) + raw.describe(b"P") + raw.execute() + raw.sync(),
    "a missing portal": raw.describe(b"P", "nope") + raw.execute() + raw.sync(),
}


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_described_portals_answer_as_postgres(pg, server, name):
    postgres, bemidb = _clients(pg, server)
    try:
        expected = _replies(postgres, SEQUENCES[name])
        got = _replies(bemidb, SEQUENCES[name])
        assert got == expected
        assert any(tag in (b"D", b"E") for tag, _ in got) or name == "an unknown key"
    finally:
        postgres.close()
        bemidb.close()


def test_portal_described_in_a_transaction_survives_other_statements(pg, server):
    """BEGIN; a named portal is bound and described, simple queries run, then it is executed: rows from the
    start, once (the query started at Describe is run again, never resent in part)."""
    postgres, bemidb = _clients(pg, server)
    try:
        results = []
        for client in (postgres, bemidb):
            client.simple("BEGIN")
            first = _replies(client, raw.parse(RANGE, name="r") + raw.bind([b"100"], "r", "keep")
                             + raw.describe(b"P", "keep") + raw.sync())
            middle = raw.rows(client.simple("SELECT count(*) FROM orders WHERE customer = 5"))
            rest = _replies(client, raw.execute("keep", 10) + raw.execute("keep") + raw.sync())
            client.simple("COMMIT")
            results.append((first, middle, rest))
        assert results[1] == results[0]
        assert sum(1 for tag, _ in results[1][2] if tag == b"D") == 25
    finally:
        postgres.close()
        bemidb.close()


def test_psycopg_prepared_lookups_equal_postgres(source, server):
    """psycopg prepares after 5 runs: then every lookup is Bind + Describe(portal) + Execute + Sync."""
    keys = [1, 2, 20000, 777, 0, 12345, 3, 19999, 4242, 5, 6, 7, 8]
    answers = []
    for dsn in (source, server.dsn()):
        with psycopg.connect(dsn, autocommit=True) as conn:
            answers.append([conn.execute(LOOKUP.replace("$1", "%s"), (key,)).fetchall() for key in keys])
    assert answers[1] == answers[0]
    assert sum(len(rows) for rows in answers[1]) == len(keys) - 1  # key 0 is absent
