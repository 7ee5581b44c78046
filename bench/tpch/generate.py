"""TPC-H data with DuckDB's own dbgen, offline: a venv of its own (duckdb 1.5.5 + duckdb-extension-tpch),
because bemidb's duckdb 2.x has no tpch extension wheel. Data is cached per scale factor under bench/results/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "results"
VENV = RESULTS / "tpch-venv"
WORKER = Path(__file__).resolve().parent / "_dbgen.py"
PINS = ["duckdb==1.5.5", "duckdb-extension-tpch==1.5.5"]
TABLES = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]


def venv_python(venv: Path = VENV, pins: list[str] = PINS) -> Path:
    """The python of a venv of its own holding `pins` (DuckDB 1.5.5 and its extension wheels), made once."""
    python = venv / "bin" / "python"
    if python.exists():
        return python
    # Built aside and renamed into place: two runs at once (a test and a bench) never see half a venv.
    building = venv.with_name(f"{venv.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    subprocess.run(["python3", "-m", "venv", str(building)], check=True, capture_output=True)
    result = subprocess.run([str(building / "bin" / "python"), "-m", "pip", "install", "--quiet", *pins],
                            capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        raise RuntimeError(f"could not install {' '.join(pins)} into a venv:\n{result.stderr[-2000:]}")
    # Renaming a venv is safe here: only its scripts hard-code the folder, and we only ever run bin/python.
    try:
        building.rename(venv)
    except OSError:  # another run won the race
        shutil.rmtree(building, ignore_errors=True)
    return python


def data_dir(sf: float) -> Path:
    return RESULTS / "tpch" / f"sf{sf:g}"


def generate(sf: float) -> Path:
    """CSV files for every TPC-H table at scale factor sf ('|'-separated); reused when already generated."""
    out = data_dir(sf)
    if (out / ".complete").exists():
        return out
    # Generated aside and renamed into place, so a concurrent run never reads half-written files.
    building = out.with_name(f"{out.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    subprocess.run([str(venv_python()), str(WORKER), f"{sf:g}", str(building)], check=True)
    (building / ".complete").touch()
    shutil.rmtree(out, ignore_errors=True)  # a leftover without .complete
    try:
        building.rename(out)
    except OSError:  # another run finished first: use its files
        shutil.rmtree(building, ignore_errors=True)
    return out


if __name__ == "__main__":
    print(generate(float(sys.argv[1]) if len(sys.argv) > 1 else 0.1))
