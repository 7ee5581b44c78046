"""The ground floor every command shares: the error users see as one line, the rich consoles, byte sizes.

Imported by cli, server, sync and storage alike; it imports nothing of bemidb's.
"""

from __future__ import annotations


def _rich_console(name: str):
    """`console` (stderr, for diagnostics, so stdout stays clean for data such as `bemidb tables` piped to a
    file) or `stdout`: made on first use, so a run that only logs plain lines never imports rich (0.04 s of
    a 0.7 s incremental sync)."""
    from rich.console import Console

    return globals().setdefault(name, Console(stderr=name == "console", highlight=False))


def __getattr__(name: str):  # `console.console`, `from bemidb.console import stdout`
    if name in ("console", "stdout"):
        return _rich_console(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class UserError(Exception):
    """An expected failure (bad input, unreachable service): printed as one line, no traceback."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def error(message: str) -> None:
    _rich_console("console").print(f"[bold red]error:[/] {message}", soft_wrap=True)


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"
