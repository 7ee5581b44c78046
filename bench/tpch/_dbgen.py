"""Runs INSIDE the TPC-H generator venv (duckdb 1.5.5 + its tpch extension), never imported by bemidb.

    python _dbgen.py SF OUT_DIR   ->  OUT_DIR/<table>.csv ('|'-separated, no header), one per TPC-H table
"""

import os
import sys

import duckdb
import duckdb_extension_tpch

TABLES = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]


def main(sf: str, out_dir: str) -> None:
    extension = os.path.join(os.path.dirname(duckdb_extension_tpch.__file__),
                             "extensions", "v1.5.5", "tpch.duckdb_extension")
    con = duckdb.connect(config={"allow_unsigned_extensions": True})
    con.execute(f"LOAD '{extension}'")
    con.execute(f"CALL dbgen(sf={float(sf)})")
    for table in TABLES:
        path = os.path.join(out_dir, f"{table}.csv")
        con.execute(f"COPY {table} TO '{path}' (FORMAT csv, DELIMITER '|', HEADER false)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
