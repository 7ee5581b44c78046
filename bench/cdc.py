"""CDC drain (`bemidb sync postgres --sync-mode cdc`) after 1% changed rows vs a full refresh, in the same run.

    python -m bench cdc [--quick]       (or python -m bench.cdc [--quick])

A throwaway Postgres (wal_level=logical) gets bench/sync.py's mixed-type table (5M rows, 1M with --quick) with
a primary key. The first CDC run creates the slot and copies the table. Then 1% of the rows change, mixed:
0.4% updated at scattered ids, 0.3% deleted, 0.3% inserted. Timed, each a whole `bemidb.pyz sync` process
(built fresh from this checkout, unpacked once before; as a cron step runs it):
  1. the CDC drain that applies those changes (one commit: new rows + a position delete file);
  2. the reference: a full refresh of the same table in the same state.
The drain is repeated from the same starting point: the data dir is restored from a copy and the slot from a
copy made with pg_copy_logical_replication_slot (a slot cannot be moved back). Best of 3 (2 with --quick).
Target (issue 18): drain / full refresh <= 0.05. Also printed: the table's own time in the drain's output
(without the interpreter start and imports). Correctness: after the drain the table's row count, sum(amount)
and number of updated rows equal the source's; timings never fail the run.
Then follow mode: a `--follow --commit-interval 1s` follower and `bemidb serve` on that data dir while 1,000
rows/s are inserted (100 every 0.1 s) for 60 s (20 with --quick); a client polls max(id) through the server:
the change-to-served lag p50 and p95 (target: about the interval + 1 s), and the follower's RSS at 5 s and
at the end (a 10-minute run is the issue's; this is the short form).
Last, --detect-deletes (cursor syncs without logical replication): a `--incremental public.t:id` copy,
0.1% of the rows deleted and 0.1% inserted, then the next run with and without --detect-deletes.
`python -m bench.cdc --soak 600` runs only the follower part, for 600 s, on a fresh 100k-row table, and prints
the lag and the follower's RSS at 5 s, at the end and its highest sample; `--soak 600 --steady` also deletes
the oldest rows as fast as it inserts, so the table keeps its size (without it the table grows 7x in 10 min).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc

from bemidb.config import Config
from bemidb.storage.catalog import open_catalog
from bench._pyz import RESULTS, clean_env, real_python3, table_seconds, timed_sync, unpack
from bench.sync import TABLE_SQL
from tests.support.postgres import PostgresCluster, find_bin_dir

REPO = Path(__file__).resolve().parent.parent
PYZ = RESULTS / "bemidb.pyz"
SHIV_ROOT = RESULTS / "shiv-cdc"  # the pyz unpacks here once, before the timed runs
PYTHON = real_python3()


def _sync(url: str, data_dir: str, *extra: str) -> tuple[float, str]:
    """A whole `bemidb.pyz sync` process, as the cron step runs it (the dev venv would also import pandas)."""
    return timed_sync(PYTHON, PYZ, SHIV_ROOT, url, data_dir, *extra)


def _facts(data_dir: str) -> dict:
    table = open_catalog(Config({"data_dir": data_dir})).load_table(("public", "t"))
    arrow = table.scan(selected_fields=("id", "amount", "name")).to_arrow()
    return {"rows": arrow.num_rows, "sum_amount": str(pc.sum(arrow.column("amount")).as_py()),
            "updated": pc.sum(pc.equal(arrow.column("name"), "updated")).as_py() or 0,
            "files": len(list(table.scan().plan_files()))}


def _source_facts(cluster) -> dict:
    rows, total, updated = cluster.execute("postgres", "SELECT count(*), sum(amount)::text, "
                                                       "count(*) FILTER (WHERE name = 'updated') FROM t")[0]
    return {"rows": rows, "sum_amount": total, "updated": updated}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _follow_lag(cluster, url: str, data_dir: str, seconds: int, rate: int = 1000, steady: bool = False) -> dict:
    """A follower (commit interval 1 s) and a server on the data dir; 1,000 inserts/s into t, in batches of
    100 every 0.1 s; a client polls max(id) through the server: a batch's lag is from its commit in the
    source to the first poll that sees it. `steady`: each batch also deletes the oldest rows it adds, so the
    table keeps its size (the follower's memory then says whether anything grows, not the table)."""
    import psycopg

    from tests.support.server import start_server

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BEMIDB_", "AWS_", "SOURCE_", "CATALOG_", "DESTINATION_"))}
    env["PYTHONPATH"] = str(REPO)
    follower = subprocess.Popen([sys.executable, "-m", "bemidb", "sync", "postgres", "--sync-mode", "cdc",
                                 "--follow", "--commit-interval", "1s", "--database-url", url, "--data-dir",
                                 data_dir, "--include", "public.t"], env=env, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = start_server(data_dir, log_level="INFO")
    committed: list[tuple[int, float]] = []  # (last id of the batch, commit time)
    lags: list[float] = []
    try:
        start_id = cluster.execute("postgres", "SELECT max(id) FROM t")[0][0] + 1
        batch = rate // 10
        with psycopg.connect(url, autocommit=True) as source, psycopg.connect(server.dsn()) as client:
            client.autocommit = True
            started = time.monotonic()
            rss_start, rss_samples, next_sample = None, [], started + 5
            next_id, next_write = start_id, started
            while time.monotonic() - started < seconds or committed:
                now = time.monotonic()
                if now >= next_sample:
                    rss_samples.append(_rss_mb(follower.pid))
                    rss_start = rss_start or rss_samples[0]
                    next_sample += 5
                if now >= next_write and now - started < seconds:
                    source.execute(f"INSERT INTO t (id, name) SELECT g, 'live' FROM generate_series("
                                   f"{next_id}, {next_id + batch - 1}) g")
                    if steady:
                        source.execute(f"DELETE FROM t WHERE id IN (SELECT id FROM t ORDER BY id LIMIT {batch})")
                    committed.append((next_id + batch - 1, time.monotonic()))
                    next_id += batch
                    next_write += 0.1
                    continue
                seen = client.execute("SELECT max(id) FROM t").fetchone()[0]
                polled = time.monotonic()
                while committed and committed[0][0] <= seen:
                    lags.append(polled - committed.pop(0)[1])
                if time.monotonic() - started > seconds + 60:
                    raise RuntimeError("the follower stopped applying changes")
                time.sleep(0.02)
        rss_end = _rss_mb(follower.pid)
    finally:
        server.stop()
        follower.send_signal(signal.SIGTERM)
        follower.wait(timeout=120)
    lags.sort()
    return {"rate": rate, "seconds": seconds, "batches": len(lags), "p50": lags[len(lags) // 2],
            "p95": lags[int(len(lags) * 0.95)], "max": lags[-1], "rss_start_mb": rss_start, "rss_end_mb": rss_end,
            "rss_peak_mb": max(rss_samples + [rss_end]), "follower_exit": follower.returncode,
            "rss_each_minute_mb": [round(mb) for mb in rss_samples[11::12]]}  # flat, or a step, or a creep


def soak(seconds: int, rows: int = 100_000, steady: bool = False) -> dict:
    """`python -m bench.cdc --soak 600 [--steady]`: only the follower, for `seconds` at 1,000 inserts/s on a
    fresh table of `rows` rows (--steady: as many of the oldest rows deleted, the table keeps its size): lag
    p50/p95 and its RSS at 5 s, at the end and the highest sample (every 5 s)."""
    unpack(PYZ, SHIV_ROOT, PYTHON)
    cluster = PostgresCluster(find_bin_dir()).start()
    try:
        url = cluster.url()
        cluster.execute("postgres", TABLE_SQL.format(name="t", rows=rows))
        cluster.execute("postgres", "ALTER TABLE t ADD PRIMARY KEY (id)")
        with tempfile.TemporaryDirectory(prefix="bench-cdc-soak-") as work:
            _sync(url, f"{work}/data", "--sync-mode", "cdc")
            lag = _follow_lag(cluster, url, f"{work}/data", seconds=seconds, steady=steady)
            lag["files_after"] = _facts(f"{work}/data")["files"]
    finally:
        cluster.destroy()
    return lag


# What any process that commits to the warehouse pays before doing anything: the interpreter and the libraries
# a CDC commit cannot do without (pyarrow for the rows, pg8000 for the slot, pyiceberg's catalog for the commit).
FLOOR_IMPORTS = "import pyarrow, pyarrow.parquet, pg8000.native, pyiceberg.catalog, pyiceberg.io.pyarrow"


def _start_up_floor(repeat: int = 5) -> dict:
    """Best-of-`repeat` seconds of the pyz's start-up pieces, from the same unpacked site-packages: the bare
    interpreter, `bemidb.pyz version` (shiv's bootstrap + the CLI) and FLOOR_IMPORTS. The last one is the
    floor of a drain that does nothing: no drain can be cheaper than it."""
    site = next(SHIV_ROOT.glob("*/site-packages"))
    env = {**clean_env(SHIV_ROOT=str(SHIV_ROOT)), "PYTHONPATH": str(site)}

    def best(*args: str) -> float:
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            subprocess.run([PYTHON, *args], env=env, check=True, capture_output=True, timeout=120)
            times.append(time.perf_counter() - started)
        return round(min(times), 3)

    return {"python": best("-c", "pass"), "pyz_version": best(str(PYZ), "version"),
            "imports": best("-c", FLOOR_IMPORTS)}


def change_one_percent(cluster, rows: int) -> int:
    """The benchmark's 1% of changed rows in table t: 0.4% updated at scattered ids, 0.3% deleted, 0.3%
    inserted; then a CHECKPOINT. Returns how many rows changed."""
    insert = TABLE_SQL.format(name="t_new", rows=rows + rows * 3 // 1000).replace(
        "FROM generate_series(1, ", f"FROM generate_series({rows + 1}, ")
    cluster.execute("postgres", insert)
    cluster.execute("postgres", "UPDATE t SET name = 'updated', amount = amount + 1 WHERE id % 250 = 1;"
                                "DELETE FROM t WHERE id % 333 = 2; INSERT INTO t SELECT * FROM t_new")
    cluster.execute("postgres", "CHECKPOINT")
    return rows // 250 + rows // 333 + rows * 3 // 1000


def _restore(cluster, data_dir: str, before: str) -> None:
    """The data dir and the slot as they were before the first drain (a slot cannot be moved back: it is
    dropped and copied again from the saved one)."""
    shutil.rmtree(data_dir)
    shutil.copytree(before, data_dir)
    cluster.execute("postgres", "SELECT pg_drop_replication_slot('bemidb_public');"
                                "SELECT pg_copy_logical_replication_slot('bench_saved', 'bemidb_public')")


def drain_breakdown(seconds: float, stderr: str) -> dict:
    """Where one whole drain process's time went, from its `--log-level DEBUG` line `cdc run: connect
    0.028s, ...; 1.234s in all` (sync/cdc.py): each phase of the run, and what is outside the run (the
    interpreter, imports and CLI before it, the process's exit after it) as the whole process's time minus
    the run's."""
    match = re.search(r"cdc run: (.*); ([0-9.]+)s in all", stderr)
    if match is None:
        raise RuntimeError(f"no phase line in the drain's output: {stderr[-500:]}")
    phases = {name: float(value) for name, value in re.findall(r"([a-z ]+) ([0-9.]+)s", match.group(1))}
    phases = {name.strip(): value for name, value in phases.items()}
    breakdown = {"start-up and exit": round(seconds - float(match.group(2)), 3), **phases, "whole": round(seconds, 3)}
    print("drain breakdown (s): " + ", ".join(f"{name} {value:.3f}" for name, value in breakdown.items()),
          file=sys.stderr)
    return breakdown


def _detect_deletes_cost(cluster, url: str, work: str, repeat: int) -> dict:
    """A cursor sync (--incremental public.t:id) of the same table, then 0.1% of its rows deleted and as
    many inserted: the next run with and without --detect-deletes, each from the same data dir copy."""
    base = f"{work}/incremental"
    _sync(url, base, "--incremental", "public.t:id")
    rows = cluster.execute("postgres", "SELECT count(*), max(id) FROM t")[0]
    cluster.execute("postgres", f"DELETE FROM t WHERE id % 1000 = 7; INSERT INTO t (id, name) SELECT g, 'late' "
                                f"FROM generate_series({rows[1] + 1}, {rows[1] + rows[0] // 1000}) g")
    times: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(repeat):
        for label, extra in (("without", ()), ("with", ("--detect-deletes",))):
            run_dir = f"{work}/incremental-{label}"
            shutil.rmtree(run_dir, ignore_errors=True)
            shutil.copytree(base, run_dir)
            times[label].append(_sync(url, run_dir, "--incremental", "public.t:id", *extra)[0])
    without, with_ = min(times["without"]), min(times["with"])
    ok = _facts(f"{work}/incremental-with")["rows"] == cluster.execute("postgres", "SELECT count(*) FROM t")[0][0]
    return {"without": without, "with": with_, "cost": with_ - without, "runs": times, "ok": ok}


def main(quick: bool = False) -> dict:
    rows = 1_000_000 if quick else 5_000_000
    repeat = 2 if quick else 3
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError("needs PostgreSQL server binaries")
    unpack(PYZ, SHIV_ROOT, PYTHON)
    cluster = PostgresCluster(bin_dir).start()
    try:
        url = cluster.url()
        cluster.execute("postgres", TABLE_SQL.format(name="t", rows=rows))
        cluster.execute("postgres", "ALTER TABLE t ADD PRIMARY KEY (id)")
        cluster.execute("postgres", "VACUUM ANALYZE t")
        with tempfile.TemporaryDirectory(prefix="bench-cdc-") as work:
            data_dir, before = f"{work}/data", f"{work}/before"
            first_s, _ = _sync(url, data_dir, "--sync-mode", "cdc")
            cluster.execute("postgres", "SELECT pg_copy_logical_replication_slot('bemidb_public', 'bench_saved')")
            changed = change_one_percent(cluster, rows)
            shutil.copytree(data_dir, before)
            drains, drain_table = [], []
            for attempt in range(repeat):
                if attempt:
                    _restore(cluster, data_dir, before)
                seconds, log = _sync(url, data_dir, "--sync-mode", "cdc")
                drains.append(round(seconds, 3))
                drain_table.append(table_seconds(log))
            _restore(cluster, data_dir, before)
            breakdown = drain_breakdown(*_sync(url, data_dir, "--sync-mode", "cdc", "--log-level", "DEBUG"))
            facts, expected = _facts(data_dir), _source_facts(cluster)
            floor = _start_up_floor()
            ok = {k: facts[k] for k in expected} == expected
            lag = _follow_lag(cluster, url, data_dir, seconds=20 if quick else 60)
            full_dir = f"{work}/full"
            fulls, full_table = [], []
            for _ in range(repeat):
                seconds, log = _sync(url, full_dir)
                fulls.append(round(seconds, 3))
                full_table.append(table_seconds(log))
            detect = _detect_deletes_cost(cluster, url, work, repeat)
    finally:
        cluster.destroy()
    drain_s, full_s = min(drains), min(fulls)
    drain_table_s, full_table_s = min(drain_table), min(full_table)
    summary = [
        {"metric": f"CDC drain after 1% changed rows ({changed:,} of {rows:,}: updates, deletes, inserts)",
         "value": drain_s, "unit": "s", "reference": f"full refresh {full_s:.1f}s", "ratio": drain_s / full_s,
         "target": "<= 0.05", "ok": ok},
        {"metric": "the same, the table's own time in the sync (no interpreter start)", "value": drain_table_s,
         "unit": "s", "reference": f"full refresh {full_table_s:.1f}s", "ratio": drain_table_s / full_table_s},
        {"metric": f"start-up floor: python + {FLOOR_IMPORTS.removeprefix('import ')} (no drain can cost less)",
         "value": floor["imports"], "unit": "s", "reference": f"full refresh {full_s:.1f}s",
         "ratio": floor["imports"] / full_s},
        {"metric": "one more drain, its process's start-up and exit (interpreter, imports, CLI; teardown)",
         "value": breakdown["start-up and exit"], "unit": "s", "reference": f"full refresh {full_s:.1f}s",
         "ratio": breakdown["start-up and exit"] / full_s},
        {"metric": "the same drain, reading the slot (Postgres decoding the WAL, pgoutput decoded, collapsed)",
         "value": breakdown.get("read slot", 0.0), "unit": "s", "reference": f"full refresh {full_s:.1f}s",
         "ratio": breakdown.get("read slot", 0.0) / full_s},
        {"metric": f"first CDC run (slot + copy of {rows:,} rows)", "value": first_s, "unit": "s"},
        {"metric": f"--follow --commit-interval 1s at {lag['rate']:,} inserts/s: change-to-served lag p50",
         "value": lag["p50"], "unit": "s", "target": "<= interval + 1 s", "ok": lag["p95"] <= 2.5},
        {"metric": "the same, p95", "value": lag["p95"], "unit": "s"},
        {"metric": f"--incremental --detect-deletes on {rows:,} rows (0.1% deleted, 0.1% inserted)",
         "value": detect["with"], "unit": "s", "reference": f"without --detect-deletes {detect['without']:.1f}s",
         "ratio": detect["with"] / detect["without"]},
        {"metric": "the same, --detect-deletes's own cost against a full refresh", "value": detect["cost"],
         "unit": "s", "reference": f"full refresh {full_s:.1f}s", "ratio": detect["cost"] / full_s},
        {"metric": f"the follower's RSS after 5 s and after {lag['seconds']} s", "value": lag["rss_end_mb"],
         "unit": "MB", "reference": f"{lag['rss_start_mb']:.0f} MB at 5 s",
         "ratio": lag["rss_end_mb"] / lag["rss_start_mb"]},
    ]
    return {"ok": ok and detect["ok"], "summary": summary,
            "details": {"drain_breakdown": breakdown, "start_up": floor, "detect_deletes": detect, "rows": rows, "changed": changed, "drains": drains, "drain_table": drain_table,
                        "full_refreshes": fulls, "full_table": full_table, "after_drain": facts,
                        "source": expected, "follow": lag}}


if __name__ == "__main__":  # the same as `python -m bench cdc [--quick]`; `--soak SECONDS`: the follower only
    if len(sys.argv) in (3, 4) and sys.argv[1] == "--soak":
        print(soak(int(sys.argv[2]), steady=sys.argv[3:] == ["--steady"]))
        sys.exit(0)
    from bench.__main__ import main as run_benchmarks

    sys.exit(run_benchmarks(["cdc", *sys.argv[1:]]))
