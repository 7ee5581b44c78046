"""Typing CDC values in-process: pgoutput sends each value as its type's text output, the very text COPY
prints for a plain column, so columns the copy selects as they are (numbers, text, json, uuid, numeric, and
dates/timestamps parsed "optimistically" as the full refresh first tries) are parsed here by the same Arrow
CSV reader and converters as a copy, with no round trip to the source. Columns whose copy expression rewrites
the value (bytea, arrays, time, char(n)), and a batch holding a value Arrow cannot parse (a BC date,
infinity), are left to the caller, who types them through the source.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from bemidb.quoting import quote_ident
from bemidb.storage.types import KINDS, ColumnPlan, plan_column, value_bytes
from bemidb.sync.postgres_copy import converted_columns, csv_options


def local_plan(plan: ColumnPlan) -> ColumnPlan | None:
    """The plan that parses this column's pgoutput text here, or None when only the source can type it."""
    column = plan.column
    if plan.select_sql == quote_ident(column.name):
        return plan
    kind = KINDS.get(column.base)
    if kind is not None and kind.direct and not column.is_array:
        return plan_column(column, safe=False)  # parses Postgres's own output; fails only on BC/infinity
    return None


def parse_texts(plans: list[ColumnPlan], texts: list[pa.Array], schema: pa.Schema) -> pa.Table | None:
    """One string array per plan (None = NULL) -> a table of `schema`, or None when a value does not parse
    (the caller then asks the source)."""
    rows = len(texts[0])
    if rows == 0:
        return schema.empty_table()
    read, parse, convert = csv_options(plans)
    parse.ignore_empty_lines = False  # one NULL column makes an empty line, still a row
    fields = [pc.fill_null(pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', ""), "")
              for text in texts]
    lines = pc.binary_join_element_wise(pc.binary_join_element_wise(*fields, ","), "", "\n")  # row + "\n"
    document = value_bytes(lines)
    read.block_size = max(len(document) + 1, 1 << 20)
    try:
        table = pa_csv.read_csv(pa.BufferReader(document), read_options=read, parse_options=parse,
                                convert_options=convert)
        if table.num_rows != rows:
            return None
        columns = [column.cast(schema.field(index).type)
                   for index, column in enumerate(converted_columns(table, plans))]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return pa.Table.from_arrays(columns, schema=schema)
