"""The run-time settings (Postgres GUCs) the server knows: names, defaults, value parsers, descriptions.

Declarations only, on server's ground floor, so that the SQL layer (sql/session_settings.py: SET/SHOW/RESET per
session) and the catalog (pg_settings, version functions) both read them.

Postgres semantics kept: names are case-insensitive, SHOW prints the canonical form (DateStyle 'ISO, MDY',
booleans on/off, statement_timeout with its unit), custom `ext.name` placeholders are accepted, unknown plain
names fail with 42704, read-only ones with 55P02, bad values with 22023. The settings that change results
(TimeZone, search_path) are pushed into the session's DuckDB cursor by `apply`, only when they changed.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from typing import Any

from bemidb.server.errors import PgError

SERVER_VERSION = "16.4"
SERVER_VERSION_NUM = "160004"


class SettingError(PgError):
    """A SET/SHOW/RESET the server refuses: already an ErrorResponse with its SQLSTATE."""


# ---------------------------------------------------------------------------------------------------------
# Value normalisers: raw SET value -> the text SHOW prints. Raise ValueError for a value Postgres refuses.

_TRUE = {"on", "true", "yes", "1", "t", "y"}
_FALSE = {"off", "false", "no", "0", "f", "n"}


def _bool(raw: str) -> str:
    low = raw.strip().lower()
    if low in _TRUE:
        return "on"
    if low in _FALSE:
        return "off"
    raise ValueError


def _text(raw: str) -> str:
    return raw


_UNIT_MS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


def duration_ms(raw: str) -> int:
    """'5000' (ms), '30s', '2min', '1h', '0' -> milliseconds."""
    m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*", raw)
    if not m:
        raise ValueError
    ms = round(float(m.group(1)) * _UNIT_MS[m.group(2) or "ms"])
    if ms < 0:
        raise ValueError
    return ms


def duration_text(raw: str) -> str:
    """Postgres prints a time GUC in the largest unit that divides it exactly: 30000 -> 30s, 0 -> 0."""
    ms = duration_ms(raw)
    if ms == 0:
        return "0"
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _int(raw: str) -> str:
    try:
        return str(int(raw.strip()))
    except ValueError:
        raise ValueError from None


def _extra_float_digits(raw: str) -> str:
    value = int(_int(raw))
    if not -15 <= value <= 3:
        raise ValueError
    return str(value)


def _one_of(*choices: str):
    def parse(raw: str) -> str:
        low = raw.strip().lower()
        for choice in choices:
            if choice.lower() == low:
                return choice
        raise ValueError

    return parse


def _client_encoding(raw: str) -> str:
    # Everything we send is UTF-8; Postgres would transcode, we refuse rather than send mojibake.
    if raw.strip().lower().replace("-", "").replace("_", "") in ("utf8", "unicode"):
        return "UTF8"
    raise ValueError


def _datestyle(raw: str) -> str:
    """'iso', 'ISO, DMY', 'german' ... -> 'ISO, MDY' form. Output style and field order are independent."""
    style, order = "ISO", "MDY"
    for part in (p.strip().lower() for p in raw.split(",")):
        if part in ("iso", "sql", "postgres", "german"):
            style = {"iso": "ISO", "sql": "SQL", "postgres": "Postgres", "german": "German"}[part]
            if part == "german":
                order = "DMY"
        elif part in ("mdy", "us", "noneuropean", "non-european"):
            order = "MDY"
        elif part in ("dmy", "euro", "european"):
            order = "DMY"
        elif part == "ymd":
            order = "YMD"
        elif part != "default":
            raise ValueError
    return f"{style}, {order}"


def _timezone(raw: str) -> str:
    value = raw.strip()
    low = value.lower()
    if low in ("utc", "gmt", "z", "zulu", "universal"):
        return "UTC" if low != "gmt" else "GMT"
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, IsADirectoryError):
        # Case-insensitive match like Postgres ('america/new_york' works there).
        for name in _zone_names():
            if name.lower() == low:
                return name
        raise ValueError from None
    return value


_ZONES: list[str] = []


def _zone_names() -> list[str]:
    if not _ZONES:
        _ZONES.extend(sorted(zoneinfo.available_timezones()))
    return _ZONES


def _search_path(raw: str) -> str:
    """Postgres keeps the list as written, quoted names included: '"$user", public'."""
    items = [item.strip() for item in split_list(raw) if item.strip()]
    return ", ".join(items)


def split_list(raw: str) -> list[str]:
    out, current, quoted = [], "", False
    for ch in raw:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            out.append(current)
            current = ""
        else:
            current += ch
    out.append(current)
    return out


# ---------------------------------------------------------------------------------------------------------
# The settings table: canonical name, default, parser, whether a change is reported (ParameterStatus),
# whether clients may change it, and the one-line description SHOW ALL / pg_settings print.

@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    parse: Any = _text
    report: bool = False  # GUC_REPORT: sent as ParameterStatus at startup and after each change
    read_only: bool = False
    description: str = ""
    category: str = "Client Connection Defaults"
    vartype: str = "string"


_SETTINGS = [
    Setting("application_name", "", _text, True, description="Sets the application name to be reported."),
    Setting("client_encoding", "UTF8", _client_encoding, True,
            description="Sets the client's character set encoding."),
    Setting("DateStyle", "ISO, MDY", _datestyle, True,
            description="Sets the display format for date and time values."),
    Setting("default_transaction_read_only", "on", _bool, True, vartype="bool",
            description="Sets the default read-only status of new transactions."),
    Setting("in_hot_standby", "off", _bool, True, True, vartype="bool",
            description="Shows whether hot standby is currently active."),
    Setting("integer_datetimes", "on", _bool, True, True, vartype="bool",
            description="Shows whether datetimes are integer based."),
    Setting("IntervalStyle", "postgres",
            _one_of("postgres", "postgres_verbose", "sql_standard", "iso_8601"), True, vartype="enum",
            description="Sets the display format for interval values."),
    Setting("is_superuser", "off", _bool, True, True, vartype="bool",
            description="Shows whether the current user is a superuser."),
    Setting("server_encoding", "UTF8", _text, True, True, description="Shows the server (database) encoding."),
    Setting("server_version", SERVER_VERSION, _text, True, True, description="Shows the server version."),
    Setting("server_version_num", SERVER_VERSION_NUM, _text, False, True, vartype="integer",
            description="Shows the server version as an integer."),
    Setting("session_authorization", "bemidb", _text, True, True,
            description="Sets the session user name."),
    Setting("standard_conforming_strings", "on", _bool, True, vartype="bool",
            description="Causes '...' strings to treat backslashes literally."),
    Setting("TimeZone", "UTC", _timezone, True,
            description="Sets the time zone for displaying and interpreting time stamps."),
    Setting("search_path", '"$user", public', _search_path,
            description="Sets the schema search order for names that are not schema-qualified."),
    Setting("statement_timeout", "0", duration_text, vartype="integer",
            description="Sets the maximum allowed duration of any statement."),
    Setting("lock_timeout", "0", duration_text, vartype="integer",
            description="Sets the maximum allowed duration of any wait for a lock."),
    Setting("idle_in_transaction_session_timeout", "0", duration_text, vartype="integer",
            description="Sets the maximum allowed idle time between queries, when in a transaction."),
    Setting("extra_float_digits", "1", _extra_float_digits, vartype="integer",
            description="Sets the number of digits displayed for floating-point values."),
    Setting("client_min_messages", "notice",
            _one_of("debug5", "debug4", "debug3", "debug2", "debug1", "log", "notice", "warning", "error"),
            vartype="enum", description="Sets the message levels that are sent to the client."),
    Setting("transaction_isolation", "read committed",
            _one_of("serializable", "repeatable read", "read committed", "read uncommitted"), vartype="enum",
            description="Sets the current transaction's isolation level."),
    Setting("default_transaction_isolation", "read committed",
            _one_of("serializable", "repeatable read", "read committed", "read uncommitted"), vartype="enum",
            description="Sets the transaction isolation level of each new transaction."),
    Setting("transaction_read_only", "on", _bool, vartype="bool",
            description="Sets the current transaction's read-only status."),
    Setting("bytea_output", "hex", _one_of("hex", "escape"), vartype="enum",
            description="Sets the output format for bytea."),
    Setting("lc_messages", "C.UTF-8", description="Sets the language in which messages are displayed."),
    Setting("lc_monetary", "C.UTF-8", description="Sets the locale for formatting monetary amounts."),
    Setting("lc_numeric", "C.UTF-8", description="Sets the locale for formatting numbers."),
    Setting("lc_time", "C.UTF-8", description="Sets the locale for formatting date and time values."),
    Setting("lc_collate", "C.UTF-8", read_only=True, description="Shows the collation order locale."),
    Setting("lc_ctype", "C.UTF-8", read_only=True, description="Shows the character classification locale."),
    Setting("max_identifier_length", "63", read_only=True, vartype="integer",
            description="Shows the maximum identifier length."),
    Setting("max_connections", "100", read_only=True, vartype="integer",
            description="Sets the maximum number of concurrent connections."),
    Setting("max_index_keys", "32", read_only=True, vartype="integer",
            description="Shows the maximum number of index keys."),
    Setting("block_size", "8192", read_only=True, vartype="integer", description="Shows the size of a disk block."),
    Setting("data_directory_mode", "0700", read_only=True, vartype="integer",
            description="Shows the mode of the data directory."),
    Setting("default_tablespace", "", description="Sets the default tablespace to create tables in."),
    Setting("row_security", "on", _bool, vartype="bool", description="Enable row security."),
    Setting("check_function_bodies", "on", _bool, vartype="bool",
            description="Check routine bodies during CREATE FUNCTION and CREATE PROCEDURE."),
    Setting("synchronous_commit", "on", description="Sets the current transaction's synchronization level."),
    Setting("work_mem", "4MB", vartype="integer", description="Sets the maximum memory to be used for query workspaces."),
    Setting("jit", "off", _bool, vartype="bool", description="Allow JIT compilation."),
    Setting("timezone_abbreviations", "Default", description="Selects a file of time zone abbreviations."),
    Setting("ssl", "off", _bool, read_only=True, vartype="bool", description="Enables SSL connections."),
    Setting("password_encryption", "scram-sha-256", description="Chooses the algorithm for encrypting passwords."),
    Setting("geqo", "on", _bool, vartype="bool", description="Enables genetic query optimization."),
    Setting("enable_seqscan", "on", _bool, vartype="bool", description="Enables the planner's use of sequential-scan plans."),
    Setting("xmloption", "content", _one_of("content", "document"), vartype="enum",
            description="Sets whether XML data in implicit parsing and serialization operations is to be "
                        "considered as documents or content fragments."),
    Setting("backslash_quote", "safe_encoding", description="Sets whether \"\\'\" is allowed in string literals."),
    Setting("escape_string_warning", "on", _bool, vartype="bool",
            description="Warn about backslash escapes in ordinary string literals."),
    Setting("array_nulls", "on", _bool, vartype="bool", description="Enable input of NULL elements in arrays."),
    Setting("default_table_access_method", "heap", description="Sets the default table access method for new tables."),
    Setting("default_text_search_config", "pg_catalog.english",
            description="Sets default text search configuration."),
    Setting("shared_buffers", "128MB", read_only=True, vartype="integer",
            description="Sets the number of shared memory buffers used by the server."),
    Setting("max_parallel_workers_per_gather", "2", _int, vartype="integer",
            description="Sets the maximum number of parallel processes per executor node."),
    Setting("effective_cache_size", "4GB", vartype="integer",
            description="Sets the planner's assumption about the total size of the data caches."),
    Setting("wal_level", "replica", read_only=True, vartype="enum", description="Sets the level of information "
            "written to the WAL."),
    Setting("cluster_name", "", read_only=True, description="Sets the name of the cluster, which is included in "
            "the process title."),
    Setting("listen_addresses", "*", read_only=True, description="Sets the host name or IP address(es) to "
            "listen to."),
    Setting("port", "5432", read_only=True, vartype="integer", description="Sets the TCP port the server "
            "listens on."),
    Setting("allow_system_table_mods", "off", _bool, read_only=True, vartype="bool",
            description="Allows modifications of the structure of system tables."),
    Setting("log_timezone", "UTC", read_only=True, description="Sets the time zone to use in log messages."),
]
SETTINGS: dict[str, Setting] = {s.name.lower(): s for s in _SETTINGS}

# SET TIME ZONE ... and friends arrive under other spellings.
_ALIASES = {"time zone": "timezone", "time_zone": "timezone", "names": "client_encoding",
            "session characteristics as transaction isolation level": "default_transaction_isolation",
            "transaction isolation level": "transaction_isolation"}

_CUSTOM = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)+$")


def canonical_name(name: str) -> str:
    """The name SHOW uses as its column header ('TimeZone', 'DateStyle', or the custom name as given)."""
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    setting = SETTINGS.get(key)
    return setting.name if setting else key


def lookup(name: str) -> tuple[str, Setting | None]:
    """A SET/SHOW/RESET name -> (its key, its declaration); a custom `ext.name` has no declaration. Raises
    SettingError 42704 for an unknown plain name."""
    key = name.strip().lower()
    if key.startswith('"') and key.endswith('"'):
        key = key[1:-1]
    key = _ALIASES.get(key, key)
    if key in SETTINGS:
        return key, SETTINGS[key]
    if _CUSTOM.match(key):
        return key, None
    raise SettingError("42704", f'unrecognized configuration parameter "{name.strip()}"')
