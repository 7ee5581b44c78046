"""Runs INSIDE the httpfs venv (duckdb 1.5.5 + duckdb-extension-httpfs), never imported by bemidb: DuckDB's own
S3 reader over the same files bemidb serves, the reference of `python -m bench s3`.

    python _httpfs_worker.py SETUP_JSON   then one query name per stdin line -> one JSON line per query

SETUP_JSON: {"endpoint": "127.0.0.1:PORT", "key": ..., "secret": ..., "region": ..., "files": {table: [s3://...]},
             "queries": {name: sql}}. Each answer line: {"seconds": s, "rows": [[...]]} or {"error": "..."}.
"""

import datetime as dt
import decimal
import json
import os
import sys
import time

import duckdb
import duckdb_extension_httpfs


def _plain(value):
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    return value


def main(setup_path: str) -> None:
    setup = json.loads(open(setup_path).read())
    extension = os.path.join(os.path.dirname(duckdb_extension_httpfs.__file__), "extensions", "v1.5.5",
                             "httpfs.duckdb_extension")
    con = duckdb.connect(config={"allow_unsigned_extensions": True})
    con.execute(f"LOAD '{extension}'")
    con.execute(f"""CREATE SECRET (TYPE s3, KEY_ID '{setup["key"]}', SECRET '{setup["secret"]}',
                    REGION '{setup["region"]}', ENDPOINT '{setup["endpoint"]}', URL_STYLE 'path',
                    USE_SSL false)""")
    for table, paths in setup["files"].items():
        listing = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
        con.execute(f'CREATE VIEW "{table}" AS SELECT * FROM read_parquet([{listing}])')
    print(json.dumps({"ready": duckdb.__version__}), flush=True)
    for line in sys.stdin:
        name = line.strip()
        if not name:
            continue
        started = time.perf_counter()
        try:
            rows = con.execute(setup["queries"][name]).fetchall()
            answer = {"seconds": time.perf_counter() - started,
                      "rows": [[_plain(v) for v in row] for row in rows]}
        except duckdb.Error as exc:
            answer = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
