"""`bemidb users add NAME`: prompt for a password and print the users-file entry holding its SCRAM-SHA-256
verifier (the password itself is never written anywhere)."""

from __future__ import annotations

import getpass
import json
import re
import sys

from bemidb.console import UserError
from bemidb.server.grants.users import Verifier


def _read_password() -> str:
    if not sys.stdin.isatty():  # scripted: the first line of standard input
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise UserError("the passwords do not match", 2)
    if not password:
        raise UserError("the password must not be empty", 2)
    return password


def add(cfg, args) -> int:  # noqa: ANN001 - argparse namespace
    name = args.user_name
    if not name or name != name.strip():
        raise UserError("the user name must not be empty or start or end with blanks", 2)
    key = name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)
    verifier = Verifier.from_password(_read_password())
    print(f"[users.{key}]")
    print(f'password = "{verifier.text()}"')
    print('grants = [')
    print('  # { table = "public.orders", columns = ["id", "amount"], rows = "status = \'paid\'" },')
    print('  # { table = "reporting.*" },')
    print(']')
    return 0
