"""bemidb.pyz: its size, the first run's unpack time and the warm start, against references from the same run.

    python -m bench zipapp [--quick]       (or python -m bench.zipapp [--quick])

  size        - the archive's bytes, and what it unpacks to;
  first run   - `bemidb.pyz --help` with an empty SHIV_ROOT (shiv unpacks site-packages and compiles .pyc),
                vs zipfile.extractall of the same archive into an empty folder (the bare copy, no compile);
  warm --help - `bemidb.pyz --help` once unpacked (median of several), vs `python3 -c pass` (the interpreter's
                own start) and vs `python -m bemidb --help` from the venv (the same CLI, not zipped).
Target from issue 9: warm `--help` <= 0.5 s. Correctness checked: --help and version work from the pyz.
Full mode builds a fresh bemidb.pyz from this checkout (and times the build); quick mode uses ./bemidb.pyz
as it is, and is skipped when there is none.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from bench._pyz import RESULTS, build, clean_env, real_python3

REPO = Path(__file__).resolve().parent.parent
WARM_TARGET_S = 0.5


def _env(**extra: str) -> dict[str, str]:
    return clean_env(**extra)


def _timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    return time.perf_counter() - started, result


def _median(command: list[str], env: dict[str, str], cwd: Path, runs: int) -> float:
    return statistics.median(_timed(command, env, cwd)[0] for _ in range(runs))


def _get_pyz(quick: bool) -> tuple[Path | None, float | None]:
    if quick:
        existing = REPO / "bemidb.pyz"
        return (existing, None) if existing.exists() else (None, None)
    target = RESULTS / "bemidb.pyz"
    return target, build(target)


def main(quick: bool = False) -> dict:
    pyz, build_seconds = _get_pyz(quick)
    if pyz is None:
        return {"ok": True, "skipped": "no ./bemidb.pyz (run ./build_zipapp.sh, or the full mode builds one)"}
    runs = 5 if quick else 15
    python = real_python3()
    scratch = Path(tempfile.mkdtemp(prefix="bemidb-bench-zipapp-"))
    try:
        with zipfile.ZipFile(pyz) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
            started = time.perf_counter()
            archive.extractall(scratch / "extract")
            extract_seconds = time.perf_counter() - started
        shutil.rmtree(scratch / "extract")

        cache = scratch / "shiv"
        first_seconds, first = _timed([python, str(pyz), "--help"], _env(SHIV_ROOT=str(cache)), scratch)
        warm_env = _env(SHIV_ROOT=str(cache))
        _timed([python, str(pyz), "--help"], warm_env, scratch)  # settle: OS file cache, .pyc written
        warm = _median([python, str(pyz), "--help"], warm_env, scratch, runs)
        bare = _median([python, "-c", "pass"], _env(), scratch, runs)
        venv = _median([sys.executable, "-m", "bemidb", "--help"], _env(PYTHONPATH=str(REPO)), scratch, runs)
        version = subprocess.run([python, str(pyz), "version"], env=warm_env, capture_output=True, text=True,
                                 timeout=120)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    works = first.returncode == 0 and "sync" in first.stdout and "duckdb " in version.stdout
    summary = [
        {"metric": "pyz size", "value": pyz.stat().st_size / 1e6, "unit": "MB",
         "reference": f"unpacks to {unpacked / 1e6:.0f} MB", "ratio": pyz.stat().st_size / unpacked},
        {"metric": "first run (unpack + compile)", "value": first_seconds, "unit": "s",
         "reference": f"zipfile.extractall {extract_seconds:.2f} s", "ratio": first_seconds / extract_seconds,
         "ok": works},
        {"metric": "warm --help", "value": warm, "unit": "s", "reference": f"python3 -c pass {bare:.3f} s",
         "ratio": warm / bare, "target": f"<= {WARM_TARGET_S} s"},
        {"metric": "warm --help vs not zipped", "value": warm, "unit": "s",
         "reference": f"python -m bemidb --help {venv:.3f} s", "ratio": warm / venv},
    ]
    if build_seconds is not None:
        summary.append({"metric": "build_zipapp.sh", "value": build_seconds, "unit": "s"})
    return {"ok": works, "summary": summary,
            "details": {"pyz": str(pyz), "bytes": pyz.stat().st_size, "unpacked_bytes": unpacked,
                        "first_run_s": first_seconds, "extractall_s": extract_seconds, "warm_help_s": warm,
                        "python_pass_s": bare, "venv_help_s": venv, "runs": runs, "build_s": build_seconds,
                        "warm_target_met": warm <= WARM_TARGET_S}}


if __name__ == "__main__":  # the same as `python -m bench zipapp [--quick]`: one summary table for all
    from bench.__main__ import main as run_benchmarks

    sys.exit(run_benchmarks(["zipapp", *sys.argv[1:]]))
