#!/usr/bin/env python3
"""Launcher for a checkout: `python3 bemidb.py serve` (dependencies installed in the current Python)."""

import sys

if sys.version_info < (3, 11):  # noqa: UP036 - the message is the point
    sys.exit(f"bemidb needs Python 3.11 or newer; this is {sys.version.split()[0]}")

from bemidb.cli.launch import exit_now  # noqa: E402
from bemidb.cli.main import main  # noqa: E402

if __name__ == "__main__":
    exit_now(main())
