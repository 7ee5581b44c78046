"""Shared by benchmarks that time bemidb as users run it: a bemidb.pyz freshly built from this checkout, and
the real python3 to run it with."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without bemidb's and shiv's settings (a benchmark sets the ones it means)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BEMIDB_", "SHIV_"))}
    env.update(extra)
    return env


def build(target: Path = RESULTS / "bemidb.pyz") -> float:
    """Build bemidb.pyz from this checkout into `target` (never a stale ./bemidb.pyz); the build's seconds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = subprocess.run([str(REPO / "build_zipapp.sh"), "-o", str(target)], env=clean_env(), cwd=REPO,
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"build_zipapp.sh failed: {result.stderr[-1500:]}")
    return time.perf_counter() - started


def real_python3() -> str:
    """The interpreter `python3` runs, past wrappers such as pyenv's shims (a shell script would be timed too)."""
    found = shutil.which("python3")
    if found:
        result = subprocess.run([found, "-c", "import sys; print(sys.executable)"], capture_output=True,
                                text=True, timeout=60)
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip()
    return getattr(sys, "_base_executable", sys.executable)
