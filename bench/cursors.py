"""Server-side cursor memory: a psycopg named cursor over a 10M-row result (1M with --quick), fetched in pages
of 10,000 rows, while the server's resident memory is sampled.

    python -m bench cursors [--quick]       (or python -m bench.cursors)

The reference is the server's RSS right after the first page (the cursor open, one Arrow batch held); the
figure is the peak RSS over the whole fetch divided by it: flat memory is ~1.0, a cursor that materialises its
result would grow with the row count (10M rows of (bigint, text) are ~300 MB as Arrow). Checked: every row
arrives once, in order. An empty data dir is enough (the rows come from generate_series).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import psycopg

from tests.support.server import start_server

PAGE = 10_000


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main(quick: bool) -> dict:
    rows = 1_000_000 if quick else 10_000_000
    with tempfile.TemporaryDirectory(prefix="bemidb-bench-cursors-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        server = start_server(data_dir, log_level="INFO")
        try:
            with psycopg.connect(server.dsn("bench")) as conn, conn.cursor(name="big") as cur:
                cur.execute(f"SELECT g, 'row ' || g::text FROM generate_series(1, {rows}) AS t(g)")
                first = cur.fetchmany(PAGE)
                after_first = peak = _rss_kb(server.pid)
                expected, ok, fetched = 1, True, 0
                page = first
                while page:
                    ok = ok and page[0][0] == expected and page[-1][0] == expected + len(page) - 1
                    expected += len(page)
                    fetched += len(page)
                    if fetched % (PAGE * 20) == 0:
                        peak = max(peak, _rss_kb(server.pid))
                    page = cur.fetchmany(PAGE)
                peak = max(peak, _rss_kb(server.pid))
        finally:
            server.stop()
    ok = ok and fetched == rows
    ratio = peak / after_first if after_first else 0.0
    return {"name": "cursors", "ok": ok, "summary": [
        {"metric": f"server peak RSS, {rows:,}-row cursor in {PAGE:,}-row pages", "value": peak / 1024,
         "unit": "MB", "reference": f"RSS after the first page {after_first / 1024:.0f} MB", "ratio": round(ratio, 2),
         "target": "<= 1.3", "ok": ok}],
        "details": {"rows": rows, "page": PAGE, "rss_after_first_kb": after_first, "rss_peak_kb": peak}}


if __name__ == "__main__":
    result = main("--quick" in sys.argv)
    for row in result["summary"]:
        print(row)
    sys.exit(0 if result["ok"] else 1)
