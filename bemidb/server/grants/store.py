"""The users file as the server holds it: loaded at boot, reloaded on SIGHUP (a broken file keeps the old
users and grants, with one log line), and each restricted session's Access to it.

Sessions look their user up on every statement, so a reload changes what open connections may read without
dropping them; a user removed from the file reads nothing more.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path

from bemidb.server.grants import policy as policies
from bemidb.server.grants.users import User, UsersFileError, load
from bemidb.server.sql import grants
from bemidb.server.sql.plans import Plan

log = logging.getLogger("bemidb.server")

_PERMISSIONS_COMMENT = re.compile(r"/\*\s*BEMIDB_PERMISSIONS\s+(.*?)\s+BEMIDB_PERMISSIONS\s*\*/", re.S)


class UsersStore:
    def __init__(self, path: str | Path, reserved: str = ""):
        self.path = str(path)
        self.reserved = reserved  # BEMIDB_USER: not definable in the file
        self.users: dict[str, User] = _checked(self.path, load(self.path, reserved))
        self.version = 0  # bumped by every successful reload: sessions rebuild their policies
        self._lock = threading.Lock()

    def reload(self) -> bool:
        """Read the file again; on any problem keep the current users and log one line."""
        try:
            users = _checked(self.path, load(self.path, self.reserved))
        except UsersFileError as exc:
            log.error("%s; keeping the previous users and grants", exc)
            return False
        with self._lock:
            self.users = users
            self.version += 1
        log.info("users file %s reloaded: %d users", self.path, len(users))
        return True

    def user(self, name: str) -> User | None:
        return self.users.get(name)


def _checked(path: str, users: dict[str, User]) -> dict[str, User]:
    """Row filters are translated now, so a broken one is the file's error, not the first query's."""
    for user in users.values():
        for grant in user.grants:
            if grant.rows:
                try:
                    policies.filter_sql(grant.rows)
                except ValueError as exc:
                    raise UsersFileError(f"users file {path}: user {user.name!r}: grant on {grant.pattern}: "
                                         f"{exc}") from None
    return users


class Access:
    """One restricted session's view of the store: restricts each plan to its user's current grants."""

    def __init__(self, store: UsersStore, name: str):
        self.store = store
        self.name = name
        self._policy: grants.Policy | None = None
        self._key: tuple = ()
        self._narrowed: dict[str, grants.Policy] = {}

    def restrict(self, plan: Plan, sql: str, engine, search_path: list[str]) -> Plan:
        policy = self.policy(engine)
        user = self.store.user(self.name)
        if user is not None and user.trusted_proxy:
            match = _PERMISSIONS_COMMENT.search(sql)
            if match:
                policy = self._narrow(policy, match.group(1))
        return grants.restrict(plan, policy, tuple(search_path), sql)

    def policy(self, engine) -> grants.Policy:
        tables = engine.tables()
        key = (self.store.version, engine.generation, tuple(t.metadata_location for t in tables))
        if self._policy is None or key != self._key:
            user = self.store.user(self.name)
            if user is None:
                self._policy = policies.nothing()
            else:  # a cursor of its own: the session's may be streaming a portal's rows
                cursor = engine.cursor()
                try:
                    self._policy = policies.build(user, tables, cursor)
                finally:
                    cursor.close()
            self._key = key
            self._narrowed.clear()
        return self._policy

    def _narrow(self, policy: grants.Policy, text: str) -> grants.Policy:
        if text not in self._narrowed:
            try:
                permissions = json.loads(text)
                if not isinstance(permissions, dict) or not all(
                        isinstance(v, list) and all(isinstance(c, str) for c in v) for v in permissions.values()):
                    raise ValueError
            except ValueError:
                permissions = {}  # a malformed comment grants nothing
            self._narrowed[text] = policies.narrowed(policy, permissions)
        return self._narrowed[text]
