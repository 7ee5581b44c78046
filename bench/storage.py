"""Storage speed on TPC-H: the files `sync` writes, how fast it extracts, and a primary-key point lookup.

    python -m bench storage [--quick]        (quick: SF0.1, full: SF1)
    python -m bench.storage [--quick] --only b    (the extraction alone)
    python -m bench.storage [--quick] --only c    (c) alone: orders only, loaded, synced, served, looked up

One run, one machine, every figure against a reference measured in the same run:

(a) the 22 queries through bemidb's wire over the files `bemidb sync postgres` wrote, against DuckDB
    in-process over DuckDB-written zstd Parquet of the same data (written by (b)'s peer). Also shown: DuckDB
    in-process over bemidb's files (the file layout alone). Target <= 1.10.
(b) `bemidb sync postgres` of the 8 tables (whole process, default --threads = cores), against DuckDB 1.5.5's
    postgres_scanner copying the same tables to zstd Parquet (whole process, its default threads). Target
    <= 1.00. One uncounted warm-up run of each (page caches), then ROUNDS rounds alternated: the ratio is
    of the medians (best-of also shown). Peak RSS of the sync at --threads 1 and at the default, and its
    time at 1 thread; the CPU of each side's process and of the Postgres backends serving it. Also timed:
    the peer's scanner feeding pyarrow in bemidb's layout (bench/_pgscan.py --bemidb-layout), i.e. what
    pinning duckdb 1.5.5 to read through the peer's own binary-COPY decoder could give at most.
(c) `select * from orders where o_orderkey = $1` through the wire (psycopg, server-side parameters), p50 over
    random existing keys; Postgres with its primary-key index is the reference, and DuckDB in-process over
    the same files (read_parquet, footers cached, the key as a parameter) shows what the engine alone takes.
    Target p50 <= 3 ms.

Answers of (a) and (c) are checked (bemidb vs the reference); timings never decide `ok`.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from bench.sync import timed
from bench.tpch import compare
from bench.tpch.engines import DuckDBEngine, WireEngine, iceberg_parquet_files
from bench.tpch.generate import TABLES, VENV, generate, venv_python
from bench.tpch.load import load, schema_sql
from bench.tpch.runner import queries

REPO = Path(__file__).resolve().parent.parent
PGSCAN = Path(__file__).resolve().parent / "_pgscan.py"
SCANNER_PIN = "duckdb-extension-postgres-scanner==1.5.5"
PEER = "postgres_scanner"
CEILING = "postgres_scanner -> bemidb layout"
LOOKUPS = 300
ROUNDS = 3  # counted rounds of (b), after one warm-up round
POINT_SQL = "select * from orders where o_orderkey = %s"
ROUND_TRIP_SQL = "select %s::int"


def _scanner_python() -> Path:
    """The TPC-H generator's venv (duckdb 1.5.5) with the postgres_scanner wheel added once, and bemidb's own
    pins of what `bemidb.storage.layout` imports (the --bemidb-layout run)."""
    python = venv_python()
    if not list(VENV.glob("lib/python*/site-packages/pyiceberg")):
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", SCANNER_PIN, *_layout_pins()],
                       check=True, capture_output=True)
    return python


def _layout_pins() -> list[str]:
    import tomllib

    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return [pin for pin in pins if pin.split("==")[0] in ("pyarrow", "pyiceberg", "pg8000")]


def _libpq_dsn(cluster, database: str) -> str:
    return (f"host=127.0.0.1 port={cluster.port} dbname={database} user={cluster.user} "
            f"password={cluster.password}")


def _sync_env(data_dir: Path, url: str, threads: int | None) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BEMIDB_", "AWS_", "SOURCE_", "CATALOG_", "DESTINATION_"))}
    env.update(PYTHONPATH=str(REPO), BEMIDB_DATA_DIR=str(data_dir), SOURCE_POSTGRES_DATABASE_URL=url)
    if threads:
        env["SOURCE_POSTGRES_THREADS"] = str(threads)
    return env


def _postgres_cpu(cluster) -> float:
    """CPU seconds (user + system) of the cluster's processes so far: the postmaster's reaped children (a
    run's backends exit with it) plus the live ones. The difference over a run is what Postgres spent on it."""
    tick = os.sysconf("SC_CLK_TCK")
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])

    def fields(pid: int) -> list[str]:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()

    total = sum(int(x) for x in fields(postmaster)[10:14])  # utime, stime, cutime, cstime
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = fields(int(entry.name))
            except OSError:
                continue
            if int(stat[1]) == postmaster:
                total += int(stat[11]) + int(stat[12])
    return total / tick


