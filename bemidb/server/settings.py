"""Per-session run-time settings (Postgres GUCs): SET / SHOW / RESET, ParameterStatus, and the push into DuckDB.

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

SERVER_VERSION = "16.4"
SERVER_VERSION_NUM = "160004"


class SettingError(Exception):
    """A SET/SHOW/RESET the server refuses; `sqlstate` goes into the ErrorResponse."""

    def __init__(self, sqlstate: str, message: str):
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message


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


def _duration_ms(raw: str) -> int:
    """'5000' (ms), '30s', '2min', '1h', '0' -> milliseconds."""
    m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*", raw)
    if not m:
        raise ValueError
    ms = round(float(m.group(1)) * _UNIT_MS[m.group(2) or "ms"])
    if ms < 0:
        raise ValueError
    return ms


def _duration(raw: str) -> str:
    """Postgres prints a time GUC in the largest unit that divides it exactly: 30000 -> 30s, 0 -> 0."""
    ms = _duration_ms(raw)
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
    items = [item.strip() for item in _split_list(raw) if item.strip()]
    return ", ".join(items)


def _split_list(raw: str) -> list[str]:
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
    Setting("statement_timeout", "0", _duration, vartype="integer",
            description="Sets the maximum allowed duration of any statement."),
    Setting("lock_timeout", "0", _duration, vartype="integer",
            description="Sets the maximum allowed duration of any wait for a lock."),
    Setting("idle_in_transaction_session_timeout", "0", _duration, vartype="integer",
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


def _sql_string(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


class SessionSettings:
    """The GUCs of one client session. Values are stored already normalised (as SHOW prints them)."""

    def __init__(self, user: str = "bemidb", database: str = "bemidb", statement_timeout: str | None = None,
                 is_superuser: bool = False, read_only: bool = True):
        self._defaults: dict[str, str] = {key: s.default for key, s in SETTINGS.items()}
        self._defaults["session_authorization"] = user
        self._defaults["is_superuser"] = "on" if is_superuser else "off"
        self._defaults["default_transaction_read_only"] = "on" if read_only else "off"
        self._defaults["transaction_read_only"] = "on" if read_only else "off"
        if statement_timeout:
            self._defaults["statement_timeout"] = _duration(statement_timeout)
        self.user = user
        self.database = database
        self._values: dict[str, str] = dict(self._defaults)
        self._custom: dict[str, str] = {}
        self._applied: dict[int, dict[str, Any]] = {}  # id(cursor) -> values last pushed to it
        self.backend_pid = 0  # set at login to BackendKeyData's pid: pg_backend_pid() and pg_stat_activity show it

    # -- lookup ---------------------------------------------------------------------------------------
    @staticmethod
    def _key(name: str) -> str:
        key = name.strip().lower()
        if key.startswith('"') and key.endswith('"'):
            key = key[1:-1]
        return _ALIASES.get(key, key)

    def _known(self, name: str) -> tuple[str, Setting | None]:
        key = self._key(name)
        if key in SETTINGS:
            return key, SETTINGS[key]
        if _CUSTOM.match(key):
            return key, None
        raise SettingError("42704", f'unrecognized configuration parameter "{name.strip()}"')

    # -- SET / SHOW / RESET -------------------------------------------------------------------------------
    def set(self, name: str, value: str | None) -> dict[str, str]:
        """SET name = value (None or 'DEFAULT' resets). Returns the reported settings that changed."""
        key, setting = self._known(name)
        if value is None or (isinstance(value, str) and value.strip().upper() == "DEFAULT"):
            return self.reset(name)
        value = str(value)
        if setting is None:
            self._custom[key] = value
            return {}
        if setting.read_only:
            raise SettingError("55P02", f'parameter "{setting.name}" cannot be changed')
        try:
            normalised = setting.parse(value)
        except ValueError:
            raise SettingError("22023", f'invalid value for parameter "{setting.name}": "{value}"') from None
        return self._store(key, normalised)

    def _store(self, key: str, value: str) -> dict[str, str]:
        old = self._values.get(key)
        self._values[key] = value
        setting = SETTINGS[key]
        return {setting.name: value} if setting.report and old != value else {}

    def show(self, name: str) -> str:
        key = self._key(name)
        if key in SETTINGS:
            return self._values[key]
        if key in self._custom:
            return self._custom[key]
        # Postgres: an unset custom placeholder is an error for SHOW, NULL for current_setting(.., true).
        raise SettingError("42704", f'unrecognized configuration parameter "{name.strip()}"')

    def get(self, name: str, missing_ok: bool = False) -> str | None:
        """current_setting(name [, missing_ok]) semantics."""
        try:
            return self.show(name)
        except SettingError:
            if missing_ok:
                return None
            raise

    def reset(self, name: str) -> dict[str, str]:
        key, setting = self._known(name)
        if setting is None:
            self._custom.pop(key, None)
            return {}
        if setting.read_only:
            raise SettingError("55P02", f'parameter "{setting.name}" cannot be changed')
        return self._store(key, self._defaults[key])

    def reset_all(self) -> dict[str, str]:
        changed: dict[str, str] = {}
        self._custom.clear()
        for key, setting in SETTINGS.items():
            if not setting.read_only:
                changed.update(self._store(key, self._defaults[key]))
        return changed

    def show_all(self) -> list[tuple[str, str, str]]:
        """SHOW ALL rows: (name, setting, description), sorted by name like Postgres."""
        rows = [(s.name, self._values[key], s.description) for key, s in SETTINGS.items()]
        rows += [(key, value, "") for key, value in self._custom.items()]
        return sorted(rows, key=lambda row: row[0].lower())

    def pg_settings_rows(self) -> list[tuple[str, str, str, str, str]]:
        """(name, setting, category, short_desc, vartype) for the pg_settings view."""
        return [(s.name, self._values[key], s.category, s.description, s.vartype) for key, s in SETTINGS.items()]

    # -- what other layers read ---------------------------------------------------------------------------
    @property
    def statement_timeout_ms(self) -> int:
        """0 = no limit."""
        return _duration_ms(self._values["statement_timeout"])

    @property
    def timezone(self) -> str:
        return self._values["timezone"]

    def search_path_schemas(self) -> list[str]:
        """search_path as a list of schema names, "$user" resolved to the session user, quotes removed."""
        out = []
        for item in _split_list(self._values["search_path"]):
            item = item.strip()
            if not item:
                continue
            name = item[1:-1].replace('""', '"') if item.startswith('"') and item.endswith('"') else item.lower()
            out.append(self.user if name == "$user" else name)
        return out

    def parameter_status(self) -> dict[str, str]:
        """The ParameterStatus messages sent after authentication, in Postgres 16's set and spelling."""
        return {SETTINGS[key].name: value for key, value in self._values.items() if SETTINGS[key].report}

    def apply_startup(self, params: dict[str, str]) -> None:
        """StartupMessage parameters: settings and `options` (-c name=value / --name=value). Unknown ones are
        ignored (drivers send things like replication=false) rather than failing the connection."""
        for name, value in params.items():
            if name in ("user", "database", "replication"):
                continue
            if name == "options":
                for match in re.finditer(r"(?:-c\s*|--)([A-Za-z0-9_.]+)=((?:\\.|\S)*)", value):
                    self._set_quietly(match.group(1), match.group(2).replace("\\ ", " "))
                continue
            self._set_quietly(name, value)

    def _set_quietly(self, name: str, value: str) -> None:
        try:
            self.set(name, value)
        except SettingError:
            pass

    # -- push into DuckDB --------------------------------------------------------------------------------------
    def apply(self, cursor, existing_schemas: set[str] | None = None) -> None:
        """Make `cursor` (this session's DuckDB cursor) honour TimeZone and search_path. Only settings changed
        since the last call for this cursor are sent, so calling it before every query is cheap.

        search_path keeps only schemas DuckDB knows (DuckDB refuses unknown ones; Postgres ignores them);
        `existing_schemas` lets the caller pass that set (lower-case names), else DuckDB is asked."""
        last = self._applied.setdefault(id(cursor), {})
        # The catalog functions (current_setting, pg_table_is_visible, current_user ...) read these variables.
        gucs = {**self._values, **self._custom}
        if last.get("gucs") != gucs:
            entries = ", ".join(f"{_sql_string(k)}: {_sql_string(v)}" for k, v in gucs.items())
            cursor.execute(f"SET VARIABLE bemidb_gucs = MAP {{{entries}}}")
            last["gucs"] = gucs
        if last.get("search_path_list") != self._values["search_path"]:
            names = ", ".join(_sql_string(s) for s in self.search_path_schemas())
            cursor.execute(f"SET VARIABLE bemidb_search_path = [{names}]::VARCHAR[]")
            last["search_path_list"] = self._values["search_path"]
        if last.get("user") != (self.user, self.backend_pid):
            cursor.execute(f"SET VARIABLE bemidb_user = {_sql_string(self.user)}")
            cursor.execute(f"SET VARIABLE bemidb_pid = {int(self.backend_pid)}")
            last["user"] = (self.user, self.backend_pid)
        tz = self._values["timezone"]
        if last.get("timezone") != tz:
            cursor.execute(f"SET TimeZone = '{tz}'")
            last["timezone"] = tz
        path = self._values["search_path"]
        if last.get("search_path") != path:
            if existing_schemas is None:
                rows = cursor.execute("SELECT DISTINCT schema_name FROM duckdb_schemas() "
                                      "WHERE database_name = current_database()").fetchall()
                existing_schemas = {r[0] for r in rows}
            wanted = [s for s in self.search_path_schemas() if s in existing_schemas and s != "pg_catalog"]
            if "main" in existing_schemas and "main" not in wanted:
                wanted.append("main")  # where DuckDB's own helper objects live; never shadows a user table
            value = ",".join('"' + s.replace('"', '""') + '"' for s in wanted) or "main"
            cursor.execute(f"SET search_path = '{value.replace(chr(39), chr(39) * 2)}'")
            # current_schema()/current_schemas(): the path's schemas that exist (Postgres skips the others)
            existing = [s for s in self.search_path_schemas() if s in existing_schemas and s != "main"]
            names = ", ".join(_sql_string(s) for s in existing)
            cursor.execute(f"SET VARIABLE bemidb_existing_path = [{names}]::VARCHAR[]")
            last["search_path"] = path

    def forget(self, cursor) -> None:
        """The cursor is closed: drop what we remembered about it."""
        self._applied.pop(id(cursor), None)
