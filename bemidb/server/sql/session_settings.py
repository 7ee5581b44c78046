"""One session's settings (Postgres GUCs): SET / SHOW / RESET, ParameterStatus, and the push into DuckDB.

Postgres semantics kept: names are case-insensitive, SHOW prints the canonical form (DateStyle 'ISO, MDY',
booleans on/off, statement_timeout with its unit), custom `ext.name` placeholders are accepted, unknown plain
names fail with 42704, read-only ones with 55P02, bad values with 22023. The settings that change results
(TimeZone, search_path) are pushed into the session's DuckDB cursor by `apply`, only when they changed.

Every query reads a few of them (statement_timeout, search_path, the pushed values): each change bumps a
version, and what is derived from the values (the timeout in ms, the search_path's schemas, whether the
cursor is up to date) is computed once per version, not once per query.
"""

from __future__ import annotations

import re
from typing import Any

from bemidb.quoting import quote_ident, quote_literal
from bemidb.server.settings import SETTINGS, SettingError, duration_ms, duration_text, lookup, split_list


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
            self._defaults["statement_timeout"] = duration_text(statement_timeout)
        self.user = user
        self.database = database
        self._values: dict[str, str] = dict(self._defaults)
        self._custom: dict[str, str] = {}
        self._applied: dict[int, dict[str, Any]] = {}  # id(cursor) -> values last pushed to it
        self._version = 0  # bumped by every change of _values or _custom (see _changed)
        self._derived: dict[str, Any] = {}  # what is computed from the values, dropped at each change
        self.backend_pid = 0  # set at login to BackendKeyData's pid: pg_backend_pid() and pg_stat_activity show it

    # -- SET / SHOW / RESET -------------------------------------------------------------------------------
    def set(self, name: str, value: str | None) -> dict[str, str]:
        """SET name = value (None or 'DEFAULT' resets). Returns the reported settings that changed."""
        key, setting = lookup(name)
        if value is None or (isinstance(value, str) and value.strip().upper() == "DEFAULT"):
            return self.reset(name)
        value = str(value)
        if setting is None:
            self._custom[key] = value
            self._changed()
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
        self._changed()
        setting = SETTINGS[key]
        return {setting.name: value} if setting.report and old != value else {}

    def _changed(self) -> None:
        self._version += 1
        self._derived.clear()

    def show(self, name: str) -> str:
        key, _ = lookup(name)
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
        key, setting = lookup(name)
        if setting is None:
            self._custom.pop(key, None)
            self._changed()
            return {}
        if setting.read_only:
            raise SettingError("55P02", f'parameter "{setting.name}" cannot be changed')
        return self._store(key, self._defaults[key])

    def reset_all(self) -> dict[str, str]:
        changed: dict[str, str] = {}
        self._custom.clear()
        self._changed()
        for key, setting in SETTINGS.items():
            if not setting.read_only:
                changed.update(self._store(key, self._defaults[key]))
        return changed

    def show_all(self) -> list[tuple[str, str, str]]:
        """SHOW ALL rows: (name, setting, description), sorted by name like Postgres."""
        rows = [(s.name, self._values[key], s.description) for key, s in SETTINGS.items()]
        rows += [(key, value, "") for key, value in self._custom.items()]
        return sorted(rows, key=lambda row: row[0].lower())

    # -- what other layers read ---------------------------------------------------------------------------
    @property
    def statement_timeout_ms(self) -> int:
        """0 = no limit."""
        ms = self._derived.get("statement_timeout_ms")
        if ms is None:
            ms = self._derived["statement_timeout_ms"] = duration_ms(self._values["statement_timeout"])
        return ms

    @property
    def timezone(self) -> str:
        return self._values["timezone"]

    def search_path_schemas(self) -> list[str]:
        """search_path as a list of schema names, "$user" resolved to the session user, quotes removed."""
        key = ("search_path_schemas", self.user)  # the user is an attribute: part of the key
        schemas = self._derived.get(key)
        if schemas is None:
            schemas = self._derived[key] = self._search_path_schemas()
        return list(schemas)

    def _search_path_schemas(self) -> list[str]:
        out = []
        for item in split_list(self._values["search_path"]):
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
        # Nothing changed since the last push to this cursor: nothing to compare (the common case, every query).
        pushed = (self._version, self.user, self.backend_pid)
        if last.get("pushed") == pushed:
            return
        # The catalog functions (current_setting, pg_table_is_visible, current_user ...) read these variables.
        gucs = {**self._values, **self._custom}
        if last.get("gucs") != gucs:
            entries = ", ".join(f"{quote_literal(k)}: {quote_literal(v)}" for k, v in gucs.items())
            cursor.execute(f"SET VARIABLE bemidb_gucs = MAP {{{entries}}}")
            last["gucs"] = gucs
        if last.get("search_path_list") != self._values["search_path"]:
            names = ", ".join(quote_literal(s) for s in self.search_path_schemas())
            cursor.execute(f"SET VARIABLE bemidb_search_path = [{names}]::VARCHAR[]")
            last["search_path_list"] = self._values["search_path"]
        if last.get("user") != (self.user, self.backend_pid):
            cursor.execute(f"SET VARIABLE bemidb_user = {quote_literal(self.user)}")
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
            value = ",".join(quote_ident(s) for s in wanted) or "main"
            cursor.execute(f"SET search_path = '{value.replace(chr(39), chr(39) * 2)}'")
            # current_schema()/current_schemas(): the path's schemas that exist (Postgres skips the others)
            existing = [s for s in self.search_path_schemas() if s in existing_schemas and s != "main"]
            names = ", ".join(quote_literal(s) for s in existing)
            cursor.execute(f"SET VARIABLE bemidb_existing_path = [{names}]::VARCHAR[]")
            last["search_path"] = path
        last["pushed"] = pushed

    def forget(self, cursor) -> None:
        """The cursor is closed: drop what we remembered about it."""
        self._applied.pop(id(cursor), None)
