"""`bemidb vacuum`: expire old snapshots (keep the newest N) and delete files no snapshot references.

Unreferenced files are the data and manifests of expired snapshots, and the orphans of syncs that died before
their commit (kill -9, OOM, power loss). A file is only deleted when it is older than the table's last commit:
a sync of the same table still writing right now has files newer than that, and they are left alone.
Run after every sync (keeping 3 snapshots, so readers mid-query on the previous one keep their files).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyarrow.fs import FileSelector, FileType

log = logging.getLogger(__name__)

# Only files pyiceberg or our writer create; anything else under a table location is not ours to delete.
OWNED_SUFFIXES = (".parquet", ".avro", ".metadata.json")


@dataclass
class VacuumResult:
    expired_snapshots: int = 0
    deleted_files: int = 0
    deleted_bytes: int = 0


def vacuum_table(table, keep_snapshots: int = 3) -> VacuumResult:
    result = VacuumResult()
    keep_snapshots = max(1, keep_snapshots)
    snapshots = sorted(table.metadata.snapshots, key=lambda s: s.timestamp_ms, reverse=True)
    current = table.current_snapshot()
    expire = [s.snapshot_id for s in snapshots[keep_snapshots:]
              if current is None or s.snapshot_id != current.snapshot_id]
    if expire:
        table.maintenance.expire_snapshots().by_ids(expire).commit()
        table = table.refresh()
        result.expired_snapshots = len(expire)
    referenced = _referenced_files(table)
    cutoff_ms = table.metadata.last_updated_ms
    for info in _list_files(table):
        path = info.path
        if not path.endswith(OWNED_SUFFIXES) or _key(path) in referenced:
            continue
        mtime_ms = info.mtime.timestamp() * 1000 if info.mtime else None
        if mtime_ms is None or mtime_ms >= cutoff_ms:
            continue  # possibly written by a sync still running: not an orphan yet
        try:
            table.io.delete(_uri(table.location(), path))
            result.deleted_files += 1
            result.deleted_bytes += info.size or 0
        except Exception as exc:  # noqa: BLE001 - next vacuum retries
            log.debug("could not delete %s: %s", path, exc)
    return result


def _referenced_files(table) -> set[str]:
    metadata = table.metadata
    files = {table.metadata_location}
    files.update(entry.metadata_file for entry in metadata.metadata_log)
    for snapshot in metadata.snapshots:
        files.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            files.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                files.add(entry.data_file.file_path)
    return {_key(path) for path in files}


def _key(path: str) -> str:
    """Compare locations without scheme: 's3://b/k' and 'b/k', 'file:///p' and '/p' are the same file."""
    return path.split("://", 1)[-1].lstrip("/")


def _uri(location: str, path: str) -> str:
    scheme = location.split("://", 1)[0] if "://" in location else "file"
    return f"{scheme}://{path}" if scheme != "file" else f"file://{path if path.startswith('/') else '/' + path}"


def _list_files(table):
    from pyiceberg.io.pyarrow import PyArrowFileIO

    scheme, netloc, path = PyArrowFileIO.parse_location(table.location())
    fs = table.io.fs_by_scheme(scheme, netloc)
    selector = FileSelector(path.rstrip("/"), recursive=True, allow_not_found=True)
    return [info for info in fs.get_file_info(selector) if info.type == FileType.File]


def run(cfg, args) -> int:
    from rich.table import Table

    from bemidb.console import UserError, human_bytes, stdout
    from bemidb.storage.catalog import open_catalog
    from bemidb.storage.changes import compact

    keep = getattr(args, "keep_snapshots", 3)
    if keep < 1:
        raise UserError("--keep-snapshots must be at least 1", 2)
    try:
        catalog = open_catalog(cfg)
        namespaces = sorted(ns[0] for ns in catalog.list_namespaces())
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"cannot open the catalog: {' '.join(str(exc).split())[:300]}") from None
    summary = Table(title=f"vacuum (keeping {keep} snapshots per table)")
    for column in ("table", "expired snapshots", "deleted files", "freed"):
        summary.add_column(column, justify="left" if column == "table" else "right")
    failed = 0
    for namespace in namespaces:
        for identifier in sorted(catalog.list_tables(namespace)):
            name = ".".join(identifier)
            try:
                compact(catalog.load_table(identifier))  # CDC's small files and delete files, folded
                result = vacuum_table(catalog.load_table(identifier), keep_snapshots=keep)
            except Exception as exc:  # noqa: BLE001 - one table's problem does not stop the others
                failed += 1
                summary.add_row(name, "-", "-", f"failed: {' '.join(str(exc).split())[:200]}")
                continue
            summary.add_row(name, str(result.expired_snapshots), str(result.deleted_files),
                            human_bytes(result.deleted_bytes))
    stdout.print(summary)
    return 1 if failed else 0
