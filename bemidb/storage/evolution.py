"""Schema evolution for tables that are appended to or merged into (incremental syncs), never rewritten whole.

The existing data files keep their field ids, so only changes every Iceberg reader can apply to old files are
made in place: a new column (optional: older rows read NULL), a dropped column (removed from the schema; old
files keep the bytes, readers ignore them), a widened type (int -> long, float -> double, decimal(p,s) ->
decimal(P,s) with P > p), NOT NULL relaxed, column comments. A source type that got narrower (int8 -> int4)
keeps the wider destination type and its values are cast up. Anything else (int -> text, a new decimal scale,
a different list element...) is incompatible: the caller falls back to a full refresh.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
from pyiceberg.schema import Schema
from pyiceberg.types import DecimalType, DoubleType, FloatType, IcebergType, IntegerType, LongType


@dataclass
class Evolution:
    incompatible: str | None = None  # why the schema cannot evolve in place (then: full refresh)
    added: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    widened: dict[str, IcebergType] = field(default_factory=dict)  # column -> its new, wider type
    kept_wider: dict[str, IcebergType] = field(default_factory=dict)  # source narrower: values cast up to this
    relaxed: list[str] = field(default_factory=list)  # required -> optional
    docs: dict[str, str | None] = field(default_factory=dict)
    reordered: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.dropped or self.widened or self.relaxed or self.docs or self.reordered)

    def describe(self) -> str:
        parts = [f"added {', '.join(self.added)}" if self.added else "",
                 f"dropped {', '.join(self.dropped)}" if self.dropped else "",
                 ", ".join(f"{name} widened to {t}" for name, t in self.widened.items())]
        return "; ".join(p for p in parts if p)


def _wider(current: IcebergType, wanted: IcebergType) -> str | None:
    """'same', 'widen' (wanted is wider: promote the column), 'keep' (current is wider: cast values up),
    or None when neither holds."""
    if current == wanted:
        return "same"
    pairs = ((IntegerType, LongType), (FloatType, DoubleType))
    for narrow, wide in pairs:
        if isinstance(current, narrow) and isinstance(wanted, wide):
            return "widen"
        if isinstance(current, wide) and isinstance(wanted, narrow):
            return "keep"
    if isinstance(current, DecimalType) and isinstance(wanted, DecimalType) and current.scale == wanted.scale:
        return "widen" if wanted.precision > current.precision else "keep"
    return None


def compare(current: Schema, wanted: Schema) -> Evolution:
    """What it takes to write rows of `wanted` (the source now) into a table whose schema is `current`."""
    evolution = Evolution()
    existing = {f.name: f for f in current.fields}
    names = {f.name for f in wanted.fields}
    for wanted_field in wanted.fields:
        old = existing.get(wanted_field.name)
        if old is None:
            evolution.added.append(wanted_field.name)
            continue
        how = _wider(old.field_type, wanted_field.field_type)
        if how is None:
            evolution.incompatible = (f"column {wanted_field.name} changed type from {old.field_type} to "
                                      f"{wanted_field.field_type}")
            return evolution
        if how == "widen":
            evolution.widened[wanted_field.name] = wanted_field.field_type
        elif how == "keep":
            evolution.kept_wider[wanted_field.name] = old.field_type
        if old.required and not wanted_field.required:
            evolution.relaxed.append(wanted_field.name)
        if (old.doc or None) != (wanted_field.doc or None):
            evolution.docs[wanted_field.name] = wanted_field.doc
    evolution.dropped = [f.name for f in current.fields if f.name not in names]
    # Added columns land at the end; move them (and any other) when that is not the source's order.
    after_changes = [f.name for f in current.fields if f.name in names] + evolution.added
    evolution.reordered = after_changes != [f.name for f in wanted.fields]
    return evolution


def apply(txn, wanted: Schema, evolution: Evolution) -> None:
    """Stage the changes in `txn` (the same transaction as the data commit): one new schema version."""
    if evolution.incompatible is not None:
        raise ValueError(evolution.incompatible)
    if not evolution.changed:
        return
    by_name = {f.name: f for f in wanted.fields}
    # Nested new columns get fresh ids from add_column; column names may contain dots, hence the tuples.
    with txn.update_schema() as update:
        for name in evolution.dropped:
            update.delete_column((name,))
        for name in evolution.added:
            new = by_name[name]
            update.add_column((name,), new.field_type, doc=new.doc, required=False)
        for name, new_type in evolution.widened.items():
            update.update_column((name,), field_type=new_type)
        for name in evolution.relaxed:
            update.make_column_optional((name,))
        for name, doc in evolution.docs.items():
            if doc is not None:
                update.update_column((name,), doc=doc)
        if evolution.reordered:
            # Keep the source's column order (a new column in the middle stays in the middle).
            previous = None
            for wanted_field in wanted.fields:
                if previous is None:
                    update.move_first((wanted_field.name,))
                else:
                    update.move_after((wanted_field.name,), (previous,))
                previous = wanted_field.name


def target_arrow_schema(arrow_schema: pa.Schema, evolution: Evolution) -> pa.Schema:
    """The Arrow schema rows are written with: the source's, with columns the table keeps wider cast up."""
    if not evolution.kept_wider:
        return arrow_schema
    fields = []
    for arrow_field in arrow_schema:
        wide = evolution.kept_wider.get(arrow_field.name)
        if wide is not None:
            arrow_field = arrow_field.with_type(_arrow_type(wide))
        fields.append(arrow_field)
    return pa.schema(fields, metadata=arrow_schema.metadata)


def _arrow_type(iceberg_type: IcebergType) -> pa.DataType:
    if isinstance(iceberg_type, LongType):
        return pa.int64()
    if isinstance(iceberg_type, DoubleType):
        return pa.float64()
    if isinstance(iceberg_type, DecimalType):
        return pa.decimal128(iceberg_type.precision, iceberg_type.scale)
    raise TypeError(f"no wider Arrow type for {iceberg_type}")
