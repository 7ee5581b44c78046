"""Arrow record batches -> Postgres wire messages (RowDescription, DataRow, COPY data), vectorised.

The hot path, `DataRowEncoder.encode`, never loops over rows in Python: each column becomes one Arrow
array of wire values (text_format / binary_format), the int32 length prefixes and the 7-byte DataRow
headers are numpy byte matrices, and Arrow's `binary_join_element_wise` interleaves them into the
finished messages in one C++ pass. The result is one contiguous buffer per slice of the batch.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bemidb.server.catalog.pg_types import BY_OID, PgType, column_type
from bemidb.server.codec.arrow_bytes import binary_parts, fixed_width
from bemidb.server.codec.binary_format import supports_binary, to_binary
from bemidb.server.codec.datetime_text import arrow_timezone
from bemidb.server.codec.parameters import decode_parameter, infer_parameter_type  # noqa: F401 - part of the API
from bemidb.server.codec.small_rows import data_rows as small_data_rows
from bemidb.server.codec.small_rows import text_plan
from bemidb.server.codec.text_format import to_text

# Keep each assembled slice far below Arrow's 2 GiB binary-offset limit and the peak memory modest.
_SLICE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Field:
    name: str
    table_oid: int
    column: int
    type_oid: int
    typlen: int
    typmod: int
    format: int  # 0 text, 1 binary


def result_formats(formats: Sequence[int], count: int) -> list[int]:
    """Bind's result-format codes as the protocol defines them: none = all text, one = for all, else one each."""
    if not formats:
        return [0] * count
    if len(formats) == 1:
        return [int(formats[0])] * count
    if len(formats) != count:
        raise ValueError(f"bind message has {len(formats)} result formats but query has {count} columns")
    return [int(f) for f in formats]


def _hint(pg_types: Sequence[str | None], i: int) -> str | None:
    return pg_types[i] if i < len(pg_types) else None


def column_types(schema: pa.Schema, formats: Sequence[int] = (), pg_types: Sequence[str | None] = ()
                 ) -> list[tuple[PgType, int, int]]:
    """(type, typmod, format) per column; a hinted type without a binary form falls back to the Arrow type."""
    out = []
    for i, (field, fmt) in enumerate(zip(schema, result_formats(formats, len(schema)), strict=True)):
        t, mod = column_type(field.type, _hint(pg_types, i))
        if fmt == 1 and not supports_binary(t, field.type):
            t, mod = column_type(field.type)
        out.append((t, mod, fmt))
    return out


def describe(schema: pa.Schema, formats: Sequence[int] = (), pg_types: Sequence[str | None] = (),
             sources: Sequence[tuple[int, int] | None] = ()) -> list[Field]:
    """RowDescription fields. `sources`: per column (table OID, attribute number) when the column is a plain
    table column (JDBC's ResultSetMetaData reads them); else 0, 0."""
    return _fields(schema, column_types(schema, formats, pg_types), sources)


def _fields(schema: pa.Schema, columns: list[tuple[PgType, int, int]],
            sources: Sequence[tuple[int, int] | None]) -> list[Field]:
    out = []
    for i, (f, (t, mod, fmt)) in enumerate(zip(schema, columns, strict=True)):
        table_oid, attnum = (sources[i] if i < len(sources) else None) or (0, 0)
        out.append(Field(f.name, table_oid, attnum, t.oid, t.typlen, mod, fmt))
    return out


def row_description(fields: list[Field]) -> bytes:
    """The whole 'T' message."""
    parts = [struct.pack(">h", len(fields))]
    for f in fields:
        parts.append(f.name.replace("\0", "").encode() + b"\0")
        parts.append(struct.pack(">IhIhih", f.table_oid, f.column, f.type_oid, f.typlen, f.typmod, f.format))
    body = b"".join(parts)
    return b"T" + struct.pack(">i", len(body) + 4) + body