def _extract(cluster, database: str, url: str, work: Path, log) -> dict:
    """(b): the peer, the sync at default threads and at 1 thread, alternated: one warm-up round (not counted:
    Postgres's and the OS's caches), then ROUNDS rounds; median and best wall time of each."""
    python = _scanner_python()
    cores = os.cpu_count() or 1
    runs = {PEER: [], f"sync --threads {cores}": [], "sync --threads 1": [], CEILING: []}
    dirs = {}
    for round_ in range(ROUNDS + 1):
        for name in runs:
            if round_ == 0 and name in ("sync --threads 1", CEILING):
                continue  # the warm-up needs one reader of each kind
            out = work / "".join(c if c.isalnum() else "_" for c in name)
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            cluster.execute(database, "CHECKPOINT")
            time.sleep(0.2)  # the CHECKPOINT's backend reaped
            server_before = _postgres_cpu(cluster)
            if name in (PEER, CEILING):
                layout = ["--bemidb-layout"] if name == CEILING else []
                cmd = [str(python), str(PGSCAN), *layout, _libpq_dsn(cluster, database), str(out), *TABLES]
                wall, rss, _err, cpu = timed(cmd, env={**os.environ, "PYTHONPATH": str(REPO) if layout else ""})
            else:
                threads = int(name.rsplit(" ", 1)[1])
                cmd = [sys.executable, "-m", "bemidb", "sync", "postgres"]
                wall, rss, _err, cpu = timed(cmd, env=_sync_env(out, url, threads))
            time.sleep(0.2)  # its backends reaped
            server_cpu = _postgres_cpu(cluster) - server_before
            if round_:
                runs[name].append({"wall_s": wall, "peak_rss": rss, "cpu_s": cpu, "postgres_cpu_s": server_cpu})
            dirs[name] = out
            log(f"  {'warm-up ' if not round_ else ''}{name}: {wall:.2f} s, peak RSS {rss / 2**20:.0f} MB, "
                f"CPU {cpu:.1f} s, Postgres CPU {server_cpu:.1f} s, load {os.getloadavg()[0]:.1f}")
    best = {name: min(r, key=lambda x: x["wall_s"]) for name, r in runs.items()}
    median = {name: {"wall_s": statistics.median(x["wall_s"] for x in r),
                     "peak_rss": max(x["peak_rss"] for x in r), "cpu_s": statistics.median(x["cpu_s"] for x in r),
                     "postgres_cpu_s": statistics.median(x["postgres_cpu_s"] for x in r)}
              for name, r in runs.items()}
    return {"best": best, "median": median, "runs": runs, "dirs": dirs, "cores": cores}


def _time_queries(engines: dict, repeat: int) -> dict:
    """Best of `repeat` per query and engine, engines alternated within each round."""
    sqls = dict(queries())
    best: dict[str, dict[str, object]] = {name: {} for name in engines}
    for _ in range(repeat):
        for query, sql in sqls.items():
            for name, engine in engines.items():
                outcome = engine.run(sql)
                previous = best[name].get(query)
                if previous is None or (outcome.ok and outcome.seconds < previous.seconds):
                    best[name][query] = outcome
    return best


