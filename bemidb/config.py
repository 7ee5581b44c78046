"""Every setting in one table: its flag, its BemiDB environment variable, its default, its check.

Resolution order for each setting: command-line flag, else environment variable, else default.
A bad value raises ConfigError naming the setting; the CLI prints it on one line and exits 2.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse


class ConfigError(ValueError):
    """A setting has a value we cannot use. The message names the setting."""


# ---------------------------------------------------------------------------------------------------------
# Value parsers: each takes the raw string and returns the typed value or raises ValueError with a reason.


def _port(raw: str) -> int:
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise ValueError(f"{raw!r} is not a TCP port (0-65535)")
    return int(raw)


def _positive_int(raw: str) -> int:
    if not raw.isdigit() or int(raw) <= 0:
        raise ValueError(f"{raw!r} is not a positive integer")
    return int(raw)


def _count(raw: str) -> int:
    if not raw.isdigit():
        raise ValueError(f"{raw!r} is not a whole number (0 = off)")
    return int(raw)


def _seconds(raw: str) -> float:
    """'30', '30s', '500ms', '2min', '0' (= off)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h)?\s*", raw)
    if not m:
        raise ValueError(f"{raw!r} is not a duration (e.g. 30s, 500ms, 2min)")
    value = float(m.group(1))
    return value * {"ms": 0.001, "s": 1, "min": 60, "h": 3600, None: 1}[m.group(2)]


_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "k": 2**10, "m": 2**20, "g": 2**30}
MEMORY_LIMIT_DEFAULT = "50%"  # the rest is for Python, Arrow results, socket buffers and the OS


