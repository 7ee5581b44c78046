"""Guards a first-time user meets before a command starts: a data dir that holds no catalog (a typo in
--data-dir must not quietly make an empty one) and a server open to anyone."""

from __future__ import annotations

from bemidb import console
from bemidb.console import UserError

# Only `sync` creates a catalog. These read one that must already be there (vacuum only cleans what exists).
NEEDS_CATALOG = ("tables", "vacuum")
ANY_ADDRESS = ("0.0.0.0", "::", "", "*")


def check_data_dir(command: str, cfg) -> None:
    """UserError (exit 2) naming the path when a command that only reads finds no catalog to read."""
    if cfg.catalog_database_url or command not in (*NEEDS_CATALOG, "serve"):
        return
    path = cfg.sqlite_catalog_path
    if path.exists():
        return
    fix = ("`bemidb sync` creates it; or point --data-dir / BEMIDB_DATA_DIR at the folder a sync wrote to")
    if command in NEEDS_CATALOG:
        raise UserError(f"no catalog in the data dir {cfg.data_path} (no {path.name}): {fix}", 2)
    if not cfg.data_path.exists():
        # serve on an existing folder with no catalog yet is fine (materialized views can be made in it);
        # on a folder that does not exist it is a typo that would serve nothing
        raise UserError(f"the data dir {cfg.data_path} does not exist: {fix}", 2)


def warn_if_open_to_all(cfg) -> None:
    """One line at start: no password on every address means anyone who can reach the port reads it all."""
    # (with a users file and no BEMIDB_USER, only the file's users log in, each with a password)
    if cfg.host in ANY_ADDRESS and not cfg.password and (cfg.user or not cfg.users_file):
        console.console.print(
            f"[bold yellow]warning:[/] serving on {cfg.host or '*'}:{cfg.port} with no password: anyone who can "
            "reach this port can read every table. Set BEMIDB_USER and BEMIDB_PASSWORD, or --host 127.0.0.1",
            soft_wrap=True)
