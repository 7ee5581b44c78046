"""One TPC-H run: generate -> load Postgres -> `bemidb sync postgres` -> `bemidb serve` -> time 22 queries
three ways -> check bemidb's answers against Postgres -> per-query table, totals, ratios.

    python -m bench.tpch [--sf 1] [--repeat 3] [--no-postgres] [--keep]

(1) bemidb's wire with psycopg, (2) DuckDB in-process over the same Parquet files, (3) Postgres with a 300 s
statement_timeout. (1) and (2) take the best of --repeat runs, run alternately so drift hits both alike;
(3) runs once. Correctness reference: Postgres's answer, or DuckDB's when Postgres timed out or was skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.tpch import compare
from bench.tpch.engines import (
    POSTGRES_TIMEOUT_S,
    DuckDBEngine,
    Outcome,
    PostgresEngine,
    WireEngine,
    iceberg_parquet_files,
)
from bench.tpch.generate import RESULTS, generate
from bench.tpch.load import load

REPO = Path(__file__).resolve().parent.parent.parent
QUERIES = Path(__file__).resolve().parent / "queries"
TARGET_WIRE_OVER_DUCKDB = 1.10
TARGET_POSTGRES_OVER_WIRE = 50.0

console = Console(stderr=True, highlight=False)


@dataclass
class QueryTiming:
    name: str
    wire: Outcome | None = None  # set by the timing loop before anything reads it
    duckdb: Outcome | None = None
    postgres: Outcome | None = None
    check: str = ""  # "ok", "ok vs duckdb", or what differs
    matched: bool = False


def queries(only: list[str] | None = None) -> list[tuple[str, str]]:
    files = sorted(QUERIES.glob("q*.sql"))
    return [(f.stem, f.read_text()) for f in files if not only or f.stem in only]


def _bemidb(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """`python -m bemidb ARGS` as a real process with a clean bemidb environment plus `env`."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("BEMIDB_", "AWS_", "SOURCE_", "CATALOG_", "DESTINATION_"))}
    clean.update(env, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "bemidb", *args], env=clean, capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def _best(previous: Outcome | None, new: Outcome) -> Outcome:
    if previous is None or (new.ok and (not previous.ok or new.seconds < previous.seconds)):
        return new
    return previous


def _time_wire_and_duckdb(timings: list[QueryTiming], sqls: dict[str, str], wire: WireEngine,
                          local: DuckDBEngine, repeat: int) -> None:
    for timing in timings:
        sql = sqls[timing.name]
        for _ in range(repeat):
            timing.duckdb = _best(timing.duckdb, local.run(sql))
            timing.wire = _best(timing.wire, wire.run(sql))
            if not timing.wire.ok:  # an error will not go away on a second try
                break
        console.print(f"  {timing.name}: wire {_s(timing.wire)}  duckdb {_s(timing.duckdb)}")


def _check(timing: QueryTiming) -> None:
    if not timing.wire.ok:
        timing.check = f"bemidb error: {timing.wire.error}"
        return
    if timing.postgres is not None and timing.postgres.ok:
        reference, label = timing.postgres.rows, "ok"
    elif timing.duckdb.ok:
        reference, label = timing.duckdb.rows, "ok vs duckdb"
    else:
        timing.check = "no reference answer"
        return
    diff = compare.difference(timing.wire.rows, reference)
    timing.matched = diff is None
    timing.check = label if diff is None else f"MISMATCH: {diff}"


def _s(outcome: Outcome | None) -> str:
    if outcome is None:
        return "-"
    if outcome.timed_out:
        return f"timeout {POSTGRES_TIMEOUT_S}s"
    if outcome.error:
        return "error"
    return f"{outcome.seconds:.3f}" if outcome.seconds is not None else "-"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _fmt_ratio(value: float | None, lower_bound: bool = False) -> str:
    return "-" if value is None else (">=" if lower_bound else "") + f"{value:.2f}"


def _totals(timings: list[QueryTiming]) -> dict:
    both = [t for t in timings if t.wire.ok and t.duckdb.ok]
    wire = sum(t.wire.seconds for t in both)
    duck = sum(t.duckdb.seconds for t in both)
    with_pg = [t for t in timings if t.wire.ok and t.postgres is not None and (t.postgres.ok or t.postgres.timed_out)]
    # A timed-out Postgres query counts as its timeout: the Postgres total is then a lower bound.
    pg = sum(t.postgres.seconds if t.postgres.ok else POSTGRES_TIMEOUT_S for t in with_pg)
    return {
        "queries_timed": len(both),
        "wire_s": wire, "duckdb_s": duck, "wire_over_duckdb": _ratio(wire, duck),
        "postgres_s": pg if with_pg else None, "postgres_timeouts": sum(t.postgres.timed_out for t in with_pg),
        "postgres_over_wire": _ratio(pg, sum(t.wire.seconds for t in with_pg)) if with_pg else None,
        "matched": sum(t.matched for t in timings), "queries": len(timings),
    }


