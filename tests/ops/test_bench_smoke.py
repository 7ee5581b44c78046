"""CI smoke for bench/: the benchmarks run end to end and their answers match. Never timings.

The TPC-H pipeline runs for real (DuckDB dbgen -> Postgres -> `bemidb sync postgres` -> `bemidb serve` ->
queries through psycopg, DuckDB in-process and Postgres) at SF0.01. CI's quick run does it once with 3 queries
(the char(n) schema: the whole pipeline, and the answers compared); all 22 queries and the SF0.1 quick variant
of `python -m bench` are slow-marked (this file took 186 s of a 12-minute suite when both ran every time).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal

import pytest

from bench.__main__ import run_one, summary_table
from bench.tpch import compare
from bench.tpch.runner import queries
from tests.support.commands import REPO

# --- result comparison: what counts as the same answer --------------------------------------------------


def test_compare_accepts_engine_representation_differences():
    postgres = [("FRANCE                   ", Decimal("1995"), Decimal("4.123456789012345678"), dt.date(1995, 1, 2))]
    bemidb = [("FRANCE", 1995, 4.123456789012346, dt.date(1995, 1, 2))]
    assert compare.difference(bemidb, postgres) is None


def test_compare_accepts_ties_in_another_order():
    assert compare.difference([("b", 1), ("a", 1)], [("a", 1), ("b", 1)]) is None


@pytest.mark.parametrize("got, want, message", [
    ([("a", 1)], [("a", 1), ("b", 2)], "1 rows, expected 2"),
    ([("a", 1.01)], [("a", 1.0)], "got ('a', 1.01)"),
    ([("a", None)], [("a", 0)], "expected ('a', 0.0)"),
    ([(dt.date(1995, 1, 3),)], [(dt.date(1995, 1, 2),)], "1995-01-03"),
])
def test_compare_reports_real_differences(got, want, message):
    assert message in compare.difference(got, want)


def test_the_22_queries_are_there():
    assert [name for name, _ in queries()] == [f"q{n:02d}" for n in range(1, 23)]


# --- the one entry point -----------------------------------------------------------------------------------


def test_entry_point_lists_and_rejects_unknown_names():
    listed = subprocess.run([sys.executable, "-m", "bench", "list"], capture_output=True, text=True, cwd=REPO)
    assert listed.returncode == 0 and "tpch" in listed.stdout.split()
    unknown = subprocess.run([sys.executable, "-m", "bench", "nope"], capture_output=True, text=True, cwd=REPO)
    assert unknown.returncode == 2 and "unknown benchmark nope" in unknown.stdout


def test_a_failing_benchmark_is_reported_not_raised(monkeypatch):
    import types

    broken = types.ModuleType("bench.broken_for_test")

    def main(quick):
        raise RuntimeError("disk full\nmore detail")

    broken.main = main
    monkeypatch.setitem(sys.modules, "bench.broken_for_test", broken)
    result = run_one("broken_for_test", quick=True)
    assert result["ok"] is False and result["error"] == "RuntimeError: disk full"
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(summary_table([result], quick=True))
    text = console.export_text()
    assert "RuntimeError: disk full" in text and "FAIL" in text


def test_a_script_without_the_convention_is_skipped_with_the_reason(monkeypatch):
    import types

    script = types.ModuleType("bench.cli_only_for_test")
    script.main = lambda: pytest.fail("a CLI main() must not be called by `python -m bench`")
    monkeypatch.setitem(sys.modules, "bench.cli_only_for_test", script)
    result = run_one("cli_only_for_test", quick=True)
    assert result["ok"] is True and "main(quick)" in result["skipped"]


# --- TPC-H end to end ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_tpch_tiny_runs_three_ways_and_bemidb_matches_postgres(pg):
    from bench.tpch.runner import run

    # varchar(n) for dss.ddl's char(n): the char(n) gap has its own test below.
    result = run(sf=0.01, repeat=1, cluster=pg, char_as_varchar=True)
    queries_run = result["details"]["queries"]
    assert len(queries_run) == 22
    failures = {q["query"]: q["check"] for q in queries_run if q["check"] != "ok"}
    assert failures == {}, failures
    assert all(q["wire_s"] is not None and q["duckdb_s"] is not None and q["postgres_s"] is not None
               for q in queries_run)
    assert result["ok"] is True
    assert result["details"]["rows_loaded"]["lineitem"] > 50_000
    # Most queries return rows even at this tiny size: the comparison is not between empty answers.
    assert sum(1 for q in queries_run if q["rows"]) >= 18


def test_tpch_with_char_n_columns_matches_postgres(pg):
    """The quick smoke: the whole pipeline once, three queries timed three ways, answers equal to Postgres's."""
    from bench.tpch.runner import run

    result = run(sf=0.01, repeat=1, cluster=pg, only=["q02", "q03", "q12"])
    queries_run = result["details"]["queries"]
    failures = {q["query"]: q["check"] for q in queries_run if q["check"] != "ok"}
    assert failures == {}, failures
    assert [q["query"] for q in queries_run] == ["q02", "q03", "q12"] and all(q["rows"] for q in queries_run)
    assert all(q["wire_s"] is not None and q["duckdb_s"] is not None and q["postgres_s"] is not None
               for q in queries_run)


@pytest.mark.slow
def test_bench_all_quick_runs_and_reports_ok():
    done = subprocess.run([sys.executable, "-m", "bench", "all", "--quick"], capture_output=True, text=True,
                          cwd=REPO, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "22/22" in done.stdout
    saved = sorted((REPO / "bench" / "results").glob("summary-quick-*.json"))[-1]
    assert all(r["ok"] for r in json.loads(saved.read_text()))
