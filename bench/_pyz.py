"""Shared by benchmarks that time bemidb as users run it: a bemidb.pyz freshly built from this checkout, and
the real python3 to run it with."""

from __future__ import annotations

import os
import re
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


def unpack(pyz: Path, shiv_root: Path, python: str) -> None:
    """Build `pyz` from this checkout and run it once, so that shiv's unpacking is not in any timed run."""
    build(pyz)
    shutil.rmtree(shiv_root, ignore_errors=True)
    result = subprocess.run([python, str(pyz), "version"], env=clean_env(SHIV_ROOT=str(shiv_root)),
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"bemidb.pyz does not run: {result.stderr[-1000:]}")


def timed_sync(python: str, pyz: Path, shiv_root: Path, url: str, data_dir: str, *args: str) -> tuple[float, str]:
    """One `bemidb.pyz sync postgres --include public.t` run, timed as a user's cron step sees it: the whole
    process. Returns its seconds and its stderr."""
    env = {k: v for k, v in clean_env(SHIV_ROOT=str(shiv_root)).items()
           if not k.startswith(("AWS_", "SOURCE_", "CATALOG_", "DESTINATION_"))}
    os.sync()  # the previous run's (or copy's) dirty pages are written back now, not during this run
    started = time.perf_counter()
    result = subprocess.run([python, str(pyz), "sync", "postgres", "--database-url", url, "--data-dir", data_dir,
                             "--include", "public.t", *args], env=env, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"sync failed: {result.stderr[-2000:]}")
    return seconds, result.stderr


def table_seconds(stderr: str) -> float:
    """The sync's own time for public.t (snapshot, copy or changes, commit), from its `public.t: done` line:
    without the interpreter start and imports, which cost the same to every run."""
    match = re.search(r"public\.t: done, .* in ([0-9.]+)s", stderr)
    if match is None:
        raise RuntimeError(f"no timing line in the sync's output: {stderr[-500:]}")
    return float(match.group(1))