def _memory_limit(raw: str) -> int | float:
    """'1GB', '512MiB', '2G' (bytes, as int) or '60%' (a share of the memory limit, as a float in (0, 1])."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(%|[kmgt]i?b?|b)?\s*", raw, re.I)
    if not m:
        raise ValueError(f"{raw!r} is not a memory size (e.g. 1GB, 512MiB) or a share (e.g. 60%)")
    value, unit = float(m.group(1)), (m.group(2) or "").lower()
    if unit == "%":
        if not 0 < value <= 100:
            raise ValueError(f"{raw!r}: a share must be above 0% and at most 100%")
        return value / 100
    size = int(value * _SIZE_UNITS[unit])
    if size < 16 * 2**20:
        raise ValueError(f"{raw!r} is below the 16MiB DuckDB needs to run at all")
    return size


def available_memory() -> int:
    """The memory this process may use: the machine's, or the container's (cgroup v2 or v1) when smaller."""
    limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(path).read_text().strip()
        except OSError:
            continue
        if raw.isdigit():
            limit = min(limit, int(raw))
    return limit


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"ERROR", "WARN", "WARNING", "INFO", "DEBUG", "TRACE"}:
        raise ValueError(f"{raw!r} is not one of ERROR, WARN, INFO, DEBUG, TRACE")
    return {"WARNING": "WARN"}.get(level, level)


def _postgres_url(raw: str) -> str:
    parsed = urlparse(raw)
    # As in libpq, the host (and the rest) may be left to PGHOST, PGUSER... or the local Unix socket.
    if parsed.scheme not in ("postgres", "postgresql") or not parsed.netloc and not parsed.path:
        raise ValueError("expected a URL like postgresql://user:password@host:5432/dbname")
    try:
        parsed.port  # noqa: B018 - raises on a non-numeric port
    except ValueError as exc:
        raise ValueError(f"bad port in URL: {exc}") from None
    return raw


def _table_list(raw: str) -> list[str]:
    """Comma-separated schema.table or schema.* patterns."""
    items = [item.strip() for item in raw.split(",") if item.strip()]
    for item in items:
        if not re.fullmatch(r"[^.\s]+\.[^.\s]+", item):
            raise ValueError(f"{item!r} is not schema.table or schema.*")
    return items


def _cursor_columns(raw: str) -> str:
    """BemiDB's `schema.table=column,...` -> our `schema.table:column,...` (SOURCE_POSTGRES_INCREMENTAL's form)."""
    items = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        table, sep, column = item.rpartition("=")
        if not sep or not table.strip() or not column.strip():
            raise ValueError(f"{item!r} is not schema.table=cursor_column")
        items.append(f"{table.strip()}:{column.strip()}")
    return ",".join(items)


def _bool(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{raw!r} is not true or false")


def _date(raw: str) -> str:
    import datetime as dt

    try:
        dt.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a date in YYYY-MM-DD form") from None
    return raw


def _identifier(raw: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", raw):
        raise ValueError(f"{raw!r} is not a plain schema name (letters, digits, _)")
    return raw


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw.lower() not in choices:
            raise ValueError(f"{raw!r} is not one of {', '.join(choices)}")
        return raw.lower()

    return parse


def _http_url(raw: str) -> str:
    parsed = urlparse(raw)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError("expected an http:// or https:// URL")
    return raw.rstrip("/")


# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    name: str  # attribute name on Config
    env: str  # BemiDB environment variable
    help: str
    default: Any = None
    parse: Callable[[str], Any] = str
    secret: bool = False  # never printed, never logged
    flag: str | None = None  # defaults to --name-with-dashes

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        # Storage (every command)
        Setting("data_dir", "BEMIDB_DATA_DIR", "folder for the embedded catalog and local warehouse",
                "./bemidb-data"),
        Setting("catalog_database_url", "CATALOG_DATABASE_URL",
                "Postgres database holding the Iceberg SQL catalog (default: SQLite file in the data dir)",
                parse=_postgres_url, secret=True),
        Setting("aws_region", "AWS_REGION", "S3 region", "us-east-1"),
        Setting("aws_s3_bucket", "AWS_S3_BUCKET", "S3 bucket for the warehouse (default: local data dir)"),
        Setting("aws_access_key_id", "AWS_ACCESS_KEY_ID", "S3 access key id", secret=True),
        Setting("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "S3 secret access key", secret=True),
        Setting("aws_s3_endpoint", "AWS_S3_ENDPOINT",
                "S3-compatible endpoint, e.g. http://127.0.0.1:9000 or an R2 URL (default: AWS)"),
        Setting("log_level", "BEMIDB_LOG_LEVEL", "ERROR, WARN, INFO, DEBUG or TRACE", "INFO", _log_level),
        # Server
        Setting("host", "BEMIDB_HOST", "address to listen on", "0.0.0.0"),
        Setting("port", "BEMIDB_PORT", "port to listen on", 54321, _port),
        Setting("database", "BEMIDB_DATABASE", "the database name clients connect to", "bemidb"),
        Setting("user", "BEMIDB_USER", "user clients must log in as (default: any user, no password)", ""),
        Setting("password", "BEMIDB_PASSWORD", "password clients must give (enables authentication)", "",
                secret=True),
        Setting("auth_method", "BEMIDB_AUTH_METHOD", "password authentication: scram-sha-256 or md5",
                "scram-sha-256", _choice("scram-sha-256", "md5")),
        Setting("users_file", "BEMIDB_USERS_FILE",
                "TOML file of more users, each with a SCRAM password and grants (reloaded on SIGHUP)"),
        Setting("tls_cert", "BEMIDB_TLS_CERT", "PEM certificate file: enables TLS"),
        Setting("tls_key", "BEMIDB_TLS_KEY", "PEM private key file for --tls-cert"),
        Setting("max_connections", "BEMIDB_MAX_CONNECTIONS", "maximum concurrent client connections", 100,
                _positive_int),
        Setting("statement_timeout", "BEMIDB_STATEMENT_TIMEOUT",
                "default statement timeout (e.g. 30s, 2min; 0 = none)", 0.0, _seconds),
        Setting("memory_limit", "BEMIDB_MEMORY_LIMIT",
                "memory for query processing, e.g. 1GB or 60% of the machine's or container's memory; "
                "beyond it queries spill to a private temp folder", MEMORY_LIMIT_DEFAULT, _memory_limit),
        # Sync: common
        Setting("destination_schema", "DESTINATION_SCHEMA_NAME",
                "schema the synced tables land in (default: public for postgres, else the source name)",
                parse=_identifier, flag="--schema"),
        # Sync: postgres
        Setting("source_postgres_database_url", "SOURCE_POSTGRES_DATABASE_URL",
                "source Postgres URL", parse=_postgres_url, secret=True, flag="--database-url"),
        Setting("source_postgres_include_tables", "SOURCE_POSTGRES_INCLUDE_TABLES",
                "comma-separated schema.table or schema.* to sync (default: all)", [], _table_list,
                flag="--include"),
        Setting("source_postgres_exclude_tables", "SOURCE_POSTGRES_EXCLUDE_TABLES",
                "comma-separated schema.table or schema.* to skip", [], _table_list, flag="--exclude"),
        Setting("source_postgres_keep_schemas", "SOURCE_POSTGRES_KEEP_SCHEMAS",
                "keep the source's schemas: analytics.t is served as analytics.t, not public.analytics_t "
                "(BemiDB's naming, the default)", False, _bool, flag="--keep-schemas"),
        Setting("source_postgres_incremental", "SOURCE_POSTGRES_INCREMENTAL",
                "comma-separated schema.table:cursor_column for incremental sync", "",
                flag="--incremental"),
        Setting("source_postgres_threads", "SOURCE_POSTGRES_THREADS",
                "tables read at once, and parts of a big table; also the source connections a sync opens "
                "(default: CPU cores)", os.cpu_count() or 1, _positive_int, flag="--threads"),
        Setting("source_postgres_cursor_columns", "SOURCE_POSTGRES_CURSOR_COLUMNS",
                "BemiDB's form of --incremental: comma-separated schema.table=cursor_column", "",
                _cursor_columns, flag="--cursor-columns"),
        Setting("source_postgres_sync_mode", "SOURCE_POSTGRES_SYNC_MODE",
                "full_refresh, incremental (by --incremental cursors) or cdc (logical replication)",
                "full_refresh", _choice("full_refresh", "incremental", "cdc"), flag="--sync-mode"),
        Setting("source_postgres_replication_slot", "SOURCE_POSTGRES_REPLICATION_SLOT",
                "logical replication slot for --sync-mode cdc (default: bemidb_<schema>)", "",
                _identifier, flag="--slot-name"),
        Setting("source_postgres_publication", "SOURCE_POSTGRES_PUBLICATION",
                "publication for --sync-mode cdc (default: bemidb_<schema>)", "", _identifier,
                flag="--publication-name"),
        Setting("source_postgres_commit_interval", "SOURCE_POSTGRES_COMMIT_INTERVAL",
                "with --follow: commit at least this often (e.g. 10s)", 10.0, _seconds,
                flag="--commit-interval"),
        Setting("source_postgres_commit_changes", "SOURCE_POSTGRES_COMMIT_CHANGES",
                "with --follow: commit sooner once about this many rows changed in the source (0 = off)",
                100_000, _count, flag="--commit-changes"),
        # Sync: amplitude
        Setting("source_amplitude_api_key", "SOURCE_AMPLITUDE_API_KEY", "Amplitude API key", secret=True,
                flag="--api-key"),
        Setting("source_amplitude_secret_key", "SOURCE_AMPLITUDE_SECRET_KEY", "Amplitude secret key",
                secret=True, flag="--secret-key"),
        Setting("source_amplitude_start_date", "SOURCE_AMPLITUDE_START_DATE",
                "first day to export on the first sync (YYYY-MM-DD)", "2025-01-01", _date,
                flag="--start-date"),
        Setting("source_amplitude_api_url", "SOURCE_AMPLITUDE_API_URL", "Amplitude export API URL",
                "https://amplitude.com/api/2/export", _http_url, flag="--api-url"),
        # Sync: attio
        Setting("source_attio_api_access_token", "SOURCE_ATTIO_API_ACCESS_TOKEN", "Attio API access token",
                secret=True, flag="--api-access-token"),
        Setting("source_attio_api_url", "SOURCE_ATTIO_API_URL", "Attio API base URL",
                "https://api.attio.com/v2", _http_url, flag="--api-url"),
    ]
}

STORAGE = ["data_dir", "catalog_database_url", "aws_region", "aws_s3_bucket", "aws_access_key_id",
           "aws_secret_access_key", "aws_s3_endpoint", "log_level"]
SERVER = ["host", "port", "database", "user", "password", "auth_method", "users_file", "tls_cert", "tls_key",
          "max_connections", "statement_timeout", "memory_limit"]
SYNC_POSTGRES = ["destination_schema", "source_postgres_database_url", "source_postgres_include_tables",
                 "source_postgres_exclude_tables", "source_postgres_incremental", "source_postgres_keep_schemas",
                 "source_postgres_threads", "source_postgres_cursor_columns", "source_postgres_sync_mode",
                 "source_postgres_replication_slot", "source_postgres_publication", "source_postgres_commit_interval",
                 "source_postgres_commit_changes"]
SYNC_AMPLITUDE = ["destination_schema", "source_amplitude_api_key", "source_amplitude_secret_key",
                  "source_amplitude_start_date", "source_amplitude_api_url"]
SYNC_ATTIO = ["destination_schema", "source_attio_api_access_token", "source_attio_api_url"]


@dataclass
class Config:
    """Resolved settings. Attributes not resolved for a command keep their defaults."""

    values: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        if name in SETTINGS:
            return SETTINGS[name].default
        raise AttributeError(name)

    def redacted(self) -> dict[str, Any]:
        """Safe to print or log: secrets replaced by '***'."""
        return {k: ("***" if SETTINGS[k].secret and v else v) for k, v in self.values.items()}

    # Derived facts used by storage and server --------------------------------------------------------

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    # The embedded default's layout inside the data dir, spelled here only.
    @property
    def local_warehouse_path(self) -> Path:
        return self.data_path / "warehouse"

    @property
    def sqlite_catalog_path(self) -> Path:
        return self.data_path / "catalog.db"

    @property
    def uses_s3(self) -> bool:
        return bool(self.aws_s3_bucket)

    @property
    def warehouse(self) -> str:
        if self.uses_s3:
            return f"s3://{self.aws_s3_bucket}/iceberg"
        return self.local_warehouse_path.as_uri()

    @property
    def memory_limit_bytes(self) -> int:
        """BEMIDB_MEMORY_LIMIT in bytes: a share is taken of the machine's or container's memory."""
        limit = self.memory_limit
        if isinstance(limit, str):  # the default, unparsed
            limit = _memory_limit(limit)
        return int(limit * available_memory()) if isinstance(limit, float) else int(limit)

    @property
    def s3_endpoint_url(self) -> str | None:
        """AWS_S3_ENDPOINT with a scheme: BemiDB accepts host[:port] (http for localhost, else https)."""
        endpoint = self.aws_s3_endpoint
        if not endpoint:
            return None
        if "://" in endpoint:
            return endpoint.rstrip("/")
        local = endpoint.startswith(("localhost", "127.0.0.1", "[::1]"))
        return ("http://" if local else "https://") + endpoint.rstrip("/")


def add_arguments(parser: argparse.ArgumentParser, names: list[str]) -> None:
    """Add one flag per setting; --help shows the environment variable and default behind each."""
    group = parser.add_argument_group("settings (flag, else environment variable, else default)")
    for name in names:
        s = SETTINGS[name]
        default = "" if s.default in (None, "", []) or s.secret else f"; default {s.default}"
        switch = {"nargs": "?", "const": "true"} if s.parse is _bool else {}  # `--keep-schemas` alone = true
        group.add_argument(s.option, dest=name, metavar=s.env, default=None,
                           help=f"{s.help} [env {s.env}{default}]".replace("%", "%%"), **switch)


def resolve(args: argparse.Namespace | None, names: list[str], env: dict[str, str] | None = None) -> Config:
    """Flag, else environment variable, else default; then cross-setting checks."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for name in names:
        s = SETTINGS[name]
        raw = getattr(args, name, None) if args is not None else None
        source = s.option
        if raw is None:
            raw = env.get(s.env)
            source = s.env
        if raw is None or raw == "":
            values[name] = s.default
            continue
        try:
            values[name] = s.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    config = Config(values)
    _check(config, names)
    return config


