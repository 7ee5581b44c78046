"""Run bemidb as a real process (`python -m bemidb ...`) from this checkout, with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent


def bemidb_env(env: dict | None = None) -> dict[str, str]:
    """This environment without any bemidb setting, plus `env`: a test's process sees only what it sets."""
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("BEMIDB_", "AWS_", "SOURCE_", "CATALOG_", "DESTINATION_"))}
    full_env.update(env or {})
    full_env["PYTHONPATH"] = str(REPO)
    return full_env


def popen_bemidb(*args: str, env: dict | None = None) -> subprocess.Popen:
    """Start `python -m bemidb ARGS` in the background (stderr piped), e.g. to kill it mid-run."""
    return subprocess.Popen([sys.executable, "-m", "bemidb", *args], env=bemidb_env(env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run_bemidb(*args: str, env: dict | None = None, timeout: float = 300, check: bool = False,
               cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m bemidb ARGS` as a real process, with a clean environment plus `env`."""
    result = subprocess.run([sys.executable, "-m", "bemidb", *args], env=bemidb_env(env), capture_output=True,
                            text=True, timeout=timeout, cwd=cwd or REPO)
    if check and result.returncode != 0:
        raise AssertionError(f"bemidb {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result
