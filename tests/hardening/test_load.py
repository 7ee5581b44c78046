"""Load: 32 concurrent clients (psycopg threads and asyncpg tasks) and 200 clients that vanish mid-result.

Bounded (fixed iterations, loopback only). Every result is checked against the known data, and the server
process is measured from /proc before and after: threads and file descriptors must come back to where they
were after warm-up (no leak), and RSS after the run must stay within 20% of RSS after warm-up. The figures
are printed (run with -s to see them) as `LOAD ...` lines.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import psycopg
import pytest

from tests.hardening.fuzz_sessions import healthy
from tests.support import wire_client as wire
from tests.support.processes import fds_of, settle, threads_of
from tests.support.seed import seed_standard
from tests.support.server import start_server

PSYCOPG_CLIENTS = 16
ASYNCPG_CLIENTS = 16
ROUNDS = 10  # per client; each round = 3 point queries, 1 aggregate, 1 catalog query
WARMUP_ROUNDS = 5  # the allocator's high-water mark settles after a few rounds at full concurrency
BIG_EVERY = 5  # a 100k-row result every BIG_EVERY rounds
BIG_ROWS = 100_000
DROPS = 200

# Expected answers, computed from the seed's definition (id 1..N, grp = id % 10, label 'row-<id>', amount id/2).
EXPECTED_GROUPS = [(g, BIG_ROWS // 10, sum(i for i in range(1, BIG_ROWS + 1) if i % 10 == g)) for g in range(10)]
POINT_SQL = "SELECT id, grp, label, amount FROM public.big WHERE id = {}"
AGG_SQL = "SELECT grp, count(*), sum(id) FROM public.big GROUP BY grp ORDER BY grp"
CATALOG_SQL = ("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
               "ORDER BY table_name")
BIG_SQL = "SELECT id, label FROM public.big"


@pytest.fixture(scope="module")
def server(warehouse):
    """On local disk, then on S3."""
    seed_standard(warehouse.data_dir, warehouse.env)
    process = start_server(warehouse.data_dir, env=warehouse.env, log_level="INFO",
                           extra_args=["--max-connections", "300"])
    yield process
    process.stop()








def stable(measure, timeout: float = 15) -> int:
    """A reading that held for a second (sessions of clients that just left finish asynchronously)."""
    deadline = time.monotonic() + timeout
    value = measure()
    while time.monotonic() < deadline:
        time.sleep(1)
        again = measure()
        if again == value:
            return value
        value = again
    return value


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.queries = 0
        self.rows = 0
        self.errors: list[str] = []

    def ok(self, rows: int) -> None:
        with self.lock:
            self.queries += 1
            self.rows += rows

    def error(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)


def check_point(row, wanted: int) -> None:
    assert tuple(row) == (wanted, wanted % 10, f"row-{wanted}", wanted * 0.5), (row, wanted)


def check_big(rows) -> None:
    assert len(rows) == BIG_ROWS
    assert sum(r[0] for r in rows) == BIG_ROWS * (BIG_ROWS + 1) // 2
    bad = [r for r in rows if r[1] != f"row-{r[0]}"]
    assert not bad, bad[:3]


def check_catalog(rows) -> None:
    names = [r[0] for r in rows]
    assert {"big", "small"} <= set(names), names


def psycopg_client(server, seed: int, rounds: int, tally: Tally) -> None:
    rng = random.Random(seed)
    try:
        with psycopg.connect(server.dsn(), autocommit=True, connect_timeout=30) as conn:
            for round_no in range(rounds):
                for _ in range(3):
                    wanted = rng.randint(1, BIG_ROWS)
                    rows = conn.execute(POINT_SQL.format(wanted)).fetchall()
                    assert len(rows) == 1
                    check_point(rows[0], wanted)
                    tally.ok(1)
                rows = conn.execute(AGG_SQL).fetchall()
                assert [tuple(r) for r in rows] == EXPECTED_GROUPS, rows
                tally.ok(len(rows))
                rows = conn.execute(CATALOG_SQL).fetchall()
                check_catalog(rows)
                tally.ok(len(rows))
                if round_no % BIG_EVERY == 0:
                    rows = conn.execute(BIG_SQL).fetchall()
                    check_big(rows)
                    tally.ok(len(rows))
    except Exception as exc:  # every failure is counted and reported, not lost in a thread
        tally.error(f"psycopg client {seed}: {type(exc).__name__}: {exc}")


async def asyncpg_client(server, seed: int, rounds: int, tally: Tally) -> None:
    rng = random.Random(seed)
    try:
        conn = await asyncpg.connect(**server.conninfo(), timeout=30)
        try:
            for round_no in range(rounds):
                for _ in range(3):
                    wanted = rng.randint(1, BIG_ROWS)
                    # asyncpg prepares: this is the extended protocol with a binary int8 parameter.
                    rows = await conn.fetch("SELECT id, grp, label, amount FROM public.big WHERE id = $1",
                                            wanted)
                    assert len(rows) == 1
                    check_point(rows[0], wanted)
                    tally.ok(1)
                rows = await conn.fetch(AGG_SQL)
                assert [tuple(r) for r in rows] == EXPECTED_GROUPS, rows
                tally.ok(len(rows))
                rows = await conn.fetch(CATALOG_SQL)
                check_catalog(rows)
                tally.ok(len(rows))
                if round_no % BIG_EVERY == 0:
                    rows = await conn.fetch(BIG_SQL)
                    check_big(rows)
                    tally.ok(len(rows))
        finally:
            await conn.close()
    except Exception as exc:
        tally.error(f"asyncpg client {seed}: {type(exc).__name__}: {exc}")


def run_clients(server, rounds: int, tally: Tally) -> float:
    """All 32 clients at once: psycopg ones in threads, asyncpg ones as tasks on one loop in a thread."""
    started = time.monotonic()

    def asyncpg_side() -> None:
        async def all_tasks():
            await asyncio.gather(*(asyncpg_client(server, 1000 + i, rounds, tally)
                                   for i in range(ASYNCPG_CLIENTS)))
        asyncio.run(all_tasks())

    threads = [threading.Thread(target=psycopg_client, args=(server, i, rounds, tally))
               for i in range(PSYCOPG_CLIENTS)]
    threads.append(threading.Thread(target=asyncpg_side))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


@pytest.mark.slow  # about a minute on 2 cores: warm-up plus the measured run
def test_32_concurrent_clients_mixed_workload(server):
    warm = Tally()
    run_clients(server, WARMUP_ROUNDS, warm)  # warm-up: every code path at full concurrency
    assert not warm.errors, warm.errors[:5]
    threads_before = stable(lambda: threads_of(server.pid))
    fds_before = stable(lambda: fds_of(server.pid))
    rss_before = server.rss_kb()["VmRSS"]

    tally = Tally()
    seconds = run_clients(server, ROUNDS, tally)

    threads_after = settle(lambda: threads_of(server.pid), threads_before)
    fds_after = settle(lambda: fds_of(server.pid), fds_before)
    rss_after = server.rss_kb()["VmRSS"]
    clients = PSYCOPG_CLIENTS + ASYNCPG_CLIENTS
    print(f"\nLOAD clients={clients} queries={tally.queries} rows={tally.rows} errors={len(tally.errors)} "
          f"seconds={seconds:.1f} qps={tally.queries / seconds:.0f} rss_after_warmup_kb={rss_before} "
          f"rss_after_kb={rss_after} ratio={rss_after / rss_before:.2f} threads={threads_before}->"
          f"{threads_after} fds={fds_before}->{fds_after}")
    assert not tally.errors, tally.errors[:5]
    assert tally.queries == clients * (ROUNDS * 5 + len(range(0, ROUNDS, BIG_EVERY)))
    assert rss_after <= rss_before * 1.2, f"RSS grew from {rss_before} kB to {rss_after} kB"
    assert threads_after <= threads_before, "server threads leaked"
    assert fds_after <= fds_before, "server file descriptors leaked"
    assert server.alive()


def drop_mid_result(server, how: str) -> None:
    client = wire.RawClient(server.host, server.port, timeout=30)
    try:
        if how == "during-startup":
            client.send(wire.startup({"user": "bemidb", "database": "bemidb"})[:9])
        else:
            assert client.startup()[-1].tag == b"Z"
            if how == "mid-result":
                client.send(wire.query(BIG_SQL))
                for _ in range(50):  # a RowDescription and some DataRows: the server is mid-stream
                    client.read()
            elif how == "mid-extended":
                client.send(wire.parse(BIG_SQL) + wire.bind() + wire.execute(max_rows=1000) + wire.sync())
                client.read()
    finally:
        client.close(abrupt=True)


def test_200_abrupt_drops_leave_the_server_serving(server):
    assert healthy(server.host, server.port) is None
    threads_before = stable(lambda: threads_of(server.pid))
    fds_before = stable(lambda: fds_of(server.pid))
    rss_before = server.rss_kb()["VmRSS"]
    kinds = ["mid-result"] * 150 + ["mid-extended"] * 30 + ["during-startup"] * 10 + ["idle"] * 10
    random.Random(200).shuffle(kinds)
    assert len(kinds) == DROPS
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda how: drop_mid_result(server, how), kinds))
    assert server.alive(), server.log()[-3000:]
    # A new client is served correctly, while and after the dropped sessions wind down.
    assert healthy(server.host, server.port) is None
    with psycopg.connect(server.dsn(), autocommit=True, connect_timeout=30) as conn:
        check_big(conn.execute(BIG_SQL).fetchall())
    threads_after = settle(lambda: threads_of(server.pid), threads_before)
    fds_after = settle(lambda: fds_of(server.pid), fds_before)
    rss_after = server.rss_kb()["VmRSS"]
    print(f"\nLOAD drops={DROPS} threads={threads_before}->{threads_after} fds={fds_before}->{fds_after} "
          f"rss_kb={rss_before}->{rss_after}")
    assert threads_after <= threads_before, "threads of dropped clients never ended"
    assert fds_after <= fds_before, "sockets of dropped clients never closed"
    assert server.alive()
