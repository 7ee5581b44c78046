"""A real `python -m bemidb serve` process on a free loopback port, for tests and benches.

    server = start_server(data_dir, env={"BEMIDB_USER": "u", "BEMIDB_PASSWORD": "p"})
    psycopg.connect(server.dsn("u", "p")); server.stop()

or, in a test, the `bemidb_server` fixture factory: `server = bemidb_server(data_dir, env=...)`; every server it
started is stopped at the end of the test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.ports import free_port

REPO = Path(__file__).resolve().parent.parent.parent
_CLEARED = ("BEMIDB_", "AWS_", "SOURCE_", "CATALOG_", "DESTINATION_")


class ServerProcess:
    def __init__(self, process: subprocess.Popen, port: int, log_path: Path, database: str):
        self.process = process
        self.port = port
        self.host = "127.0.0.1"
        self.log_path = log_path
        self.database = database

    @property
    def pid(self) -> int:
        return self.process.pid

    def dsn(self, user: str = "bemidb", password: str | None = None, **params: str) -> str:
        """A libpq URL: postgresql://user[:password]@127.0.0.1:port/database[?params] (sslmode=disable default)."""
        auth = user + (f":{password}" if password is not None else "")
        params.setdefault("sslmode", "disable")
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"postgresql://{auth}@{self.host}:{self.port}/{self.database}?{query}"

    def conninfo(self, user: str = "bemidb", password: str | None = None) -> dict:
        """Keyword arguments for pg8000 / asyncpg style connect(host=, port=, user=, password=, database=)."""
        return {"host": self.host, "port": self.port, "user": user, "password": password,
                "database": self.database}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def rss_kb(self) -> dict[str, int]:
        """VmRSS and VmHWM of the server process, in kB."""
        values = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
        return values

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM (graceful shutdown), then SIGKILL if it does not exit in time; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def start_server(data_dir: Path | str, env: dict | None = None, extra_args: list[str] | tuple = (),
                 timeout: float = 60, database: str = "bemidb", log_level: str = "DEBUG",
                 command: list[str] | None = None) -> ServerProcess:
    """Launch the server as a real subprocess with a clean environment plus `env`; wait until it accepts.
    `command` runs another bemidb than this checkout's (e.g. [path to bemidb.pyz]).

    Ready means the server itself said so (its "serving" log line), not just that something accepts on the
    port: a port picked free can be taken by another process before the server, which opens its catalog
    first, binds it. Then the server exits with "Address already in use" and is started on another port."""
    for attempt in range(3):
        server = _launch(data_dir, env, extra_args, database, log_level, command)
        try:
            _wait_ready(server, timeout, log_level)
            return server
        except _PortTaken:
            if attempt == 2:
                raise RuntimeError(f"bemidb serve found its port taken 3 times:\n{server.log()[-3000:]}") from None
    raise AssertionError("unreachable")


class _PortTaken(Exception):
    pass


def _launch(data_dir, env, extra_args, database: str, log_level: str, command) -> ServerProcess:
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(_CLEARED)}
    full_env.update({"BEMIDB_DATA_DIR": str(data_dir), "BEMIDB_HOST": "127.0.0.1", "BEMIDB_PORT": str(port),
                     "BEMIDB_DATABASE": database, "BEMIDB_LOG_LEVEL": log_level})
    full_env.update(env or {})
    full_env["PYTHONPATH"] = str(REPO)
    log_path = Path(tempfile.mkstemp(prefix="bemidb-server-", suffix=".log")[1])
    command = command or [sys.executable, "-m", "bemidb"]
    process = subprocess.Popen([*command, "serve", *extra_args], env=full_env,
                               stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, cwd=REPO)
    return ServerProcess(process, int(full_env["BEMIDB_PORT"]), log_path, full_env["BEMIDB_DATABASE"])


def _wait_ready(server: ServerProcess, timeout: float, log_level: str) -> None:
    says_when_ready = log_level.upper() in ("TRACE", "DEBUG", "INFO")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            if "Address already in use" in server.log():
                raise _PortTaken()
            raise RuntimeError(f"bemidb serve exited {server.process.returncode}:\n{server.log()[-3000:]}")
        if says_when_ready and "bemidb serving database" not in server.log():
            time.sleep(0.1)
            continue
        try:
            with socket.create_connection((server.host, server.port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"bemidb serve did not accept connections in {timeout}s:\n{server.log()[-3000:]}")


@pytest.fixture
def bemidb_server():
    """Factory fixture: bemidb_server(data_dir, env=..., extra_args=...) -> ServerProcess, stopped after."""
    started: list[ServerProcess] = []

    def factory(data_dir, env=None, extra_args=(), **kwargs) -> ServerProcess:
        server = start_server(data_dir, env=env, extra_args=extra_args, **kwargs)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()
