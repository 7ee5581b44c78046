"""Per user, the same queries through bemidb (grants from the users file) and through the source Postgres
(the same grants as GRANT, column privileges and row-level security): same columns, same rows, or an error of
the same class (a denied table is 42501 in Postgres and 42P01 here, as if absent: both class 42)."""

from __future__ import annotations

import psycopg
import pytest

from tests.support import permissions as world

QUERIES = [
    "SELECT id, amount, status FROM orders ORDER BY id",
    "SELECT count(*), sum(amount) FROM orders",
    "SELECT o.id, u.name FROM orders o JOIN users u ON u.id = o.user_id ORDER BY o.id",
    "SELECT u.name, count(o.id) FROM users u LEFT JOIN orders o ON o.user_id = u.id GROUP BY u.name ORDER BY 1",
    "WITH t AS (SELECT user_id, sum(amount) AS s FROM orders GROUP BY user_id) SELECT * FROM t ORDER BY user_id",
    "SELECT id, rank() OVER (PARTITION BY user_id ORDER BY amount DESC, id) AS r FROM orders ORDER BY id",
    "SELECT id FROM orders WHERE id IN (SELECT id FROM orders WHERE amount > 20) ORDER BY id",
    "SELECT id FROM orders WHERE EXISTS (SELECT 1 FROM users WHERE users.id = orders.user_id) ORDER BY id",
    "SELECT (SELECT max(amount) FROM orders) AS m",
    "WITH orders AS (SELECT 1 AS id) SELECT id FROM orders",
    "SELECT * FROM (SELECT id, status FROM orders) s WHERE status <> 'paid' ORDER BY id",
    "SELECT id, tenant_id FROM orders ORDER BY id",
    "SELECT id, note FROM orders ORDER BY id",
    "SELECT email FROM users",
    "SELECT id FROM users WHERE ssn IS NOT NULL",
    "SELECT * FROM secret",
    "SELECT count(*) FROM public.secret",
    "SELECT * FROM report_daily ORDER BY day",
    "SELECT r.month, r.total FROM report_monthly r ORDER BY 1",
    "SELECT id FROM orders UNION ALL SELECT id FROM secret",
    "SELECT id FROM orders ORDER BY id LIMIT 3 OFFSET 2",
]
USERS = ["analyst", "tenant1"]


@pytest.fixture(scope="module")
def connections(server, source):
    opened = {}
    for user in USERS:
        opened[user] = (psycopg.connect(server.dsn(user, world.PASSWORDS[user]), autocommit=True),
                        psycopg.connect(world.as_user(source, user), autocommit=True))
    yield opened
    for ours, theirs in opened.values():
        ours.close()
        theirs.close()


@pytest.mark.parametrize("user", USERS)
def test_same_rows_columns_and_error_classes_as_postgres(connections, user):
    ours, theirs = connections[user]
    mismatches = []
    for sql in QUERIES:
        expected, got = world.outcome(theirs, sql), world.outcome(ours, sql)
        if expected != got:
            mismatches.append((sql, expected, got))
    assert not mismatches, "\n".join(f"{sql}\n  postgres: {e}\n  bemidb:   {g}" for sql, e, g in mismatches)
    # The suite must exercise both outcomes for every user: rows that the grants filter, and refusals.
    outcomes = [world.outcome(theirs, sql)[0] for sql in QUERIES]
    assert "rows" in outcomes and "error" in outcomes


@pytest.mark.parametrize("user", USERS)
def test_prepared_statements_with_parameters(connections, user):
    ours, theirs = connections[user]
    for sql, params in [("SELECT id, amount FROM orders WHERE amount > %s ORDER BY id", (20,)),
                        ("SELECT o.id FROM orders o WHERE o.user_id = %s AND o.status = %s ORDER BY 1", (2, "paid")),
                        ("SELECT count(*) FROM orders WHERE id < %s", (30,))]:
        for _ in range(3):  # psycopg prepares server-side from the second run with prepare=True
            assert world.outcome(ours, sql, params, prepare=True) == world.outcome(theirs, sql, params, prepare=True)


def _copy(conn: psycopg.Connection, sql: str):
    try:
        with conn.cursor() as cur:
            with cur.copy(sql) as copy:
                return "rows", b"".join(bytes(chunk) for chunk in copy)
    except psycopg.Error as exc:
        return "error", (exc.sqlstate or "")[:2]


@pytest.mark.parametrize("user", USERS)
def test_copy_to_stdout(connections, user):
    ours, theirs = connections[user]
    for sql in ["COPY (SELECT id, status FROM orders ORDER BY id) TO STDOUT",
                "COPY (SELECT id FROM orders JOIN secret USING (id)) TO STDOUT",
                "COPY orders (id, user_id) TO STDOUT",
                "COPY secret TO STDOUT"]:
        expected, got = _copy(theirs, sql), _copy(ours, sql)
        if expected[0] == "rows":  # COPY table: row order is the table's, not promised: compare as sets
            expected, got = (expected[0], sorted(expected[1].splitlines())), (got[0], sorted(got[1].splitlines()))
        assert got == expected, sql


def test_asyncpg_and_pg8000_with_parameters(server, source):
    """Drivers that introspect types through the catalog (asyncpg) or bind parameters themselves (pg8000)."""
    import asyncio

    import asyncpg
    import pg8000.native

    sql_dollar = "SELECT id, amount FROM orders WHERE amount > $1 AND status = ANY($2::text[]) ORDER BY id"
    args = (10, ["paid", "open"])

    async def rows(dsn: str) -> list[tuple]:
        conn = await asyncpg.connect(dsn)
        try:
            return world.normalized([tuple(r) for r in await conn.fetch(sql_dollar, *args)])
        finally:
            await conn.close()

    for user in USERS:
        theirs = asyncio.run(rows(world.as_user(source, user)))
        ours = asyncio.run(rows(server.dsn(user, world.PASSWORDS[user])))
        assert ours == theirs and theirs, user
        info = server.conninfo(user, world.PASSWORDS[user])
        conn = pg8000.native.Connection(info["user"], host=info["host"], port=info["port"],
                                        database=info["database"], password=info["password"])
        try:
            got = world.normalized([tuple(r) for r in conn.run(
                "SELECT id, amount FROM orders WHERE amount > :a ORDER BY id", a=10)])
        finally:
            conn.close()
        with psycopg.connect(world.as_user(source, user)) as pg_conn:
            want = world.normalized(pg_conn.execute(
                "SELECT id, amount FROM orders WHERE amount > 10 ORDER BY id").fetchall())
        assert got == want, user