class DataRowEncoder:
    """Encodes batches of one result into concatenated DataRow ('D') messages."""

    def __init__(self, schema: pa.Schema, formats: Sequence[int] = (), timezone: str = "UTC",
                 pg_types: Sequence[str | None] = (), slice_bytes: int = _SLICE_BYTES, small_rows: int = 64,
                 sources: Sequence[tuple[int, int] | None] = ()):
        self.schema = schema
        self.slice_bytes = slice_bytes
        self.small_rows = small_rows  # up to this many rows: per-value Python (cheaper than kernel set-up)
        self.columns = column_types(schema, formats, pg_types)
        self.fields = _fields(schema, self.columns, sources)
        self.timezone = arrow_timezone(timezone)
        self._small_plans: list | None = None  # per column, for few rows (built at the first such batch)

    def encode(self, batch: pa.RecordBatch) -> bytes:
        """Every row of `batch` as DataRow messages, in order."""
        chunks = list(self.encode_chunks(batch))
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def encode_chunks(self, batch: pa.RecordBatch) -> Iterator[bytes]:
        """The same bytes as `encode`, in slices of bounded size (lower peak memory for wide batches)."""
        n = batch.num_rows
        if n == 0:
            return
        if n <= self.small_rows:
            yield self._encode_small(batch)
            return
        per_row = 8 + 4 * batch.num_columns + 4 * batch.nbytes / n  # text can be a few times the Arrow size
        step = max(1, int(self.slice_bytes / per_row))
        for start in range(0, n, step):
            part = batch.slice(start, step)
            values = [to_binary(col, t) if fmt else to_text(col, t, self.timezone)
                      for col, (t, _mod, fmt) in zip(part.columns, self.columns, strict=True)]
            yield data_rows(values, part.num_rows)

    def _encode_small(self, batch: pa.RecordBatch) -> bytes:
        columns = batch.columns
        plans = self._small_plans
        if plans is None:
            # Chosen once per result shape, from the batch as it comes (a result adapter may have reshaped a
            # column, e.g. numerics into their text), which every batch of this shape shares.
            plans = self._small_plans = [None if fmt else text_plan(col.type, t, self.timezone)
                                         for col, (t, _mod, fmt) in zip(columns, self.columns, strict=True)]
        values: list = []
        for col, plan, (t, _mod, fmt) in zip(columns, plans, self.columns, strict=True):
            text = plan(col) if plan is not None else None
            if text is None:
                text = (to_binary(col, t) if fmt else to_text(col, t, self.timezone)).to_pylist()
            values.append(text)
        return small_data_rows(values, batch.num_rows)


def _as_binary(values: pa.Array) -> pa.Array:
    if pa.types.is_binary(values.type):
        return values
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type) \
            or pa.types.is_large_binary(values.type) or pa.types.is_string_view(values.type):
        return values.cast(pa.binary())
    return values.cast(pa.binary())


def data_rows(values: list[pa.Array], n: int) -> bytes:
    """Columns of wire values (binary arrays, null = SQL NULL) -> n DataRow messages."""
    total = np.full(n, 6 + 4 * len(values), dtype=np.int64)  # Int32 length + Int16 count + Int32 per column
    columns = []
    for v in values:
        v = _as_binary(v)
        offsets, data = binary_parts(v)
        lengths = np.diff(offsets)
        prefix = lengths
        if v.null_count:
            valid = np.asarray(v.is_valid())
            lengths = np.where(valid, lengths, 0)
            prefix = np.where(valid, lengths, -1)
            v = v.fill_null(b"")
        total += lengths
        width = int(lengths[0]) if n else 0
        fixed = not v.null_count and n and len(data) == width * n and bool((lengths == width).all())
        columns.append((prefix.astype(">i4").view(np.uint8).reshape(n, 4), data.reshape(n, width) if fixed else v))
    header = np.empty((n, 7), np.uint8)
    header[:, 0] = ord("D")
    header[:, 1:5] = total.astype(">i4").view(np.uint8).reshape(n, 4)
    header[:, 5:7] = np.frombuffer(struct.pack(">h", len(values)), np.uint8)
    # Consecutive fixed-width pieces (header, length prefixes, values of one width without nulls: binary
    # ints, floats, dates, bools...) are glued into one byte matrix, so the final join walks few arrays.
    arrays: list[pa.Array] = []
    pending: list[np.ndarray] = [header]
    for prefix, value in columns:
        pending.append(prefix)
        if isinstance(value, np.ndarray):
            pending.append(value)
        else:
            arrays.append(fixed_width(np.concatenate(pending, axis=1)))
            arrays.append(value)
            pending = []
    if pending:
        arrays.append(fixed_width(np.concatenate(pending, axis=1)))
    joined = pc.binary_join_element_wise(*arrays, b"") if len(arrays) > 1 else arrays[0]
    return _concatenated_bytes(joined)


