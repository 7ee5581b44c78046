"""Sync progress for any source: a live rich display per table on a terminal, plain log lines otherwise
(GitHub Actions, cron, pipes), and a summary table at the end.

    with SyncProgress("sync postgres") as progress:
        progress.table_started("public.users")
        progress.advance("public.users", rows_so_far, bytes_so_far)   # totals so far, not increments
        progress.table_done("public.users", rows, bytes)               # or error="why"
        progress.note("skipped view public.v")
    progress.failed  # names of the tables that failed
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bemidb import console as output
from bemidb.console import human_bytes

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

LOG_EVERY_SECONDS = 10.0  # plain mode: one "still going" line per table at most this often


@dataclass
class TableStatus:
    name: str
    started: float = field(default_factory=time.monotonic)
    rows: int = 0
    bytes: int = 0
    finished: float | None = None
    error: str | None = None
    last_logged: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.elapsed if self.elapsed > 0 else 0.0


def _live_progress(console: Console) -> Progress:
    """rich's live display, one row per table (rich is imported only for a terminal)."""
    from rich.progress import Progress, ProgressColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    class StatsColumn(ProgressColumn):
        """rows, bytes and rows/s of one table, from the task's fields."""

        def render(self, task) -> Text:
            rows, size, elapsed = task.fields.get("rows", 0), task.fields.get("bytes", 0), task.elapsed or 0
            rate = rows / elapsed if elapsed > 0 else 0
            return Text(f"{rows:>12,} rows  {human_bytes(size):>9}  {rate:>10,.0f} rows/s")

    return Progress(SpinnerColumn(finished_text="[green]✓"), TextColumn("{task.description}"), StatsColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def _stderr_is_terminal() -> bool:
    """What rich would decide for stderr (a terminal, or FORCE_COLOR set), without importing it."""
    return bool(os.environ.get("FORCE_COLOR")) or sys.stderr.isatty()


class SyncProgress:
    def __init__(self, title: str, console: Console | None = None, live: bool | None = None):
        self.title = title
        if live is None:
            live = console.is_terminal if console is not None else _stderr_is_terminal()
        self.live = live
        # plain lines go to this console when given, else straight to stderr; the live display needs rich
        self.console = console if console is not None or not live else output.console
        self.tables: dict[str, TableStatus] = {}
        self.notes: list[str] = []
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._started = time.monotonic()

    # -- context -------------------------------------------------------------------------------------------

    def __enter__(self) -> SyncProgress:
        if self.live:
            self._progress = _live_progress(self.console)
            self._progress.start()
        else:
            self._line(f"{self.title}: started")
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            self._interrupted(exc)
            return
        if self._progress is not None:
            self._progress.stop()
        self.print_summary()

    def _interrupted(self, exc: BaseException) -> None:
        """No summary table: the caller prints one line, made here, saying what was left how."""
        in_flight = [name for name, status in self.tables.items() if not status.finished]
        if self._progress is not None:
            for name in in_flight:
                self._progress.update(self._tasks[name], description=f"[yellow]{name}: interrupted")
                self._progress.stop_task(self._tasks[name])
            self._progress.stop()
        kept = len(self.succeeded)
        parts = [f"{', '.join(in_flight)} left as it was (nothing committed)" if in_flight
                 else "no table was being written"]
        if kept:
            parts.append(f"{kept} table{'s' if kept > 1 else ''} synced before {'are' if kept > 1 else 'is'} kept")
        if hasattr(exc, "summary"):
            exc.summary = "; ".join(parts)

    # -- events --------------------------------------------------------------------------------------------

    def table_started(self, name: str) -> None:
        self.tables[name] = TableStatus(name)
        if self._progress is not None:
            self._tasks[name] = self._progress.add_task(name, total=None, rows=0, bytes=0)
        else:
            self._line(f"{name}: syncing")

    def advance(self, name: str, rows: int, bytes: int) -> None:
        status = self.tables.get(name) or self._implicit_start(name)
        status.rows, status.bytes = rows, bytes
        if self._progress is not None:
            self._progress.update(self._tasks[name], rows=rows, bytes=bytes)
        elif time.monotonic() - status.last_logged >= LOG_EVERY_SECONDS:
            status.last_logged = time.monotonic()
            self._line(f"{name}: {rows:,} rows, {human_bytes(bytes)}, {status.rows_per_second:,.0f} rows/s")

    def table_done(self, name: str, rows: int, bytes: int, error: str | None = None) -> None:
        status = self.tables.get(name) or self._implicit_start(name)
        status.rows, status.bytes, status.error = rows, bytes, error
        status.finished = time.monotonic()
        if self._progress is not None:
            task = self._tasks[name]
            description = f"[red]{name}: failed" if error else name
            self._progress.update(task, rows=rows, bytes=bytes, description=description, total=1, completed=1)
            self._progress.stop_task(task)  # freezes elapsed, so rows/s stays the table's real rate
            if error:
                self._progress.console.print(f"[bold red]error:[/] {name}: {error}", soft_wrap=True)
        elif error:
            self._line(f"{name}: FAILED: {error}")
        else:
            self._line(f"{name}: done, {rows:,} rows, {human_bytes(bytes)} in {status.elapsed:.1f}s "
                       f"({status.rows_per_second:,.0f} rows/s)")

    def note(self, message: str) -> None:
        """Something the user should know that is not a failure (skipped views, type fallbacks...)."""
        self.notes.append(message)
        if self._progress is not None:
            self._progress.console.print(f"[yellow]note:[/] {message}", soft_wrap=True)
        else:
            self._line(f"note: {message}")

    # -- results -------------------------------------------------------------------------------------------

    @property
    def failed(self) -> list[str]:
        return [name for name, status in self.tables.items() if status.error]

    @property
    def succeeded(self) -> list[str]:
        return [name for name, status in self.tables.items() if status.finished and not status.error]

    def print_summary(self) -> None:
        elapsed = time.monotonic() - self._started
        if not self.tables:
            self._line(f"{self.title}: no tables synced ({elapsed:.1f}s)")
            return
        if not self.live:
            total_rows = sum(s.rows for s in self.tables.values())
            self._line(f"{self.title}: {len(self.succeeded)} synced, {len(self.failed)} failed, "
                       f"{total_rows:,} rows in {elapsed:.1f}s")
            return
        from rich.table import Table

        table = Table(title=f"{self.title}: {len(self.succeeded)} synced, {len(self.failed)} failed "
                            f"in {elapsed:.1f}s")
        for column in ("table", "rows", "size", "rows/s", "time", "status"):
            table.add_column(column, justify="right" if column in ("rows", "size", "rows/s", "time") else "left")
        for status in self.tables.values():
            state = "[red]failed[/]" if status.error else ("[green]ok[/]" if status.finished else "interrupted")
            table.add_row(status.name, f"{status.rows:,}", human_bytes(status.bytes),
                          f"{status.rows_per_second:,.0f}", f"{status.elapsed:.1f}s", state)
        self.console.print(table)

    # -- helpers -------------------------------------------------------------------------------------------

    def _implicit_start(self, name: str) -> TableStatus:
        self.table_started(name)
        return self.tables[name]

    def _line(self, message: str) -> None:
        # Plain mode: one self-contained line each, with a UTC timestamp, nothing rich can wrap or colour.
        line = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {message}"
        if self.console is not None:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