def _check(config: Config, names: list[str]) -> None:
    if "aws_s3_bucket" in names and config.aws_s3_bucket:
        if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", config.aws_s3_bucket):
            raise ConfigError(f"AWS_S3_BUCKET: {config.aws_s3_bucket!r} is not a valid bucket name")
        if not (config.aws_access_key_id and config.aws_secret_access_key):
            raise ConfigError("AWS_S3_BUCKET is set but AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are missing")
    if "tls_cert" in names and bool(config.tls_cert) != bool(config.tls_key):
        raise ConfigError("BEMIDB_TLS_CERT and BEMIDB_TLS_KEY must be given together")
    if "tls_cert" in names and config.tls_cert:
        for setting in ("tls_cert", "tls_key"):
            if not Path(getattr(config, setting)).is_file():
                raise ConfigError(f"{SETTINGS[setting].env}: no such file {getattr(config, setting)!r}")
    if "source_postgres_keep_schemas" in names and config.source_postgres_keep_schemas \
            and config.destination_schema:
        raise ConfigError("SOURCE_POSTGRES_KEEP_SCHEMAS puts each table in its source schema: "
                          "DESTINATION_SCHEMA_NAME / --schema cannot be set with it")
    if "password" in names and config.password and not config.user:
        raise ConfigError("BEMIDB_PASSWORD is set but BEMIDB_USER is not")


def url_password(url: str) -> str | None:
    """The password part of a database URL, decoded (for redaction in logs)."""
    parsed = urlparse(url)
    return unquote(parsed.password) if parsed.password else None
