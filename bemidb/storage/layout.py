"""How a data file is laid out for DuckDB (chosen by measurement, bench/storage.py): zstd, dictionaries where
they pay, small pages with a page index, and a bloom filter on the primary key. Row-group size is the
writer's (it cuts the row groups)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from bemidb.storage.catalog import PROP_PRIMARY_KEY

# Per row group, a bloom filter on the first primary-key column: a point lookup on a key skips every row group
# whose filter says "absent", even when the rows are not stored in key order (min/max cannot prune then).
BLOOM_FPP = 0.05
# Pages of at most this many rows, with a page index (column + offset index): DuckDB then reads only the pages
# of a row group that can hold a looked-up key, ~2x faster PK lookups on TPC-H orders for +1.5% bytes.
PAGE_ROWS = 8192
# ... and of at most this many bytes (before compression): a wide text column (TPC-H o_comment, ~400 kB in 8,192
# rows) gets several pages, so a lookup decompresses ~64 kB of it, not the whole 8,192 rows (PK lookup on SF1
# orders 2.2 -> 1.9 ms in DuckDB, +2% bytes); narrow columns keep 8,192-row pages, and scans run as fast.
PAGE_BYTES = 64 * 1024
DICTIONARY_MAX_DISTINCT = 0.25  # a column gets a dictionary when its distinct values are fewer than this share


def parquet_options(first: pa.Table, properties: dict[str, str], row_group_rows: int) -> dict:
    """pyarrow ParquetWriter options for a file whose first row group is `first`."""
    return {"compression": "zstd", "store_decimal_as_integer": True, "write_statistics": True,
            "use_dictionary": dictionary_columns(first), "write_page_index": True, "max_rows_per_page": PAGE_ROWS,
            "data_page_size": PAGE_BYTES,
            "bloom_filter_options": bloom_filters(first.schema, properties, row_group_rows)}


def dictionary_columns(table: pa.Table) -> list[str]:
    """Dictionaries where they pay, judged on the file's first row group as DuckDB's writer does: DuckDB scans
    dictionary-encoded columns faster (TPC-H Q1/Q6 ~1.5x with them on numbers too), and skipping them on
    near-unique columns saves encode time and bytes. All columns of a small sample."""
    if table.num_rows < 1000:
        return table.column_names
    limit = DICTIONARY_MAX_DISTINCT * table.num_rows
    head = int(limit * 1.25)  # a near-unique column shows `limit` distinct values in its first rows already
    return [name for name, column in zip(table.column_names, table.columns, strict=True)
            if pa.types.is_nested(column.type)
            or not (head < len(column) and pc.count_distinct(column.slice(0, head)).as_py() >= limit)
            and pc.count_distinct(column).as_py() < limit]  # the prefix decided nothing: count all (same choice)


def bloom_filters(schema: pa.Schema, properties: dict[str, str], row_group_rows: int) -> dict | None:
    try:
        key = json.loads(properties.get(PROP_PRIMARY_KEY, "[]"))
    except ValueError:
        return None
    if not key or key[0] not in schema.names:
        return None
    kind = schema.field(key[0]).type
    if pa.types.is_nested(kind) or pa.types.is_boolean(kind):
        return None
    return {key[0]: {"ndv": row_group_rows, "fpp": BLOOM_FPP}}