def _point_lookups(dsn: str, keys: list[int]) -> tuple[float, list]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(POINT_SQL, (keys[0],)).fetchall()  # warm: footers cached, statement prepared
        seconds, answers = [], []
        for key in keys:
            started = time.perf_counter()
            rows = conn.execute(POINT_SQL, (key,)).fetchall()
            seconds.append(time.perf_counter() - started)
            answers.append(rows)
    return statistics.median(seconds), answers


def _round_trips(dsn: str, keys: list[int]) -> float:
    """p50 of `select $1::int` through the same wire: what any query costs before DuckDB reads a file."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(ROUND_TRIP_SQL, (keys[0],)).fetchall()
        seconds = []
        for key in keys:
            started = time.perf_counter()
            conn.execute(ROUND_TRIP_SQL, (key,)).fetchall()
            seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def _lookups(server_dsn: str, source_url: str, data_dir: Path) -> dict:
    """(c): p50 through the wire, in Postgres, in DuckDB in-process over the same files; answers compared."""
    with psycopg.connect(source_url, autocommit=True) as conn:
        all_keys = [r[0] for r in conn.execute("SELECT o_orderkey FROM orders").fetchall()]
    keys = random.Random(17).sample(all_keys, LOOKUPS)
    wire_p50, wire_rows = _point_lookups(server_dsn, keys)
    pg_p50, pg_rows = _point_lookups(source_url, keys)
    duck_p50 = _duckdb_lookups(iceberg_parquet_files(data_dir)["orders"], keys)
    return {"wire": wire_p50, "postgres": pg_p50, "duckdb": duck_p50, "round_trip": _round_trips(server_dsn, keys),
            "match": [compare.normalise(a) for a in wire_rows] == [compare.normalise(b) for b in pg_rows],
            "load_average": os.getloadavg()[0]}


def _lookup_row(lookups: dict) -> dict:
    return {"metric": "PK point lookup p50, wire", "value": lookups["wire"] * 1000, "unit": "ms",
            "reference": f"Postgres (index) {lookups['postgres'] * 1000:.2f} ms; DuckDB in-process over the same "
                         f"files {lookups['duckdb'] * 1000:.2f} ms; select $1::int through the wire "
                         f"{lookups['round_trip'] * 1000:.2f} ms", "target": "<= 3 ms", "ok": lookups["match"]}


def run_lookups_only(sf: float, log=print) -> dict:
    """(c) alone (`--only c`): only orders loaded into Postgres, synced by `bemidb sync postgres` (default
    threads), served, looked up. Minutes less than the whole run; the same files as the whole run's sync."""
    from tests.support.postgres import PostgresCluster, find_bin_dir
    from tests.support.server import start_server

    csv_dir = generate(sf)
    cluster = PostgresCluster(find_bin_dir()).start()
    work = Path(tempfile.mkdtemp(prefix="bemidb-storage-bench-"))
    server = None
    try:
        url = cluster.create_database("tpch")
        log(f"TPC-H SF{sf:g}: loading orders into Postgres ...")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(schema_sql(char_as_varchar=True))
            with conn.cursor() as cur, cur.copy("COPY orders FROM STDIN WITH (FORMAT csv, DELIMITER '|')") as copy, \
                    open(csv_dir / "orders.csv", "rb") as source:
                while chunk := source.read(1 << 20):
                    copy.write(chunk)
            conn.execute("VACUUM ANALYZE orders")
        log("bemidb sync postgres ...")
        subprocess.run([sys.executable, "-m", "bemidb", "sync", "postgres"], env=_sync_env(work, url, None),
                       check=True, capture_output=True)
        server = start_server(work, log_level="INFO", timeout=120)
        log(f"(c) point lookups, {LOOKUPS} random keys ...")
        lookups = _lookups(server.dsn(), url, work)
    finally:
        if server is not None:
            server.stop()
        cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)
    details = {"sf": sf, "point_lookup_p50_ms": {k: lookups[k] * 1000 for k in ("wire", "postgres", "duckdb",
                                                                                  "round_trip")},
               "load_average": lookups["load_average"]}
    return {"name": "storage", "ok": lookups["match"], "summary": [_lookup_row(lookups)], "details": details}


