"""What grants cost at query time: a row filter vs the same WHERE by hand, and SELECT 1 with vs without grants.

    python -m bench grants [--quick]      (or python -m bench.grants [--quick] [--sf 1])

TPC-H lineitem (SF1; SF0.1 with --quick) from DuckDB's dbgen (bench/tpch/generate.py) is written straight into
an Iceberg table, served by one `bemidb serve` with a users file:
  - `filtered` holds { table = "public.lineitem", rows = "l_shipmode = 'MAIL' AND l_quantity < 30" };
  - `granted` holds { table = "public.*" } (grants, no filter); BEMIDB_USER has no grants at all.
Then, after one warm-up run each, alternating (each first every other round), best of --repeat:
  1. an aggregate over lineitem as `filtered` vs the same aggregate with the WHERE written by hand as
     BEMIDB_USER (target ratio <= 1.05; both answers must be equal);
  2. 2,000 `SELECT 1` round trips (psycopg, simple protocol) as `granted` vs as BEMIDB_USER (target <= 1.1).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402

from bemidb.server.grants.users import Verifier  # noqa: E402
from bench.tpch.generate import generate  # noqa: E402
from tests.support.seed import write_table  # noqa: E402
from tests.support.server import start_server  # noqa: E402

FILTER = "l_shipmode = 'MAIL' AND l_quantity < 30"
AGGREGATE = ("SELECT l_returnflag, l_linestatus, count(*), sum(l_extendedprice), avg(l_discount) "
             "FROM lineitem{where} GROUP BY 1, 2 ORDER BY 1, 2")
LINEITEM = [("l_orderkey", pa.int32()), ("l_partkey", pa.int32()), ("l_suppkey", pa.int32()),
            ("l_linenumber", pa.int32()), ("l_quantity", pa.decimal128(15, 2)),
            ("l_extendedprice", pa.decimal128(15, 2)), ("l_discount", pa.decimal128(15, 2)),
            ("l_tax", pa.decimal128(15, 2)), ("l_returnflag", pa.string()), ("l_linestatus", pa.string()),
            ("l_shipdate", pa.date32()), ("l_commitdate", pa.date32()), ("l_receiptdate", pa.date32()),
            ("l_shipinstruct", pa.string()), ("l_shipmode", pa.string()), ("l_comment", pa.string())]
PASSWORD = "bench-pw"


def _lineitem(sf: float) -> pa.Table:
    path = generate(sf) / "lineitem.csv"
    names = [n for n, _ in LINEITEM]
    return pacsv.read_csv(path, read_options=pacsv.ReadOptions(column_names=names),
                          parse_options=pacsv.ParseOptions(delimiter="|"),
                          convert_options=pacsv.ConvertOptions(column_types=dict(LINEITEM)))


def _users_toml() -> str:
    verifier = Verifier.from_password(PASSWORD).text()
    return (f'[users.filtered]\npassword = "{verifier}"\n'
            f'grants = [{{ table = "public.lineitem", rows = "{FILTER}" }}]\n\n'
            f'[users.granted]\npassword = "{verifier}"\ngrants = [{{ table = "public.*" }}]\n')


def _best(conn, sql: str, repeat: int) -> tuple[float, list]:
    best, rows = float("inf"), []
    for _ in range(repeat):
        started = time.perf_counter()
        rows = conn.execute(sql).fetchall()
        best = min(best, time.perf_counter() - started)
    return best, rows


def _select_ones(conn, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        conn.execute("SELECT 1").fetchone()
    return time.perf_counter() - started


def run(sf: float, repeat: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bemidb-bench-grants-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        write_table(data_dir, "public", "lineitem", _lineitem(sf))
        users = Path(tmp) / "users.toml"
        users.write_text(_users_toml())
        server = start_server(data_dir, env={"BEMIDB_USER": "admin", "BEMIDB_PASSWORD": PASSWORD,
                                             "BEMIDB_USERS_FILE": str(users)}, log_level="WARN")
        try:
            with psycopg.connect(server.dsn("admin", PASSWORD), autocommit=True) as admin, \
                    psycopg.connect(server.dsn("filtered", PASSWORD), autocommit=True) as filtered, \
                    psycopg.connect(server.dsn("granted", PASSWORD), autocommit=True) as granted:
                by_filter, by_hand = float("inf"), float("inf")
                _best(filtered, AGGREGATE.format(where=""), 1)  # warm: Parquet footers, the user's policy
                _best(admin, AGGREGATE.format(where=f" WHERE {FILTER}"), 1)
                for round_ in range(repeat):  # alternating, each first every other round: same machine load
                    for which in ((0, 1) if round_ % 2 == 0 else (1, 0)):
                        if which == 0:
                            t, rows_filter = _best(filtered, AGGREGATE.format(where=""), 1)
                            by_filter = min(by_filter, t)
                        else:
                            t, rows_hand = _best(admin, AGGREGATE.format(where=f" WHERE {FILTER}"), 1)
                            by_hand = min(by_hand, t)
                same = rows_filter == rows_hand and len(rows_hand) > 0
                ones_grants, ones_plain = float("inf"), float("inf")
                _select_ones(granted, 200)
                _select_ones(admin, 200)
                for _ in range(repeat):
                    ones_grants = min(ones_grants, _select_ones(granted, 2000))
                    ones_plain = min(ones_plain, _select_ones(admin, 2000))
        finally:
            server.stop()
    filter_ratio, ones_ratio = by_filter / by_hand, ones_grants / ones_plain
    return {
        "name": "grants",
        "ok": same,
        "summary": [
            {"metric": f"row filter, lineitem SF{sf:g} aggregate", "value": by_filter, "unit": "s",
             "reference": f"same WHERE by hand {by_hand:.3f} s", "ratio": filter_ratio, "target": "<= 1.05",
             "ok": same},
            {"metric": "2,000 x SELECT 1 with grants", "value": ones_grants, "unit": "s",
             "reference": f"without grants {ones_plain:.3f} s", "ratio": ones_ratio, "target": "<= 1.1"},
        ],
        "details": {"sf": sf, "repeat": repeat},
    }


def main(quick: bool = False) -> dict:
    return run(0.1 if quick else 1.0, 3 if quick else 7)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sf", type=float)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    result = run(args.sf or (0.1 if args.quick else 1.0), args.repeat)
    for row in result["summary"]:
        print(f"{row['metric']}: {row['value']:.3f} s vs {row['reference']} -> ratio {row['ratio']:.3f} "
              f"(target {row['target']})")
    print("answers equal" if result["ok"] else "ANSWERS DIFFER")
    sys.exit(0 if result["ok"] else 1)
