"""Benchmark `bemidb sync postgres` against psql's `\\copy (select * from t) to /dev/null` on the same table,
measured in the same run on a throwaway Postgres, and the sync's peak RSS at 1M vs 5M rows.

    .venv/bin/python bench/sync.py            # 1M and 5M rows (~1 GB of CSV for 5M)
    .venv/bin/python bench/sync.py --rows 200000,1000000

Targets (issue 3): sync rows/s >= 0.6x psql's \\copy rows/s; peak RSS <= 400 MB and flat as rows grow.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.postgres import PostgresCluster, find_bin_dir  # noqa: E402

# A mixed-type row of ~200 bytes of CSV: ints, text, timestamptz, numeric, bool, float, date, jsonb, uuid.
TABLE_SQL = """
CREATE TABLE {name} AS
SELECT g::int8 AS id,
       (g * 7 % 100000)::int4 AS account_id,
       'user ' || g || ' ' || repeat(chr(97 + g % 26), g % 20) AS name,
       timestamptz '2020-01-01 00:00:00+00' + (g || ' seconds')::interval AS created_at,
       ((g % 1000000) / 100.0)::numeric(12,2) AS amount,
       g % 3 = 0 AS active,
       (g % 997) / 7.0::float8 AS score,
       date '2000-01-01' + (g % 9000) AS day,
       jsonb_build_object('k', g % 50, 'tag', 't' || (g % 7)) AS props,
       md5(g::text)::uuid AS ref
