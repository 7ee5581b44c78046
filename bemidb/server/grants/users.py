"""The users file (TOML, read with tomllib): each user's SCRAM-SHA-256 verifier and grants.

    [users.analyst]
    password = "SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>"   # what Postgres keeps in pg_authid
    trusted_proxy = false          # true: BemiDB's /*BEMIDB_PERMISSIONS ...*/ comment narrows each query
    grants = [
      { table = "public.orders", columns = ["id", "amount"], rows = "status = 'paid'" },
      { table = "public.users", except_columns = ["email", "ssn"] },
      { table = "reporting.*" },
    ]

Passwords never appear in clear: `bemidb users add NAME` prints an entry with a fresh verifier.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

SCRAM_ITERATIONS = 4096  # Postgres's default scram_iterations
_VERIFIER = re.compile(r"SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)")
_USER_KEYS = {"password", "grants", "trusted_proxy"}
_GRANT_KEYS = {"table", "columns", "except_columns", "rows"}


class UsersFileError(ValueError):
    """The users file cannot be used; the message is one line naming the file and the problem."""


@dataclass(frozen=True)
class Verifier:
    """A SCRAM-SHA-256 verifier: what the server needs to check a password without knowing it."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    @classmethod
    def parse(cls, text: str) -> Verifier:
        m = _VERIFIER.fullmatch(text.strip())
        if not m:
            raise ValueError("password must be a SCRAM-SHA-256 verifier (SCRAM-SHA-256$<iterations>:<salt>$"
                             "<StoredKey>:<ServerKey>), as `bemidb users add` prints")
        try:
            salt, stored, server = (base64.b64decode(part, validate=True) for part in m.group(2, 3, 4))
        except binascii.Error:
            raise ValueError("password verifier has invalid base64") from None
        if len(stored) != 32 or len(server) != 32 or int(m.group(1)) < 1:
            raise ValueError("password verifier has keys of the wrong length")
        return cls(salt, int(m.group(1)), stored, server)

    @classmethod
    def from_password(cls, password: str, iterations: int = SCRAM_ITERATIONS) -> Verifier:
        salt = secrets.token_bytes(16)
        salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        return cls(salt, iterations, hashlib.sha256(client_key).digest(), server_key)

    def text(self) -> str:
        b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
        return (f"SCRAM-SHA-256${self.iterations}:{b64(self.salt)}${b64(self.stored_key)}:"
                f"{b64(self.server_key)}")


@dataclass(frozen=True)
class Grant:
    """Read access to the tables matching `pattern` (schema.table, wildcards as in --include)."""

    pattern: str
    columns: tuple[str, ...] | None = None  # only these columns (None: all)
    except_columns: tuple[str, ...] = ()  # all but these
    rows: str | None = None  # a row filter in Postgres SQL over the table's own columns

    def matches(self, schema: str, table: str) -> bool:
        pattern_schema, pattern_table = self.pattern.split(".", 1)
        return fnmatch.fnmatchcase(schema, pattern_schema) and fnmatch.fnmatchcase(table, pattern_table)

    @property
    def exact(self) -> bool:
        return not any(ch in self.pattern for ch in "*?[")

    def allowed_columns(self, columns: list[str]) -> list[str]:
        keep = [c for c in columns if self.columns is None or c in self.columns]
        return [c for c in keep if c not in self.except_columns]


@dataclass(frozen=True)
class User:
    name: str
    verifier: Verifier
    grants: tuple[Grant, ...] = ()
    trusted_proxy: bool = False

    def grant_for(self, schema: str, table: str) -> Grant | None:
        """The grant that applies to a table: one naming it exactly, else the first wildcard matching it."""
        matching = [g for g in self.grants if g.matches(schema, table)]
        exact = [g for g in matching if g.exact]
        return (exact or matching or [None])[0]


def load(path: str | Path, reserved: str = "") -> dict[str, User]:
    """The users of a file; raises UsersFileError (one line) for anything wrong in it."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise UsersFileError(f"users file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsersFileError(f"users file {path}: invalid TOML: {exc}") from None
    unknown = set(data) - {"users"}
    if unknown:
        raise UsersFileError(f"users file {path}: unknown top-level key {sorted(unknown)[0]!r} (expected [users.NAME])")
    users = {}
    for name, entry in (data.get("users") or {}).items():
        try:
            users[name] = _user(name, entry, reserved)
        except ValueError as exc:
            raise UsersFileError(f"users file {path}: user {name!r}: {exc}") from None
    return users


def _user(name: str, entry: object, reserved: str) -> User:
    if not isinstance(entry, dict):
        raise ValueError("expected a table [users.NAME]")
    if reserved and name == reserved:
        raise ValueError("is BEMIDB_USER already (that user sees every table)")
    unknown = set(entry) - _USER_KEYS
    if unknown:
        raise ValueError(f"unknown key {sorted(unknown)[0]!r}")
    if "password" not in entry or not isinstance(entry["password"], str):
        raise ValueError("password (a SCRAM-SHA-256 verifier) is missing")
    grants = entry.get("grants", [])
    if not isinstance(grants, list):
        raise ValueError("grants must be a list of { table = ... } entries")
    trusted = entry.get("trusted_proxy", False)
    if not isinstance(trusted, bool):
        raise ValueError("trusted_proxy must be true or false")
    return User(name, Verifier.parse(entry["password"]), tuple(_grant(g) for g in grants), trusted)


def _grant(entry: object) -> Grant:
    if not isinstance(entry, dict) or not isinstance(entry.get("table"), str):
        raise ValueError("each grant needs table = \"schema.table\" or \"schema.*\"")
    unknown = set(entry) - _GRANT_KEYS
    if unknown:
        raise ValueError(f"grant on {entry['table']}: unknown key {sorted(unknown)[0]!r}")
    pattern = entry["table"].strip()
    if not re.fullmatch(r"[^.\s]+\.[^.\s]+", pattern):
        raise ValueError(f"grant table {pattern!r} is not schema.table or schema.*")
    columns, excluded = entry.get("columns"), entry.get("except_columns", [])
    for key, value in (("columns", columns), ("except_columns", excluded)):
        if value is not None and not (isinstance(value, list) and all(isinstance(c, str) for c in value)):
            raise ValueError(f"grant on {pattern}: {key} must be a list of column names")
    rows = entry.get("rows")
    if rows is not None and (not isinstance(rows, str) or not rows.strip()):
        raise ValueError(f"grant on {pattern}: rows must be a SQL condition")
    return Grant(pattern, tuple(columns) if columns is not None else None, tuple(excluded), rows)