def _concatenated_bytes(arr: pa.Array) -> bytes:
    """All values of a binary array back to back (its data buffer between the first and last offset)."""
    offsets, data = binary_parts(arr)
    return data.tobytes()


# --- COPY ... TO STDOUT ---------------------------------------------------------------------------------

_NUMBER_CHARS = set("0123456789+-.eEInfinityNaN tf")  # what int/float/numeric/bool text can contain


def copy_out(batch: pa.RecordBatch, fmt: str = "text", header: bool = False, delimiter: str | None = None,
             null: str | None = None, timezone: str = "UTC", pg_types: Sequence[str | None] = (),
             quote: str = '"', escape: str | None = None, force_quote: bool | Sequence[str] = False) -> bytes:
    """COPY TO STDOUT data for `batch` (the CopyData payload; send it as one or more 'd' messages).

    text: tab-separated, `\\N` for NULL, backslash escapes; csv: comma-separated, empty NULL, values quoted
    when they hold the delimiter, the quote, CR/LF, equal the NULL string (or are a lone `\\.`), with
    `escape` (default: the quote) before quote and escape characters; FORCE_QUOTE (True = all columns, or
    column names) quotes every non-NULL value. Pass header=True only with the first batch of a result.
    """
    csv = fmt.lower() == "csv"
    delimiter = delimiter if delimiter is not None else ("," if csv else "\t")
    null = null if null is not None else ("" if csv else "\\N")
    escape = escape if escape is not None else quote
    forced = set(batch.schema.names) if force_quote is True else set(force_quote or ())
    tz = arrow_timezone(timezone)

    def escaped(text: pa.Array, null_string: str | None, force: bool) -> pa.Array:
        if not csv:
            return _text_escape(text, delimiter)
        return _csv_escape(text, delimiter, null_string, batch.num_columns == 1, quote, escape, force)

    lines = b""
    if header:
        names = escaped(pa.array(batch.schema.names, pa.string()), None, False)
        lines = delimiter.join(names.to_pylist()).encode() + b"\n"
    if batch.num_rows == 0:
        return lines
    columns = []
    for i, col in enumerate(batch.columns):
        t, _ = column_type(col.type, _hint(pg_types, i))
        text = to_text(col, t, tz).cast(pa.string())
        force = batch.schema.names[i] in forced
        if force or t.category not in ("N", "B") or set(delimiter + quote) & _NUMBER_CHARS:
            text = escaped(text, null, force)
        columns.append(text.fill_null(null))
    row = pc.binary_join_element_wise(*columns, delimiter) if columns else pa.array([""] * batch.num_rows)
    row = pc.binary_join_element_wise(row, "\n", "")
    return lines + _concatenated_bytes(_as_binary(row))


def _text_escape(text: pa.Array, delimiter: str) -> pa.Array:
    escaped = pc.replace_substring(text, "\\", "\\\\")
    for char, code in (("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"), (delimiter, "\\" + delimiter)):
        if char != "\\":
            escaped = pc.replace_substring(escaped, char, code)
    return escaped


def _regex_class(chars: str) -> str:
    return "".join("\\" + c if c in "\\^$.|?*+()[]{}-" else c for c in chars)


def _csv_escape(text: pa.Array, delimiter: str, null: str | None, single_column: bool, quote: str = '"',
                escape: str = '"', force: bool = False) -> pa.Array:
    specials = _regex_class(delimiter + quote)  # the escape character alone does not force quotes
    # A lone `\.` would read back as end-of-data: Postgres quotes it when it is the only column.
    needs = pc.match_substring_regex(text, f"[{specials}\\r\\n]" + ("|^\\\\\\.$" if single_column else ""))
    if null is not None:
        needs = pc.or_(needs, pc.equal(text, null))
    # Postgres puts the escape character before every quote and escape character inside quoted values.
    inner = pc.replace_substring_regex(text, f"([{_regex_class(quote + escape)}])", _rewrite_escape(escape) + "\\1")
    quoted = pc.binary_join_element_wise(quote, inner, quote, "")
    return quoted if force else pc.if_else(needs, quoted, text)


def _rewrite_escape(char: str) -> str:
    return "\\\\" if char == "\\" else char


__all__ = ["BY_OID", "DataRowEncoder", "Field", "copy_out", "data_rows", "decode_parameter", "describe",
           "infer_parameter_type", "result_formats", "row_description"]
