"""The dictionary choice judged on a prefix first must be the choice a full count makes (a prefix never has
more distinct values than the whole), only cheaper for near-unique columns."""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.compute as pc

from bemidb.storage import layout


def _full_count_choice(table: pa.Table) -> list[str]:
    limit = layout.DICTIONARY_MAX_DISTINCT * table.num_rows
    return [name for name, column in zip(table.column_names, table.columns, strict=True)
            if pa.types.is_nested(column.type) or pc.count_distinct(column).as_py() < limit]


def test_prefix_gives_the_full_counts_choice():
    rng = random.Random(17)
    rows = 20_000
    limit = int(layout.DICTIONARY_MAX_DISTINCT * rows)
    columns = {
        "unique": list(range(rows)),
        "few": [rng.randrange(10) for _ in range(rows)],
        "unique_head_repeats_after": [i if i < limit * 1.25 else 0 for i in range(rows)],  # prefix decides: no
        "repeats_head_unique_after": [0 if i < limit * 1.25 else i for i in range(rows)],  # the full count decides
        "just_under": [i % (limit - 1) for i in range(rows)],
        "just_at": [i % limit for i in range(rows)],
        "text": [f"comment {rng.random()}" for _ in range(rows)],
        "nulls": [None if i % 2 else i for i in range(rows)],
        "lists": [[i] for i in range(rows)],
    }
    table = pa.table(columns)
    chosen = layout.dictionary_columns(table)
    assert chosen == _full_count_choice(table)
    assert "few" in chosen and "just_under" in chosen and "lists" in chosen
    assert "unique" not in chosen and "just_at" not in chosen and "text" not in chosen