def print_table(timings: list[QueryTiming], totals: dict, sf: float, out: Console) -> None:
    table = Table(title=f"TPC-H SF{sf:g}: seconds per query (best of the repeats for (1) and (2))")
    for heading in ("query", "(1) bemidb wire", "(2) duckdb in-process", "(3) postgres", "(1)/(2)", "(3)/(1)",
                    "rows", "result check"):
        table.add_column(heading, justify="left" if heading in ("query", "result check") else "right")
    for t in timings:
        pg_time = (POSTGRES_TIMEOUT_S if t.postgres and t.postgres.timed_out
                   else t.postgres.seconds if t.postgres and t.postgres.ok else None)
        table.add_row(
            t.name, _s(t.wire), _s(t.duckdb), _s(t.postgres),
            _fmt_ratio(_ratio(t.wire.seconds, t.duckdb.seconds) if t.wire.ok and t.duckdb.ok else None),
            _fmt_ratio(_ratio(pg_time, t.wire.seconds) if t.wire.ok else None,
                       bool(t.postgres and t.postgres.timed_out)),
            str(len(t.wire.rows)) if t.wire.ok else "-", t.check)
    pg_total = totals["postgres_s"]
    lower = bool(totals["postgres_timeouts"])
    table.add_section()
    table.add_row("total", f"{totals['wire_s']:.3f}", f"{totals['duckdb_s']:.3f}",
                  "-" if pg_total is None else (">=" if lower else "") + f"{pg_total:.1f}",
                  _fmt_ratio(totals["wire_over_duckdb"]), _fmt_ratio(totals["postgres_over_wire"], lower),
                  "", f"{totals['matched']}/{totals['queries']} match")
    out.print(table)
    out.print(f"targets: (1)/(2) <= {TARGET_WIRE_OVER_DUCKDB} at SF1, (3)/(1) >= {TARGET_POSTGRES_OVER_WIRE:g}; "
              f"totals over the {totals['queries_timed']} queries that ran on both (1) and (2); "
              f"Postgres timeouts counted as {POSTGRES_TIMEOUT_S} s (a lower bound, marked >=)")


