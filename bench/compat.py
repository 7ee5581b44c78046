"""The compatibility layer's cost: SQL translation and psql's `\\d table`, against Postgres in the same run.

    python -m bench compat [--quick]       (or python -m bench.compat [--quick])

Prints:
  - translation-cache hit (a repeated statement): µs per call, target <= 50 µs; the reference is a plain dict
    lookup of the same text, measured in the same run;
  - translation miss (sqlglot parse + remaps) of psql's `\\d` catalog queries: ms per query;
  - psql `\\d table` end to end (a real psql process, ~10 catalog queries): bemidb vs the source Postgres,
    ms and ratio; target <= 50 ms for bemidb; psql's own process start-up is in both;
  - the same catalog queries run in-process on DuckDB with the pg_catalog emulation (no wire): ms total;
  - pg_catalog refresh for 200 tables of 20 columns: ms.
Correctness is checked (the `\\d` output of bemidb has the same columns and types as Postgres's); timings never
fail the run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.commands import run_bemidb  # noqa: E402
from tests.support.postgres import PostgresCluster, find_bin_dir  # noqa: E402
from tests.support.server import start_server  # noqa: E402

DDL = """CREATE TABLE orders (id bigint NOT NULL, customer text NOT NULL, amount numeric(12,2), status varchar(20),
         created_at timestamptz, tags text[], payload jsonb, shipped date, score double precision, flag boolean);
         INSERT INTO orders VALUES (1, 'a', 1.50, 'new', now(), '{x}', '{"a": 1}', current_date, 0.5, true);"""

# psql 15's queries for `\d orders` (psql -E), with the table OID filled in per server.
DESCRIBE_QUERIES = [
    "SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n "
    "ON n.oid = c.relnamespace WHERE c.relname OPERATOR(pg_catalog.~) '^(orders)$' COLLATE pg_catalog.default "
    "AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3",
    "SELECT c.relchecks, c.relkind, c.relhasindex, c.relhasrules, c.relhastriggers, c.relrowsecurity, "
    "c.relforcerowsecurity, false AS relhasoids, c.relispartition, '', c.reltablespace, CASE WHEN c.reloftype = 0 "
    "THEN '' ELSE c.reloftype::pg_catalog.regtype::pg_catalog.text END, c.relpersistence, c.relreplident, "
    "am.amname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_class tc ON (c.reltoastrelid = tc.oid) "
    "LEFT JOIN pg_catalog.pg_am am ON (c.relam = am.oid) WHERE c.oid = '{oid}'",
    "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), (SELECT pg_catalog.pg_get_expr(d.adbin, "
    "d.adrelid, true) FROM pg_catalog.pg_attrdef d WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND "
    "a.atthasdef), a.attnotnull, (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t WHERE "
    "c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS attcollation, "
    "a.attidentity, a.attgenerated FROM pg_catalog.pg_attribute a WHERE a.attrelid = '{oid}' AND a.attnum > 0 "
    "AND NOT a.attisdropped ORDER BY a.attnum",
    "SELECT c2.relname, i.indisprimary, i.indisunique, i.indisclustered, i.indisvalid, "
    "pg_catalog.pg_get_indexdef(i.indexrelid, 0, true), pg_catalog.pg_get_constraintdef(con.oid, true), contype, "
    "condeferrable, condeferred, i.indisreplident, c2.reltablespace FROM pg_catalog.pg_class c, "
    "pg_catalog.pg_class c2, pg_catalog.pg_index i LEFT JOIN pg_catalog.pg_constraint con ON (conrelid = "
    "i.indrelid AND conindid = i.indexrelid AND contype IN ('p','u','x')) WHERE c.oid = '{oid}' AND c.oid = "
    "i.indrelid AND i.indexrelid = c2.oid ORDER BY i.indisprimary DESC, c2.relname",
    "SELECT c.oid::pg_catalog.regclass FROM pg_catalog.pg_class c, pg_catalog.pg_inherits i WHERE c.oid = "
    "i.inhparent AND i.inhrelid = '{oid}' AND c.relkind != 'p' AND c.relkind != 'I' ORDER BY inhseqno",
]


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def _translation(quick: bool) -> dict:
    from bemidb.server.sql import rewrite

    statements = [q.replace("{oid}", "16385") for q in DESCRIBE_QUERIES]
    calls = 20_000 if quick else 200_000
    rewrite.translate.cache_clear()
    miss = sum(_best(lambda q=q: (rewrite.translate.cache_clear(), rewrite.translate(q)), 3) for q in statements)
    for q in statements:
        rewrite.translate(q)
    reference = {q: q for q in statements}
    query = statements[2]
    hit = _best(lambda: [rewrite.translate(query) for _ in range(calls)], 3) / calls
    plain = _best(lambda: [reference.get(query) for _ in range(calls)], 3) / calls
    return {"hit_us": hit * 1e6, "dict_us": plain * 1e6, "miss_ms": miss * 1000 / len(statements)}


def _in_process(repeat: int) -> dict:
    import duckdb

    from bemidb.server.catalog import pg_catalog
    from bemidb.server.catalog.oids import relation_oid
    from bemidb.server.sql import rewrite
    from bemidb.server.sql.session_settings import SessionSettings
    from bemidb.storage.catalog import ColumnInfo, TableInfo

    con = duckdb.connect()
    pg_catalog.install(con, "bemidb", "bench")
    tables = [TableInfo("public", f"t{i}", "x", tuple(ColumnInfo(f"c{j}", "bigint", j > 0) for j in range(20)),
                        "postgres") for i in range(200)]
    tables.append(TableInfo("public", "orders", "x", (ColumnInfo("id", "bigint", False),), "postgres"))
    refresh = _best(lambda: pg_catalog.refresh(con, tables), 2 if repeat > 1 else 1)
    cursor = con.cursor()
    SessionSettings().apply(cursor)
    oid = relation_oid("public", "orders")
    sqls = [rewrite.translate(q.replace("{oid}", str(oid))).sql for q in DESCRIBE_QUERIES]
    run = _best(lambda: [cursor.execute(sql).fetchall() for sql in sqls], repeat)
    return {"refresh_ms": refresh * 1000, "describe_ms": run * 1000}


def _psql(dsn: str, password: str | None = None) -> str:
    env = dict(os.environ, PGPASSWORD=password) if password else None
    result = subprocess.run(["psql", dsn, "-X", "-c", r"\d orders"], capture_output=True, text=True, timeout=60,
                            env=env)
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return result.stdout


def _columns(output: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("|")][:4] for line in output.splitlines()
            if "|" in line and not line.lstrip().startswith("Column")]


def _end_to_end(repeat: int) -> dict:
    cluster = PostgresCluster(find_bin_dir()).start()
    server = None
    try:
        url = cluster.create_database("bench_compat")
        cluster.execute("bench_compat", DDL)
        data_dir = Path(tempfile.mkdtemp(prefix="bench-compat-")) / "data"
        data_dir.mkdir()
        run_bemidb("sync", "postgres", "--database-url", url, env={"BEMIDB_DATA_DIR": str(data_dir)}, check=True)
        server = start_server(data_dir, log_level="WARN")
        ours_dsn = server.dsn("bench")
        theirs_dsn = re.sub(r"://[^@]+@", f"://{cluster.user}@", url)
        ours_out, theirs_out = _psql(ours_dsn), _psql(theirs_dsn, cluster.password)
        same = _columns(ours_out) == _columns(theirs_out)
        ours = _best(lambda: _psql(ours_dsn), repeat)
        theirs = _best(lambda: _psql(theirs_dsn, cluster.password), repeat)
        # psql's start-up and connection cost, to see what the catalog queries themselves take
        ours_connect = _best(lambda: subprocess.run(["psql", ours_dsn, "-X", "-c", "SELECT 1"], capture_output=True,
                                                    check=True), repeat)
        return {"ours_ms": ours * 1000, "postgres_ms": theirs * 1000, "same_columns": same,
                "ours_connect_ms": ours_connect * 1000}
    finally:
        if server is not None:
            server.stop()
        cluster.destroy()


def main(quick: bool = False) -> dict:
    repeat = 3 if quick else 10
    translation = _translation(quick)
    in_process = _in_process(repeat)
    e2e = _end_to_end(repeat)
    summary = [
        {"metric": "translation cache hit", "value": round(translation["hit_us"], 2), "unit": "µs",
         "reference": f"dict lookup {translation['dict_us']:.3f} µs",
         "ratio": round(translation["hit_us"] / max(translation["dict_us"], 1e-9), 1), "target": "<= 50 µs"},
        {"metric": "translation miss, psql \\d query", "value": round(translation["miss_ms"], 2), "unit": "ms"},
        {"metric": "psql \\d table, end to end", "value": round(e2e["ours_ms"], 1), "unit": "ms",
         "reference": f"Postgres {e2e['postgres_ms']:.1f} ms",
         "ratio": round(e2e["ours_ms"] / e2e["postgres_ms"], 2), "target": "<= 50 ms", "ok": e2e["same_columns"]},
        {"metric": "psql connect + SELECT 1 (bemidb)", "value": round(e2e["ours_connect_ms"], 1), "unit": "ms"},
        {"metric": "\\d catalog queries in-process", "value": round(in_process["describe_ms"], 1), "unit": "ms"},
        {"metric": "pg_catalog refresh, 200 tables", "value": round(in_process["refresh_ms"], 1), "unit": "ms"},
    ]
    return {"name": "compat", "ok": e2e["same_columns"], "summary": summary,
            "details": {"translation": translation, "in_process": in_process, "end_to_end": e2e}}


if __name__ == "__main__":  # the same as `python -m bench compat [--quick]`: one summary table for all
    from bench.__main__ import main as run_benchmarks

    sys.exit(run_benchmarks(["compat", *sys.argv[1:]]))
