"""A saved TPC-H run (bench/results/tpch-*.json) as a Markdown table, for bench/README.md.

    python -m bench.tpch.report bench/results/tpch-sf1-....json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.tpch.engines import POSTGRES_TIMEOUT_S


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(result: dict) -> str:
    d = result["details"]
    t = d["totals"]
    schema = d.get("schema", "dss.ddl")
    lines = [f"TPC-H SF{d['sf']:g} ({schema} schema), best of {d['repeat']} for (1) and (2); seconds.", "",
             "| query | (1) bemidb wire | (2) DuckDB in-process | (3) Postgres | (1)/(2) | (3)/(1) | rows | check |",
             "|---|--:|--:|--:|--:|--:|--:|---|"]
    for q in d["queries"]:
        wire, duck = q["wire_s"], q["duckdb_s"]
        if q["postgres_timed_out"]:
            pg, pg_for_ratio, mark = f"timeout {POSTGRES_TIMEOUT_S} s", POSTGRES_TIMEOUT_S, ">="
        else:
            pg, pg_for_ratio, mark = _num(q["postgres_s"]), q["postgres_s"], ""
        ratio = _num(wire / duck, 2) if wire and duck else "-"
        pg_ratio = f"{mark}{pg_for_ratio / wire:,.0f}" if wire and pg_for_ratio else "-"
        lines.append(f"| {q['query']} | {_num(wire)} | {_num(duck)} | {pg} | {ratio} | {pg_ratio} | "
                     f"{q['rows'] if q['rows'] is not None else '-'} | {q['check']} |")
    mark = ">=" if t["postgres_timeouts"] else ""
    pg_total = "-" if t["postgres_s"] is None else f"{mark}{t['postgres_s']:.1f}"
    pg_ratio = "-" if t["postgres_over_wire"] is None else f"{mark}{t['postgres_over_wire']:,.0f}"
    lines.append(f"| **total** | **{t['wire_s']:.3f}** | **{t['duckdb_s']:.3f}** | **{pg_total}** | "
                 f"**{_num(t['wire_over_duckdb'], 2)}** | **{pg_ratio}** | | {t['matched']}/{t['queries']} match |")
    lines += ["", f"Load into Postgres (COPY) {d['load_postgres_s']:.1f} s; `bemidb sync postgres` {d['sync_s']:.1f} s "
                  f"({sum(d['rows_loaded'].values()):,} rows)."]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
