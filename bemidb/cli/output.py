"""The CLI's own output: the version listing and the log setup (secrets redacted, one line per record)."""

from __future__ import annotations

import logging
import re
import sys
from importlib import metadata

from bemidb import __version__, console

BUNDLED = ["duckdb", "pyarrow", "pyiceberg", "pg8000", "sqlglot", "rich"]


def print_version() -> None:
    stdout = console.stdout
    stdout.print(f"bemidb {__version__}")
    stdout.print(f"python {sys.version.split()[0]} ({sys.platform})")
    for name in BUNDLED:
        try:
            stdout.print(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            stdout.print(f"{name} (missing)")


class _Redact(logging.Filter):
    """Replace every configured secret in log records by ***: secrets never reach a log line."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 3]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


class _OneLineFormatter(logging.Formatter):
    """Messages carry client-controlled text (user names, SQL): a newline in it must not forge a log line, an
    escape sequence must not reach the operator's terminal. Control characters are written escaped."""

    _CONTROL = re.compile(r"[\x00-\x1f\x7f]")

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = self._CONTROL.sub(lambda m: repr(m.group())[1:-1], record.message)
        return super().formatMessage(record)


LEVELS = {"ERROR": logging.ERROR, "WARN": logging.WARNING, "INFO": logging.INFO, "DEBUG": logging.DEBUG,
          "TRACE": logging.DEBUG}


def setup_logging(cfg) -> None:
    from bemidb.config import SETTINGS, url_password

    secrets = []
    for name, value in cfg.values.items():
        if SETTINGS[name].secret and isinstance(value, str) and value:
            secrets.append(value)
            if "://" in value and url_password(value):
                secrets.append(url_password(value))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_Redact(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS.get(cfg.log_level, logging.INFO))
    # Third-party libraries stay quiet unless we trace.
    for noisy in ("pyiceberg", "botocore", "urllib3", "fsspec"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if cfg.log_level == "TRACE" else logging.WARNING)