def run(sf: float = 1.0, repeat: int = 3, postgres: bool = True, only: list[str] | None = None,
        keep: bool = False, cluster=None, char_as_varchar: bool = False) -> dict:
    """The whole pipeline; returns the result dict (see bench/README.md) and prints the per-query table.

    cluster: a running tests.support.postgres.PostgresCluster to use (tests share theirs); by default a
    throwaway one is started and destroyed.
    """
    from tests.support.postgres import PostgresCluster, find_bin_dir
    from tests.support.server import start_server

    stages: dict[str, float] = {}
    started = time.perf_counter()
    csv_dir = generate(sf)
    stages["generate_s"] = time.perf_counter() - started
    own_cluster = cluster is None
    if own_cluster:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found")
        cluster = PostgresCluster(bin_dir).start()
    work = Path(tempfile.mkdtemp(prefix="bemidb-tpch-"))
    database = f"bench_tpch_{os.getpid()}_{int(time.time())}"
    server = wire = local = pg = None
    try:
        url = cluster.create_database(database)
        console.print(f"TPC-H SF{sf:g}: loading Postgres ...")
        started = time.perf_counter()
        counts = load(url, csv_dir, char_as_varchar)
        stages["load_postgres_s"] = time.perf_counter() - started

        console.print("bemidb sync postgres ...")
        data_dir = work / "bemidb-data"
        started = time.perf_counter()
        synced = _bemidb("sync", "postgres", env={"BEMIDB_DATA_DIR": str(data_dir),
                                                  "SOURCE_POSTGRES_DATABASE_URL": url}, timeout=3600)
        stages["sync_s"] = time.perf_counter() - started
        if synced.returncode != 0:
            raise RuntimeError(f"bemidb sync postgres exited {synced.returncode}: {synced.stderr.strip()[-2000:]}")

        server = start_server(data_dir, log_level="INFO", timeout=120)
        wire = WireEngine(server.dsn())
        local = DuckDBEngine(iceberg_parquet_files(data_dir))
        sqls = dict(queries(only))
        timings = [QueryTiming(name) for name in sqls]
        console.print(f"timing {len(timings)} queries: (1) wire and (2) duckdb in-process, best of {repeat} ...")
        _time_wire_and_duckdb(timings, sqls, wire, local, repeat)
        if postgres:
            console.print(f"timing (3) postgres, statement_timeout {POSTGRES_TIMEOUT_S}s ...")
            pg = PostgresEngine(url)
            for timing in timings:
                timing.postgres = pg.run(sqls[timing.name])
                console.print(f"  {timing.name}: postgres {_s(timing.postgres)}")
        for timing in timings:
            _check(timing)
        if not server.alive():
            raise RuntimeError(f"bemidb serve died during the run:\n{server.log()[-2000:]}")
    finally:
        for engine in (wire, local, pg):
            if engine is not None:
                engine.close()
        if server is not None:
            server.stop()
        if own_cluster:
            cluster.destroy()
        else:
            cluster.execute("postgres", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        if keep:
            console.print(f"kept the bemidb data dir: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    totals = _totals(timings)
    print_table(timings, totals, sf, Console(highlight=False, width=None if sys.stdout.isatty() else 140))
    result = _result(sf, repeat, counts, stages, timings, totals)
    result["details"]["schema"] = "dss.ddl, char(n) as varchar(n)" if char_as_varchar else "dss.ddl"
    _save(result)
    return result


def _result(sf, repeat, counts, stages, timings, totals) -> dict:
    ok = totals["matched"] == totals["queries"]
    summary = [
        {"metric": f"TPC-H SF{sf:g} results match Postgres", "value": f"{totals['matched']}/{totals['queries']}",
         "ok": ok},
        {"metric": f"TPC-H SF{sf:g} total (1) bemidb wire", "value": round(totals["wire_s"], 3), "unit": "s"},
        {"metric": f"TPC-H SF{sf:g} total (2) duckdb in-process", "value": round(totals["duckdb_s"], 3),
         "unit": "s"},
        {"metric": f"TPC-H SF{sf:g} (1)/(2)", "value": totals["wire_over_duckdb"], "unit": "x",
         "target": f"<= {TARGET_WIRE_OVER_DUCKDB} at SF1"},
    ]
    if totals["postgres_s"] is not None:
        lower = ">=" if totals["postgres_timeouts"] else ""
        summary += [
            {"metric": f"TPC-H SF{sf:g} total (3) postgres"
                       + (f" ({totals['postgres_timeouts']} timeouts)" if lower else ""),
             "value": f"{lower}{totals['postgres_s']:.1f}", "unit": "s"},
            {"metric": f"TPC-H SF{sf:g} (3)/(1)", "value": totals["postgres_over_wire"], "unit": "x",
             "target": f">= {TARGET_POSTGRES_OVER_WIRE:g}"},
        ]
    summary.append({"metric": f"TPC-H SF{sf:g} bemidb sync postgres", "value": round(stages["sync_s"], 2),
                    "unit": "s", "reference": f"Postgres COPY load {stages['load_postgres_s']:.2f} s"})
    per_query = [{"query": t.name, "wire_s": t.wire.seconds if t.wire.ok else None,
                  "wire_error": t.wire.error, "duckdb_s": t.duckdb.seconds if t.duckdb.ok else None,
                  "duckdb_error": t.duckdb.error,
                  "postgres_s": t.postgres.seconds if t.postgres and t.postgres.ok else None,
                  "postgres_timed_out": bool(t.postgres and t.postgres.timed_out),
                  "postgres_error": t.postgres.error if t.postgres else None,
                  "rows": len(t.wire.rows) if t.wire.ok else None, "check": t.check} for t in timings]
    return {"name": "tpch", "ok": ok, "summary": summary,
            "details": {"sf": sf, "repeat": repeat, "rows_loaded": counts, **stages, "totals": totals,
                        "queries": per_query}}


def _save(result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"tpch-sf{result['details']['sf']:g}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    console.print(f"results saved to {path}")
    return path


def main(quick: bool = False) -> dict:
    """The `python -m bench all` entry: quick = SF0.1, one run each; else SF1, best of 3."""
    return run(sf=0.1 if quick else 1.0, repeat=1 if quick else 3)


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tpch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sf", type=float, default=1.0, help="scale factor (default 1; 0.1 for a quick run)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of (1) and (2) per query; the best counts")
    parser.add_argument("--no-postgres", action="store_true", help="skip (3): check against DuckDB instead")
    parser.add_argument("--query", action="append", help="only this query (q01..q22); repeatable")
    parser.add_argument("--keep", action="store_true", help="keep the synced bemidb data dir")
    parser.add_argument("--varchar", action="store_true",
                        help="declare dss.ddl's char(n) columns as varchar(n) in the source Postgres")
    args = parser.parse_args(argv)
    result = run(args.sf, max(1, args.repeat), not args.no_postgres, args.query, args.keep,
                 char_as_varchar=args.varchar)
    return 0 if result["ok"] else 1
