"""Row-level deletes as other Iceberg engines write them (Trino's DELETE, Spark and Flink merge-on-read):
a delete file committed next to the data files it applies to. pyiceberg itself only deletes by rewriting
files (copy-on-write), so this builds the delete manifest with pyiceberg's own writers."""

from __future__ import annotations

import uuid

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.manifest import (
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestContent,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestWriterV2,
)
from pyiceberg.table.snapshots import Operation
from pyiceberg.table.update.snapshot import _FastAppendFiles
from pyiceberg.typedef import Record

# Field ids the Iceberg spec reserves for a position delete file's columns.
POSITION_DELETE_SCHEMA = pa.schema([
    pa.field("file_path", pa.string(), nullable=False, metadata={b"PARQUET:field_id": b"2147483546"}),
    pa.field("pos", pa.int64(), nullable=False, metadata={b"PARQUET:field_id": b"2147483545"}),
])


class _DeleteManifestWriter(ManifestWriterV2):
    def content(self) -> ManifestContent:
        return ManifestContent.DELETES


class _AddDeleteFiles(_FastAppendFiles):
    """A snapshot with every existing manifest plus one delete manifest (what a row-level delete commits)."""

    def __init__(self, delete_files: list[DataFile], **kwargs):
        super().__init__(**kwargs)
        self._delete_files = delete_files

    def _manifests(self):
        writer = _DeleteManifestWriter(self.spec(0), self.schema(), self.new_manifest_output(), self._snapshot_id,
                                       self._compression)
        with writer:
            for delete_file in self._delete_files:
                writer.add(ManifestEntry.from_args(status=ManifestEntryStatus.ADDED, snapshot_id=self._snapshot_id,
                                                   data_file=delete_file))
        return self._existing_manifests() + [writer.to_manifest_file()]


def _write_delete_file(table, arrow: pa.Table, content: DataFileContent, equality_ids=None) -> DataFile:
    path = f"{table.location()}/data/delete-{uuid.uuid4()}.parquet"
    with table.io.new_output(path).create() as out:
        pq.write_table(arrow, out)
    size = len(table.io.new_input(path))
    return DataFile.from_args(content=content, file_path=path, file_format=FileFormat.PARQUET,
                              partition=Record(), record_count=arrow.num_rows, file_size_in_bytes=size,
                              spec_id=0, equality_ids=equality_ids, sort_order_id=None, key_metadata=None)


def _commit(table, delete_file: DataFile) -> None:
    with table.transaction() as txn:
        _AddDeleteFiles([delete_file], operation=Operation.OVERWRITE, transaction=txn, io=table.io).commit()


def delete_positions(table, positions: dict[str, list[int]]) -> None:
    """Delete rows by (data file path, 0-based row number in that file)."""
    pairs = [(path, pos) for path, rows in positions.items() for pos in sorted(rows)]
    arrow = pa.table([pa.array([p for p, _ in pairs]), pa.array([r for _, r in pairs], pa.int64())],
                     schema=POSITION_DELETE_SCHEMA)
    _commit(table, _write_delete_file(table, arrow, DataFileContent.POSITION_DELETES))


def delete_equal(table, column: str, values: list) -> None:
    """Delete every row whose `column` equals one of `values` (an equality delete file)."""
    field = table.schema().find_field(column)
    arrow_field = pa.field(column, pa.array(values).type, metadata={b"PARQUET:field_id": str(field.field_id).encode()})
    arrow = pa.table([pa.array(values)], schema=pa.schema([arrow_field]))
    _commit(table, _write_delete_file(table, arrow, DataFileContent.EQUALITY_DELETES, [field.field_id]))
