"""`--detect-deletes` for cursor syncs, where logical replication is not available: the primary keys the
table holds that the source no longer has, read in the run's snapshot, so the merge removes those rows in the
same commit as the new ones. Costs one COPY of the key columns and one read of the table's key columns."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from bemidb.storage.merge import key_values
from bemidb.storage.types import ColumnPlan
from bemidb.sync.postgres_copy import copy_csv_chunks, decode_chunks


def missing_keys(conn, relation, plans: list[ColumnPlan], schema: pa.Schema, keys: list[str],
                 table) -> pa.Table | None:
    """Key columns of the stored rows whose key the source table lacks (None when there are none)."""
    if table is None or table.current_snapshot() is None:
        return None
    by_name = {plan.column.name: plan for plan in plans}
    key_plans = [by_name[k] for k in keys]
    key_schema = pa.schema([schema.field(k) for k in keys])
    select = f"SELECT {', '.join(p.select_sql for p in key_plans)} FROM {relation.sql_name}"
    in_source = [key_values(batch, keys) for batch in decode_chunks(copy_csv_chunks(conn, select), key_plans,
                                                                      key_schema) if batch.num_rows]
    stored = table.scan(selected_fields=tuple(keys)).to_arrow().select(keys)
    stored = stored.cast(key_schema)
    if stored.num_rows == 0:
        return None
    source_keys = pa.concat_arrays(in_source) if in_source else pa.array([], key_values(stored, keys).type)
    gone = stored.filter(pc.invert(pc.is_in(key_values(stored, keys), value_set=source_keys)))
    return gone.combine_chunks() if gone.num_rows else None
