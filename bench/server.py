"""The query server end to end, through real clients, against Postgres itself measured in the same run.

    python -m bench server [--quick]       (or python -m bench.server [--quick])

Prints:
  - SELECT 1 round trip p50/p99 over 10k queries (psycopg, simple protocol), bemidb and Postgres;
  - time to stream a 1M-row, 6-column result (bigint, double, text, timestamptz, numeric(12,2), boolean) to
    psycopg, bemidb vs Postgres serving the same rows (target <= 1.5x Postgres's time);
  - 32 concurrent clients running a mixed workload (point lookups, an aggregate, 1,000-row range results) for
    30 s: queries/s, errors, server CPU used, server RSS at start and end. The 32 clients are threads of this
    one Python process: psycopg's row parsing there is part of what limits queries/s.
Correctness is checked (every streamed row counted and summed, workload answers compared); timings never fail.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bemidb import config  # noqa: E402
from bemidb.storage.catalog import open_catalog  # noqa: E402
from bemidb.storage.writer import write_table  # noqa: E402
from tests.support.postgres import PostgresCluster, find_bin_dir  # noqa: E402
from tests.support.server import start_server  # noqa: E402

COLUMNS = [("id", pa.int64(), "bigint"), ("price", pa.float64(), "double precision"),
           ("name", pa.string(), "text"), ("created_at", pa.timestamp("us", tz="UTC"), "timestamp with time zone"),
           ("amount", pa.decimal128(12, 2), "numeric(12,2)"), ("active", pa.bool_(), "boolean")]
SCHEMA = pa.schema([pa.field(n, t, metadata={b"pg_type": p.encode()}) for n, t, p in COLUMNS])
PG_DDL = ("CREATE TABLE public.wide (id bigint, price double precision, name text, created_at timestamptz, "
          "amount numeric(12,2), active boolean)")


def _batches(rows: int, size: int = 100_000):
    import numpy as np

    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    for start in range(0, rows, size):
        i = np.arange(start, min(rows, start + size), dtype=np.int64)
        yield pa.RecordBatch.from_arrays([
            pa.array(i), pa.array(i * 1.5), pa.array([f"customer {v}" for v in i.tolist()]),
            pa.array((i * 1_000_000 + int(base.timestamp() * 1e6)).astype("datetime64[us]"), pa.timestamp("us", tz="UTC")),
            pa.array([Decimal(v) / 100 for v in i.tolist()], pa.decimal128(12, 2)), pa.array(i % 2 == 0),
        ], schema=SCHEMA)


def _load(data_dir: Path, pg: PostgresCluster, rows: int) -> None:
    catalog = open_catalog(config.resolve(None, config.STORAGE, env={"BEMIDB_DATA_DIR": str(data_dir)}))
    write_table(catalog, ("public", "wide"), SCHEMA, _batches(rows))
    import psycopg

    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS public.wide")
        conn.execute(PG_DDL)
        with conn.cursor().copy("COPY public.wide FROM STDIN") as copy:
            for batch in _batches(rows):
                for row in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                    copy.write_row(row)
        conn.execute("VACUUM ANALYZE public.wide")


def _round_trips(dsn: str, n: int) -> tuple[float, float]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(50):
            conn.execute("SELECT 1").fetchone()
        times = []
        for _ in range(n):
            started = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            times.append(time.perf_counter() - started)
    times.sort()
    return times[len(times) // 2] * 1e6, times[int(len(times) * 0.99)] * 1e6


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (the server's own CPU, whatever else the machine is doing)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stream(dsn: str, server_pid: int | None) -> tuple[float, float, int, int]:
    """(wall seconds, server CPU seconds, rows, sum of ids) to receive the whole wide table with psycopg's row
    streaming (text format). server_pid None: Postgres, whose backend is the connection's backend_pid."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        pid = server_pid or conn.info.backend_pid
        cpu = _cpu_seconds(pid)
        started = time.perf_counter()
        count = total = 0
        with conn.cursor() as cur:
            for row in cur.stream("SELECT * FROM public.wide"):
                count += 1
                total += row[0]
        return time.perf_counter() - started, _cpu_seconds(pid) - cpu, count, total


def _stream_interleaved(targets: dict[str, tuple[str, int | None]], rows: int, repeat: int) -> dict:
    """Best wall time and CPU of each target over `repeat` rounds, alternating them so that both see the
    same machine load."""
    best = {name: (float("inf"), float("inf")) for name in targets}
    ok = True
    for _ in range(repeat):
        for name, (dsn, pid) in targets.items():
            wall, cpu, count, total = _stream(dsn, pid)
            ok &= count == rows and total == rows * (rows - 1) // 2
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return {"best": best, "ok": ok}