FROM generate_series(1, {rows}) g
"""


# Runs the command as a child of a small fresh interpreter and reports that child's peak RSS. Linux keeps a
# process's peak RSS across exec, and a child forked (or vforked) straight from this process starts with ours
# counted: under `python -m bench all`, after other benchmarks grew this process, every sync looked 440 MB.
_PEAK_RSS_WRAPPER = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_pid, status, usage = os.wait4(pid, 0)
sys.stderr.write("\\n@@peak-rss-kb %d %f %f\\n" % (usage.ru_maxrss, usage.ru_utime + usage.ru_stime,
                                                   time.perf_counter() - started))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, int, str, float]:
    """Wall seconds, peak RSS (bytes) of exactly this command, stderr, CPU seconds (user + system)."""
    result = subprocess.run([sys.executable, "-c", _PEAK_RSS_WRAPPER, *cmd], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    stderr, _, facts = result.stderr.decode(errors="replace").rpartition("\n@@peak-rss-kb ")
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed ({result.returncode}):\n{stderr[-3000:]}")
    peak_kb, cpu_s, elapsed = facts.split()  # the wall time too, measured without the wrapper's own start
    return float(elapsed), int(peak_kb) * 1024, stderr, float(cpu_s)


def measure(sizes: list[int], repeat: int = 1, log=print) -> list[dict]:
    """psql \\copy vs bemidb sync on a generated table of each size, in one throwaway Postgres."""
    bin_dir = find_bin_dir()
    if bin_dir is None or not shutil.which("psql"):
        raise RuntimeError("needs PostgreSQL server binaries and psql")
    cluster = PostgresCluster(bin_dir).start()
    work = Path(tempfile.mkdtemp(prefix="bemidb-bench-sync-"))
    try:
        url = cluster.url()
        log(f"Postgres {cluster.port}; generating tables {sizes} ...")
        for rows in sizes:
            cluster.execute("postgres", TABLE_SQL.format(name=f"t{rows}", rows=rows))
            cluster.execute("postgres", f"VACUUM ANALYZE t{rows}")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("BEMIDB_", "AWS_", "SOURCE_", "CATALOG_", "DESTINATION_"))}
        env["PYTHONPATH"] = str(REPO)
        results = []
        for rows in sizes:
            table = f"t{rows}"
            copy_s = min(timed(["psql", url, "-q", "-c", f"\\copy (select * from {table}) to /dev/null"], env)[0]
                         for _ in range(repeat))
            best = None
            for attempt in range(repeat):
                data_dir = work / f"data-{rows}-{attempt}"
                sync = timed([sys.executable, "-m", "bemidb", "sync", "postgres", "--database-url", url,
                              "--data-dir", str(data_dir), "--include", f"public.{table}"], env)
                if best is None or sync[0] < best[0]:
                    best = sync
            sync_s, rss, stderr, cpu_s = best
            synced = _synced_rows(work / f"data-{rows}-0", table)
            table_line = next((line for line in stderr.splitlines() if f"public.{table}: done" in line), "")
            results.append({"rows": rows, "copy_s": copy_s, "sync_s": sync_s, "peak_rss": rss, "cpu_s": cpu_s,
                            "synced_rows": synced, "table_line": table_line})
            log(f"{rows:>10,} rows: psql \\copy {copy_s:6.2f}s ({rows / copy_s:>10,.0f} rows/s) | "
                f"bemidb sync {sync_s:6.2f}s ({rows / sync_s:>10,.0f} rows/s) | "
                f"ratio {copy_s / sync_s:4.2f}x | peak RSS {rss / 2**20:6.0f} MB")
            # The machine may be shared: CPU seconds of the sync process do not depend on the load.
            log(f"           {table_line.split(' ', 1)[-1]}; sync process CPU {cpu_s:.1f}s "
                f"({rows / cpu_s:,.0f} rows per CPU-second)")
        return results
    finally:
        cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)


def _synced_rows(data_dir: Path, table: str) -> int:
    from bemidb.config import Config
    from bemidb.storage.catalog import open_catalog

    snapshot = open_catalog(Config({"data_dir": str(data_dir)})).load_table(("public", table)).current_snapshot()
    return int(snapshot.summary["total-records"]) if snapshot else 0


def main(quick: bool = False) -> dict:
    """The bench convention (bench/README.md): 200k vs 1M rows quick, 1M vs 5M full."""
    sizes = [200_000, 1_000_000] if quick else [1_000_000, 5_000_000]
    results = measure(sizes, log=lambda line: print(line, flush=True))
    ok = all(r["synced_rows"] == r["rows"] for r in results)  # correctness only; timings never fail a run
    small, large = results[0], results[-1]
    summary = [{"metric": f"sync rows/s, {r['rows']:,} rows", "value": r["rows"] / r["sync_s"], "unit": "rows/s",
                "reference": f"psql \\copy {r['rows'] / r['copy_s']:,.0f} rows/s", "ratio": r["copy_s"] / r["sync_s"],
                "target": ">= 0.6", "ok": r["synced_rows"] == r["rows"]} for r in results]
    summary.append({"metric": f"peak RSS at {large['rows']:,} rows", "value": large["peak_rss"] / 2**20,
                    "unit": "MB", "reference": f"{small['peak_rss'] / 2**20:.0f} MB at {small['rows']:,} rows",
                    "ratio": large["peak_rss"] / small["peak_rss"], "target": "<= 400 MB, flat"})
    return {"ok": ok, "summary": summary, "details": {"runs": results}}


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000,5000000", help="comma-separated table sizes")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement (best is reported)")
    args = parser.parse_args()
    results = measure([int(s) for s in args.rows.split(",")], args.repeat,
                      log=lambda line: print(line, flush=True))
    if len(results) > 1:
        small, large = results[0], results[-1]
        print(f"peak RSS {small['peak_rss'] / 2**20:.0f} MB at {small['rows']:,} rows vs "
              f"{large['peak_rss'] / 2**20:.0f} MB at {large['rows']:,} rows "
              f"(x{large['peak_rss'] / small['peak_rss']:.2f} for x{large['rows'] / small['rows']:.0f} rows)")
    print("targets: ratio >= 0.6x, peak RSS <= 400 MB and flat")


if __name__ == "__main__":
    cli()