def _duckdb_lookups(files: list[str], keys: list[int]) -> float:
    """p50 of the same lookup in DuckDB in-process over the same files: what the engine alone takes."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET parquet_metadata_cache = true")  # as the server does
    con.execute(f"CREATE VIEW orders AS SELECT * FROM read_parquet({files!r})")
    sql = POINT_SQL.replace("%s", "$1")
    con.execute(sql, [keys[0]]).fetchall()
    seconds = []
    for key in keys:
        started = time.perf_counter()
        con.execute(sql, [key]).fetchall()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def run(sf: float, repeat: int, log=print, only: str | None = None) -> dict:
    from tests.support.postgres import PostgresCluster, find_bin_dir
    from tests.support.server import start_server

    csv_dir = generate(sf)
    cluster = PostgresCluster(find_bin_dir()).start()
    work = Path(tempfile.mkdtemp(prefix="bemidb-storage-bench-"))
    server = wire = None
    engines: dict = {}
    try:
        database = "tpch"
        url = cluster.create_database(database)
        log(f"TPC-H SF{sf:g}: loading Postgres ...")
        load(url, csv_dir, char_as_varchar=True)
        log("(b) extraction: DuckDB postgres_scanner vs bemidb sync ...")
        extraction = _extract(cluster, database, url, work, log)
        cores = extraction["cores"]
        if only == "b":
            return _extraction_result(sf, extraction)
        data_dir = extraction["dirs"][f"sync --threads {cores}"]
        reference_files = {t: [str(extraction["dirs"][PEER] / f"{t}.parquet")] for t in TABLES}

        log(f"(a) 22 queries, best of {repeat} ...")
        server = start_server(data_dir, log_level="INFO", timeout=120)
        wire = WireEngine(server.dsn())
        engines = {"wire": wire, "duckdb_own_files": DuckDBEngine(reference_files),
                   "duckdb_bemidb_files": DuckDBEngine(iceberg_parquet_files(data_dir))}
        best = _time_queries(engines, repeat)
        mismatches = [q for q, outcome in best["wire"].items()
                      if not outcome.ok or not best["duckdb_own_files"][q].ok
                      or compare.difference(outcome.rows, best["duckdb_own_files"][q].rows) is not None]
        totals = {name: sum(o.seconds for o in per.values() if o.ok) for name, per in best.items()}

        log(f"(c) point lookups, {LOOKUPS} random keys ...")
        lookups = _lookups(server.dsn(), url, data_dir)
    finally:
        for engine in engines.values():
            engine.close()
        if server is not None:
            server.stop()
        cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)

    q1 = {name: per["q01"].seconds for name, per in best.items()}
    summary = [
        {"metric": f"TPC-H SF{sf:g} 22 queries, wire", "value": totals["wire"], "unit": "s",
         "reference": f"DuckDB over DuckDB-written Parquet {totals['duckdb_own_files']:.2f} s",
         "ratio": totals["wire"] / totals["duckdb_own_files"], "target": "<= 1.10", "ok": not mismatches},
        {"metric": "  same, DuckDB in-process over bemidb's files", "value": totals["duckdb_bemidb_files"],
         "unit": "s", "ratio": totals["duckdb_bemidb_files"] / totals["duckdb_own_files"],
         "reference": f"Q1 {q1['duckdb_bemidb_files']:.3f} s vs {q1['duckdb_own_files']:.3f} s"},
        *_extraction_rows(extraction),
        _lookup_row(lookups),
    ]
    details = {"sf": sf, "repeat": repeat, "cores": cores, "query_totals_s": totals, "q1_s": q1,
               "per_query_s": {name: {q: o.seconds for q, o in per.items()} for name, per in best.items()},
               "mismatches": mismatches, "extraction_runs": extraction["runs"],
               "point_lookup_p50_ms": {k: lookups[k] * 1000 for k in ("wire", "postgres", "duckdb", "round_trip")},
               "lookup_load_average": lookups["load_average"]}
    return {"name": "storage", "ok": not mismatches and lookups["match"], "summary": summary, "details": details}


def _extraction_rows(extraction: dict) -> list[dict]:
    cores, ext, ext_best = extraction["cores"], extraction["median"], extraction["best"]
    peer, sync_n, sync_1 = ext[PEER], ext[f"sync --threads {cores}"], ext["sync --threads 1"]
    ceiling = ext[CEILING]
    best_ratio = ext_best[f"sync --threads {cores}"]["wall_s"] / ext_best[PEER]["wall_s"]

    def total(run: dict) -> float:
        return run["cpu_s"] + run["postgres_cpu_s"]

    return [
        {"metric": f"sync postgres, 8 tables, --threads {cores} (median of {ROUNDS})", "value": sync_n["wall_s"],
         "unit": "s", "reference": f"DuckDB postgres_scanner to Parquet {peer['wall_s']:.2f} s; "
                                   f"best of {ROUNDS} each: {best_ratio:.2f}",
         "ratio": sync_n["wall_s"] / peer["wall_s"], "target": "<= 1.00"},
        {"metric": "  same, --threads 1", "value": sync_1["wall_s"], "unit": "s",
         "ratio": sync_1["wall_s"] / peer["wall_s"]},
        {"metric": f"  CPU, process + Postgres, --threads {cores}", "value": total(sync_n), "unit": "s",
         "reference": f"postgres_scanner {peer['cpu_s']:.1f} + {peer['postgres_cpu_s']:.1f} s; sync "
                      f"{sync_n['cpu_s']:.1f} + {sync_n['postgres_cpu_s']:.1f} s",
         "ratio": total(sync_n) / total(peer)},
        {"metric": "  the peer's decoder into bemidb's layout (no Iceberg)", "value": ceiling["wall_s"], "unit": "s",
         "reference": f"CPU {ceiling['cpu_s']:.1f} + {ceiling['postgres_cpu_s']:.1f} s",
         "ratio": ceiling["wall_s"] / peer["wall_s"]},
        {"metric": f"sync peak RSS, --threads {cores}", "value": sync_n["peak_rss"] / 2**20, "unit": "MB",
         "reference": f"--threads 1: {sync_1['peak_rss'] / 2**20:.0f} MB",
         "ratio": sync_n["peak_rss"] / sync_1["peak_rss"]},
    ]


def _extraction_result(sf: float, extraction: dict) -> dict:
    return {"name": "storage", "ok": True, "summary": _extraction_rows(extraction),
            "details": {"sf": sf, "cores": extraction["cores"], "extraction_runs": extraction["runs"]}}


def main(quick: bool = False, only: str | None = None) -> dict:
    return run(0.1 if quick else 1.0, 1 if quick else 3, log=lambda m: print(m, file=sys.stderr, flush=True),
               only=only)


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m bench.storage", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="SF0.1 instead of SF1")
    parser.add_argument("--only", choices=["b", "c"],
                        help="b: the extraction alone; c: the point lookups alone (orders only: minutes less)")
    args = parser.parse_args()
    if args.only == "c":
        result = run_lookups_only(0.1 if args.quick else 1.0, log=lambda m: print(m, file=sys.stderr, flush=True))
        for row in result["summary"]:
            print(row)
        print(json.dumps(result["details"]))
        sys.exit(0 if result["ok"] else 1)
    result = main(args.quick, only=args.only)
    for row in result["summary"]:
        print(row)
    print(json.dumps(result["details"].get("query_totals_s") or result["details"]["extraction_runs"]))
