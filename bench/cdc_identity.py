"""CDC drain of a table WITHOUT a primary key (REPLICA IDENTITY FULL) after 1% changed rows vs a full refresh.

    python -m bench.cdc_identity [--rows 1000000]

bench/sync.py's mixed-type table, no primary key, REPLICA IDENTITY FULL, in a throwaway Postgres
(wal_level=logical). The first CDC run copies it; then 0.4% of the rows are updated, 0.3% deleted and 0.3%
inserted. Timed, each a whole `python -m bemidb sync` process from this checkout: the drain that applies those
changes (deletes found by whole-row value among every stored row: no key bounds to prune by), and a full
refresh of the same table in the same state; best of 3, the drain repeated from the same start (data dir
restored from a copy, the slot from pg_copy_logical_replication_slot). Also the table's own time in each
sync's output (no interpreter start). Correctness: the drained table's row count and sum(amount) equal
the source's. Prints the times and the ratio; timings never fail the run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc

from bemidb.config import Config
from bemidb.storage.catalog import open_catalog
from bench._pyz import table_seconds
from bench.cdc import change_one_percent
from bench.sync import TABLE_SQL
from tests.support.postgres import PostgresCluster, find_bin_dir

REPO = Path(__file__).resolve().parent.parent


def _sync(url: str, data_dir: str, *extra: str) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BEMIDB_", "AWS_", "SOURCE_", "CATALOG_", "DESTINATION_"))}
    env["PYTHONPATH"] = str(REPO)
    os.sync()
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "bemidb", "sync", "postgres", "--database-url", url,
                             "--data-dir", data_dir, "--include", "public.t", *extra],
                            env=env, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - started
    if result.returncode != 0 or "synced by full refresh" in result.stderr:
        raise RuntimeError(f"sync failed or not CDC: {result.stderr[-2000:]}")
    return seconds, table_seconds(result.stderr)


def main(rows: int, repeat: int = 3) -> dict:
    cluster = PostgresCluster(find_bin_dir()).start()
    try:
        url = cluster.url()
        cluster.execute("postgres", TABLE_SQL.format(name="t", rows=rows) + "; ALTER TABLE t REPLICA IDENTITY FULL")
        cluster.execute("postgres", "VACUUM ANALYZE t")
        with tempfile.TemporaryDirectory(prefix="bench-cdc-identity-") as work:
            data_dir = f"{work}/data"
            first, _ = _sync(url, data_dir, "--sync-mode", "cdc")
            cluster.execute("postgres", "SELECT pg_copy_logical_replication_slot('bemidb_public', 'bench_saved')")
            shutil.copytree(data_dir, f"{work}/before")
            change_one_percent(cluster, rows)
            drains = []
            for attempt in range(repeat):  # from the same start: data dir and slot restored from copies
                if attempt:
                    shutil.rmtree(data_dir)
                    shutil.copytree(f"{work}/before", data_dir)
                    cluster.execute("postgres", "SELECT pg_drop_replication_slot('bemidb_public'); SELECT "
                                                "pg_copy_logical_replication_slot('bench_saved', 'bemidb_public')")
                drains.append(_sync(url, data_dir, "--sync-mode", "cdc"))
            arrow = open_catalog(Config({"data_dir": data_dir})).load_table(("public", "t")).scan(
                selected_fields=("amount",)).to_arrow()
            count, total = cluster.execute("postgres", "SELECT count(*), sum(amount)::text FROM t")[0]
            ok = arrow.num_rows == count and str(pc.sum(arrow.column("amount")).as_py()) == total
            fulls = [_sync(url, f"{work}/full-{i}") for i in range(repeat)]
    finally:
        cluster.destroy()
    changed = rows // 250 + rows // 333 + rows * 3 // 1000
    drain, drain_table = min(d[0] for d in drains), min(d[1] for d in drains)
    full, full_table = min(f[0] for f in fulls), min(f[1] for f in fulls)
    result = {"rows": rows, "changed": changed, "first_cdc_run_s": round(first, 2), "drain_s": round(drain, 2),
              "full_refresh_s": round(full, 2), "ratio": round(drain / full, 3),
              "drain_table_s": drain_table, "full_refresh_table_s": full_table,
              "table_ratio": round(drain_table / full_table, 3), "ok": ok}
    print(result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    main(parser.parse_args().rows)