def _workload(dsn: str, clients: int, seconds: float, rows: int) -> dict:
    import psycopg

    stop = time.monotonic() + seconds
    counts = [0] * clients
    errors: list[str] = []
    wrong = [0]

    def client(k: int) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                i = 0
                while time.monotonic() < stop:
                    i += 1
                    kind = (i + k) % 3
                    if kind == 0:
                        key = (i * 7919 + k) % rows
                        got = conn.execute("SELECT id, name FROM public.wide WHERE id = %s", [key]).fetchone()
                        wrong[0] += got != (key, f"customer {key}")
                    elif kind == 1:
                        got = conn.execute("SELECT count(*), sum(id) FROM public.wide WHERE active").fetchone()
                        half = rows // 2 + rows % 2
                        wrong[0] += got != (half, sum(range(0, rows, 2)))
                    else:  # a result of 1,000 rows (more would measure the bench client's own parsing)
                        start = (i * 104_729 + k) % max(1, rows - 1_000)
                        got = conn.execute("SELECT * FROM public.wide WHERE id >= %s AND id < %s",
                                           [start, start + 1_000]).fetchall()
                        wrong[0] += len(got) != 1_000 or got[0][0] != start
                    counts[k] += 1
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {"queries": sum(counts), "qps": sum(counts) / elapsed, "errors": len(errors), "wrong": wrong[0],
            "first_error": errors[0] if errors else None}


def main(quick: bool = False) -> dict:
    rows = 200_000 if quick else 1_000_000
    round_trips = 1_000 if quick else 10_000
    load_seconds = 5 if quick else 30
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL server binaries not found")
    pg = PostgresCluster(bin_dir).start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-server-"))
    server = None
    try:
        _load(tmp, pg, rows)
        server = start_server(tmp, log_level="WARN")
        bemi_dsn = server.dsn("bench")
        pg_dsn = pg.url()
        p50, p99 = _round_trips(bemi_dsn, round_trips)
        pg_p50, pg_p99 = _round_trips(pg_dsn, round_trips)
        streams = _stream_interleaved({"bemidb": (bemi_dsn, server.pid), "postgres": (pg_dsn, None)}, rows,
                                      1 if quick else 3)
        (bemi_stream, bemi_cpu), (pg_stream, pg_cpu) = streams["best"]["bemidb"], streams["best"]["postgres"]
        bemi_ok = pg_ok = streams["ok"]
        rss_start = server.rss_kb()["VmRSS"]
        cpu_start = _cpu_seconds(server.pid)
        load = _workload(bemi_dsn, 32, load_seconds, rows)
        load["server_cpu_s"] = _cpu_seconds(server.pid) - cpu_start
        rss_end = server.rss_kb()["VmRSS"]
        alive = server.alive()
    finally:
        if server is not None:
            server.stop()
        pg.destroy()
    ratio = bemi_stream / pg_stream
    ok = bemi_ok and pg_ok and load["errors"] == 0 and load["wrong"] == 0 and alive
    summary = [
        {"metric": f"SELECT 1 p50 ({round_trips} queries)", "value": p50, "unit": "µs",
         "reference": f"Postgres {pg_p50:.0f} µs", "ratio": p50 / pg_p50},
        {"metric": "SELECT 1 p99", "value": p99, "unit": "µs", "reference": f"Postgres {pg_p99:.0f} µs",
         "ratio": p99 / pg_p99},
        {"metric": f"stream {rows:,} rows x 6 cols to psycopg", "value": bemi_stream, "unit": "s",
         "reference": f"Postgres {pg_stream:.2f} s", "ratio": ratio, "target": "<= 1.5", "ok": bemi_ok},
        {"metric": "  server CPU for that stream", "value": bemi_cpu, "unit": "s",
         "reference": f"Postgres backend {pg_cpu:.2f} s", "ratio": bemi_cpu / pg_cpu if pg_cpu else None},
        {"metric": f"32 clients x {load_seconds}s mixed", "value": load["qps"], "unit": "queries/s",
         "reference": f"{load['queries']} queries, {load['errors']} errors, {load['wrong']} wrong, server CPU "
                      f"{load['server_cpu_s']:.0f} s",
         "ok": load["errors"] == 0 and load["wrong"] == 0},
        {"metric": "server RSS start -> end of load", "value": rss_end / 1024, "unit": "MB",
         "reference": f"start {rss_start / 1024:.0f} MB", "ratio": rss_end / rss_start},
    ]
    return {"ok": ok, "summary": summary,
            "details": {"rows": rows, "p50_us": p50, "p99_us": p99, "pg_p50_us": pg_p50, "pg_p99_us": pg_p99,
                        "stream_s": bemi_stream, "pg_stream_s": pg_stream, "stream_cpu_s": bemi_cpu,
                        "pg_stream_cpu_s": pg_cpu, "load": load,
                        "rss_start_kb": rss_start, "rss_end_kb": rss_end}}


if __name__ == "__main__":  # the same as `python -m bench server [--quick]`: one summary table for all
    from bench.__main__ import main as run_benchmarks

    sys.exit(run_benchmarks(["server", *sys.argv[1:]]))
