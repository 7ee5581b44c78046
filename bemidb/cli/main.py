"""Command line: `bemidb serve | sync postgres|amplitude|attio | tables | vacuum | doctor | version`.

Each subcommand names the settings it reads (see bemidb.config) and the function that runs it, as a dotted
path imported only when that command runs, so `--help` and `version` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass

from bemidb import __version__, config, console
from bemidb.cli import first_hour, output


@dataclass(frozen=True)
class Command:
    help: str
    settings: list[str]
    target: str  # "module:function", called as function(config, args) -> exit code
    defaults: dict | None = None  # per-command setting defaults (e.g. the destination schema)


COMMANDS: dict[str, Command] = {
    "serve": Command("run the Postgres-compatible query server", config.STORAGE + config.SERVER,
                     "bemidb.server.app:serve"),
    "sync postgres": Command("sync tables from a Postgres database (full refresh, incremental or CDC)",
                             config.STORAGE + config.SYNC_POSTGRES, "bemidb.sync.postgres:run",
                             {"destination_schema": "public"}),
    "sync amplitude": Command("sync Amplitude events incrementally", config.STORAGE + config.SYNC_AMPLITUDE,
                              "bemidb.sync.amplitude:run", {"destination_schema": "amplitude"}),
    "sync attio": Command("sync Attio companies, people and deals", config.STORAGE + config.SYNC_ATTIO,
                          "bemidb.sync.attio:run", {"destination_schema": "attio"}),
    "tables": Command("list synced tables: rows, size, last sync", config.STORAGE + [
        "source_postgres_database_url", "source_postgres_replication_slot"], "bemidb.cli.tables:run"),
    "vacuum": Command("expire old snapshots and delete unreferenced files", config.STORAGE,
                      "bemidb.storage.maintenance:run"),
    "users add": Command("prompt for a password; print a users-file entry with its SCRAM verifier", [],
                         "bemidb.cli.users:add"),
    "doctor": Command("check the configuration end to end: catalog, bucket, source, port",
                      config.STORAGE + config.SERVER + ["source_postgres_database_url",
                      "source_postgres_include_tables", "source_postgres_exclude_tables",
                      "source_postgres_sync_mode", "source_postgres_replication_slot"],
                      "bemidb.cli.doctor:run"),
}


_GROUPS = {"sync": ("sync a source into Iceberg tables", "SOURCE"),
           "users": ("manage users-file entries (BEMIDB_USERS_FILE)", "ACTION")}


class _Parser(argparse.ArgumentParser):
    """argparse, plus "did you mean" for a mistyped command or flag."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}{self._suggestion(message)}\n")

    def _suggestion(self, message: str) -> str:
        import difflib
        import re

        if match := re.search(r"invalid choice: '([^']*)'", message):
            word = match.group(1)
            choices = [c for a in self._actions if isinstance(a, argparse._SubParsersAction) for c in a.choices]
        elif message.startswith("unrecognized arguments: "):
            word = message.split(": ", 1)[1].split()[0].split("=")[0]
            choices = [o for a in self._actions for o in a.option_strings if o.startswith("--")]
        else:
            return ""
        close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
        return f" (did you mean {close[0]}?)" if close else ""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bemidb",
        description="Sync Postgres and SaaS data into Iceberg tables; query them with any Postgres client.",
        epilog="Run `bemidb COMMAND --help` for a command's settings.",
    )
    parser.add_argument("--version", action="version", version=f"bemidb {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("version", help="print the version and bundled dependency versions")
    groups = {}  # "sync postgres" -> the `sync` parser's subcommands
    for name, command in COMMANDS.items():
        if " " in name:
            group, leaf = name.split()
            if group not in groups:
                group_parser = commands.add_parser(group, help=_GROUPS[group][0])
                groups[group] = group_parser.add_subparsers(dest="source", metavar=_GROUPS[group][1])
                group_parser.set_defaults(parser=group_parser)
            sub = groups[group].add_parser(leaf, help=command.help, description=command.help)
        else:
            sub = commands.add_parser(name, help=command.help, description=command.help)
        config.add_arguments(sub, command.settings)
        _add_command_flags(name, sub)
        sub.set_defaults(command_name=name, parser=sub)
    return parser


def _add_command_flags(name: str, sub: argparse.ArgumentParser) -> None:
    """Flags that are choices of one run, not settings (no environment variable)."""
    if name == "sync postgres":
        sub.add_argument("--delete-old-tables", action="store_true",
                         help="drop destination tables that no longer exist in the source")
        sub.add_argument("--full-refresh", action="store_true",
                         help="ignore --incremental cursors this run and copy every table in full")
        sub.add_argument("--detect-deletes", action="store_true",
                         help="with --incremental: remove rows whose primary key is gone from the source")
        sub.add_argument("--follow", action="store_true",
                         help="with --sync-mode cdc: keep running, commit every --commit-interval or --commit-changes rows "
                              "(SIGTERM ends)")
        sub.add_argument("--drop-slot", action="store_true",
                         help="remove the CDC replication slot and publication from the source, then exit")
    if name == "tables":
        sub.add_argument("--schema", dest="only_schema", help="only this schema")
        sub.add_argument("--format", choices=("table", "plain", "csv", "json"),
                         help="output format (default: a table on a terminal, plain whole-name columns when piped)")
    if name == "users add":
        sub.add_argument("user_name", metavar="NAME", help="the login name")
    if name == "vacuum":
        sub.add_argument("--keep-snapshots", type=int, default=3, help="snapshots to keep per table")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the subcommand's parser: its usage and its flags, not the top-level ones
        getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "version":
        output.print_version()
        return 0
    if not getattr(args, "command_name", None):  # `bemidb sync` without a source, `bemidb users` alone
        args.parser.print_help()
        return 2
    command = COMMANDS[args.command_name]
    try:
        cfg = config.resolve(args, command.settings)
    except config.ConfigError as exc:
        console.error(str(exc))
        return 2
    for name, value in (command.defaults or {}).items():
        if cfg.values.get(name) is None:
            cfg.values[name] = value
    output.setup_logging(cfg)
    try:
        first_hour.check_data_dir(args.command_name, cfg)
    except console.UserError as exc:
        console.error(str(exc))
        return exc.exit_code
    if args.command_name == "serve":
        first_hour.warn_if_open_to_all(cfg)
    module_name, func_name = command.target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("bemidb"):
            console.error(f"`bemidb {args.command_name}` is not implemented yet")
            return 2
        raise
    try:
        return _call(getattr(module, func_name), cfg, args, stop_on_signals=args.command_name.startswith("sync "))
    except KeyboardInterrupt as exc:
        # SyncInterrupted says which signal and what was left how; a bare Ctrl-C elsewhere is just that
        summary = getattr(exc, "summary", None)
        sys.stderr.write(f"{exc or 'interrupted'}{': ' + summary if summary else ''}\n")
        return getattr(exc, "exit_code", 130)
    except console.UserError as exc:  # an expected failure with a clear message: no traceback
        console.error(str(exc))
        return exc.exit_code


def _call(function, cfg, args, stop_on_signals: bool) -> int:
    if not stop_on_signals:
        return int(function(cfg, args) or 0)
    from bemidb.sync.interrupt import stop_on_signals as signals_stop_the_sync

    with signals_stop_the_sync():
        return int(function(cfg, args) or 0)


if __name__ == "__main__":
    sys.exit(main())
