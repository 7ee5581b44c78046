"""One entry point for every benchmark.

    python -m bench list                 the benchmarks found
    python -m bench all [--quick]        run them all, then print one summary table
    python -m bench NAME [NAME ...] [--quick]

A benchmark is any module or package `bench.NAME` with `main(quick: bool) -> dict`; the dict's shape is in
bench/README.md. Each runs in this process, one after the other; one that raises is reported as failed and the
others still run. Exit code 0 only when every benchmark says ok (its own correctness checks; never timings).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import pkgutil
import sys
import time
import traceback
from pathlib import Path

from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
LAST = ["tpch"]  # the long one runs last, so the quick ones report first

console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def discover() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules([str(BENCH)]) if not m.name.startswith("_")]
    return sorted(names, key=lambda n: (n in LAST, n))


def _takes_quick(function) -> bool:
    try:
        inspect.signature(function).bind(True)
    except (TypeError, ValueError):
        return False
    return True


def run_one(name: str, quick: bool) -> dict:
    started = time.perf_counter()
    try:
        module = importlib.import_module(f"bench.{name}")
        entry = getattr(module, "main", None)
        if not callable(entry) or not _takes_quick(entry):
            # A script with its own CLI main() is not a failure of the benchmark: say why it did not run.
            return {"name": name, "ok": True, "skipped": "no main(quick) -> dict (see bench/README.md)",
                    "summary": [], "seconds": 0.0}
        result = dict(module.main(quick) or {})
    except Exception as exc:  # one broken benchmark must not hide the others
        traceback.print_exc(file=sys.stderr)
        line = (str(exc).strip().splitlines() or [""])[0]
        result = {"ok": False, "error": f"{type(exc).__name__}: {line}", "summary": []}
    result.setdefault("name", name)
    result.setdefault("ok", True)
    result.setdefault("summary", [])
    result["seconds"] = time.perf_counter() - started
    return result


def _value(row: dict) -> str:
    value = row.get("value", "")
    if isinstance(value, float):
        value = f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    unit = row.get("unit", "")
    return f"{value} {unit}".strip() if value not in ("", None) else "-"


def _status(ok) -> str:
    return "" if ok is None else "[green]ok[/]" if ok else "[bold red]FAIL[/]"


def summary_table(results: list[dict], quick: bool) -> Table:
    table = Table(title=f"bench summary ({'quick' if quick else 'full'})")
    for heading in ("benchmark", "metric", "value", "reference", "ratio", "target", "status"):
        table.add_column(heading, justify="right" if heading in ("value", "ratio") else "left")
    for result in results:
        name = result["name"]
        if result.get("error"):
            table.add_row(name, f"[red]{result['error']}[/]", "", "", "", "", _status(False))
        elif result.get("skipped"):
            table.add_row(name, f"skipped: {result['skipped']}", "", "", "", "", "")
        for row in result["summary"]:
            ratio = row.get("ratio")
            table.add_row(name, str(row.get("metric", "")), _value(row), str(row.get("reference", "") or ""),
                          f"{ratio:.2f}" if isinstance(ratio, (int, float)) else str(ratio or ""),
                          str(row.get("target", "") or ""), _status(row.get("ok")))
        table.add_row(name, f"[dim]ran in {result['seconds']:.1f} s[/]", "", "", "", "", _status(result["ok"]))
        table.add_section()
    return table


def main(argv: list[str] | None = None) -> int:
    available = discover()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", metavar="NAME", help=f"all, list, or some of: {', '.join(available)}")
    parser.add_argument("--quick", action="store_true", help="small sizes (TPC-H SF0.1): the CI smoke variant")
    args = parser.parse_args(argv)
    if args.names == ["list"]:
        console.print("\n".join(available))
        return 0
    names = available if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in available]
    if unknown:
        console.print(f"[bold red]error:[/] unknown benchmark {', '.join(unknown)} (have: {', '.join(available)})")
        return 2
    results = [run_one(name, args.quick) for name in names]
    console.print(summary_table(results, args.quick))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"summary-{'quick' if args.quick else 'full'}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    console.print(f"[dim]saved {path}[/]")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
