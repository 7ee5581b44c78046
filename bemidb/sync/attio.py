"""`bemidb sync attio`: Attio companies, people and deals -> `<schema>.{companies,people,deals}`, full refresh.

Columns are not hard-coded: each table is `id` (record id), `created_at`, then one column per attribute slug
found in the records, typed from the values' `attribute_type`, so custom attributes sync without code changes:

- scalar payloads become typed columns: text, number (double precision), rating (bigint), checkbox (boolean),
  date, timestamp (timestamptz), domain, email-address, phone-number, select/status (the title), currency
  (double precision: the amount; a currency attribute has one configured currency), actor-reference (the id);
- record-reference (relationships) are always a text[] of target record ids; domain, email-address and
  phone-number are always text[] too (they are multi-valued in Attio even when a record holds one);
- any other type (location, interaction, personal-name, types Attio adds later) is jsonb of the payload;
- an attribute with more than one active value in some record becomes a list (text[], ...; jsonb arrays for
  JSON payloads). Only active values (active_until null) are kept.

Every object is fetched completely (paged to temp files, so memory stays flat) before any table is touched:
a network or credentials failure changes nothing. Each table is then replaced in one atomic commit.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from bemidb.console import UserError
from bemidb.storage.catalog import PROP_SOURCE, open_catalog
from bemidb.sync.http import AuthError, HttpClient, HttpError, bearer_auth
from bemidb.sync.progress import SyncProgress

log = logging.getLogger(__name__)

SOURCE = "attio"
OBJECTS = ("companies", "people", "deals")
PAGE_SIZE = 500  # Attio's maximum page
BATCH_ROWS = 5_000
ENVELOPE = {"active_from", "active_until", "created_by_actor", "attribute_type"}  # not part of the value
# Attributes that repeat the fixed columns (the record id and its creation time).
DUPLICATE_SLUGS = {"record_id", "created_at"}
FIXED = ("id", "created_at")

# kind -> (Arrow type, Postgres type)
KINDS: dict[str, tuple[pa.DataType, str]] = {
    "text": (pa.string(), "text"),
    "double": (pa.float64(), "double precision"),
    "bigint": (pa.int64(), "bigint"),
    "bool": (pa.bool_(), "boolean"),
    "date": (pa.date32(), "date"),
    "ts": (pa.timestamp("us", tz="UTC"), "timestamp with time zone"),
    "json": (pa.string(), "jsonb"),
}


def _title(key: str):
    return lambda entry: (entry.get(key) or {}).get("title")


def _field(key: str):
    return lambda entry: entry.get(key)


# attribute_type -> (kind, how to read the scalar out of one value entry)
SCALAR_TYPES = {
    "text": ("text", _field("value")),
    "number": ("double", _field("value")),
    "rating": ("bigint", _field("value")),
    "checkbox": ("bool", _field("value")),
    "date": ("date", _field("value")),
    "timestamp": ("ts", _field("value")),
    "domain": ("text", _field("domain")),
    "email-address": ("text", _field("email_address")),
    "phone-number": ("text", lambda e: e.get("phone_number") or e.get("original_phone_number")),
    "select": ("text", _title("option")),
    "status": ("text", _title("status")),
    "currency": ("double", _field("currency_value")),
    "actor-reference": ("text", _field("referenced_actor_id")),
    "record-reference": ("text", _field("target_record_id")),
}
ALWAYS_LIST = {"record-reference", "domain", "email-address", "phone-number"}


def payload(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k not in ENVELOPE}


def active(entries) -> list[dict]:
    return [e for e in entries or () if isinstance(e, dict) and e.get("active_until") is None]


# ---------------------------------------------------------------------------------------------------------
# Columns from what the records hold


@dataclass
class AttributeSeen:
    attribute_type: str | None = None
    max_values: int = 0


@dataclass
class Column:
    name: str
    slug: str
    kind: str
    is_list: bool

    @property
    def arrow_type(self) -> pa.DataType:
        base = KINDS[self.kind][0]
        return pa.list_(base) if self.is_list and self.kind != "json" else base

    @property
    def pg_type(self) -> str:
        base = KINDS[self.kind][1]
        return base + "[]" if self.is_list and self.kind != "json" else base

    def value(self, values: list):
        """The cell, from the attribute's compact values (see compact())."""
        if self.kind == "json":
            if not values:
                return None
            return json.dumps(values if self.is_list else values[0], separators=(",", ":"), ensure_ascii=False)
        values = [v for v in values if v is not None]
        if self.is_list:
            return values
        return values[0] if values else None


def compact(record: dict) -> tuple[dict, dict[str, str | None]]:
    """A record reduced to what the table needs: per attribute, its active values as scalars (scalar types)
    or payloads (other types); plus each attribute's type. Smaller to spill and to read back."""
    values, types = {}, {}
    for slug, entries in (record.get("values") or {}).items():
        current = active(entries)
        attribute_type = current[0].get("attribute_type") if current else None
        types[slug] = attribute_type
        extract = SCALAR_TYPES.get(attribute_type, (None, payload))[1]
        values[slug] = [extract(e) for e in current]
    return {"id": (record.get("id") or {}).get("record_id"), "created_at": record.get("created_at"),
            "values": values}, types


@dataclass
class ObjectScan:
    """What one pass over an object's records learned: the attributes and their shapes, in first-seen order."""

    records: int = 0
    attributes: dict[str, AttributeSeen] = field(default_factory=dict)

    def see(self, record: dict, types: dict[str, str | None]) -> None:
        """`record` and `types` as compact() returns them."""
        self.records += 1
        for slug, values in record["values"].items():
            seen = self.attributes.setdefault(slug, AttributeSeen())
            seen.max_values = max(seen.max_values, len(values))
            if seen.attribute_type is None:
                seen.attribute_type = types.get(slug)

    def columns(self) -> list[Column]:
        columns = []
        for slug, seen in self.attributes.items():
            if slug in DUPLICATE_SLUGS:
                continue
            name = f"{slug}_attribute" if slug in FIXED else slug
            is_list = seen.max_values > 1 or seen.attribute_type in ALWAYS_LIST
            if seen.attribute_type in SCALAR_TYPES:
                columns.append(Column(name, slug, SCALAR_TYPES[seen.attribute_type][0], is_list))
            elif seen.attribute_type is None:  # never holds a value: keep the column, as text
                columns.append(Column(name, slug, "text", False))
            else:
                columns.append(Column(name, slug, "json", is_list))
        return columns


def arrow_schema(columns: list[Column]) -> pa.Schema:
    fields = [pa.field("id", pa.string(), metadata={b"pg_type": b"text"}),
              pa.field("created_at", KINDS["ts"][0], metadata={b"pg_type": KINDS["ts"][1].encode()})]
    fields += [pa.field(c.name, c.arrow_type, metadata={b"pg_type": c.pg_type.encode()}) for c in columns]
    return pa.schema(fields)


def record_batches(spill: Path, columns: list[Column], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Re-read the spilled records and build typed batches, BATCH_ROWS records at a time."""
    with open(spill, encoding="utf-8") as lines:
        chunk: list[dict] = []
        for line in lines:
            chunk.append(json.loads(line))
            if len(chunk) >= BATCH_ROWS:
                yield _batch(chunk, columns, schema)
                chunk = []
        if chunk:
            yield _batch(chunk, columns, schema)


def _batch(records: list[dict], columns: list[Column], schema: pa.Schema) -> pa.RecordBatch:
    arrays = [pa.array([r["id"] for r in records], pa.string()),
              _typed([r["created_at"] for r in records], "ts", False)]
    for column in columns:
        values = [column.value(r["values"].get(column.slug) or ()) for r in records]
        arrays.append(_typed(values, column.kind, column.is_list))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _typed(values: list, kind: str, is_list: bool) -> pa.Array:
    """Python values -> the kind's Arrow type. Dates and timestamps are parsed by Arrow (vectorised, and it
    reads Attio's nanosecond timestamps); a value of the wrong shape becomes NULL rather than failing the sync."""
    target = KINDS[kind][0]
    if kind == "json":
        return pa.array(values, pa.string())
    if kind in ("date", "ts"):
        raw_type = pa.list_(pa.string()) if is_list else pa.string()
        wanted = pa.list_(target) if is_list else target
        raw = pa.array([_as_str(v, is_list) for v in values], raw_type)
        try:
            parsed = raw.cast(pa.list_(pa.timestamp("ns", tz="UTC")) if is_list and kind == "ts"
                              else pa.timestamp("ns", tz="UTC") if kind == "ts" else wanted)
            return parsed.cast(wanted, safe=False)  # ns -> us drops sub-microsecond digits on purpose
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return pa.array([_parse_one(v, kind, is_list) for v in values], wanted)
    wanted = pa.list_(target) if is_list else target
    try:
        return pa.array(values, wanted)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([_coerce(v, kind, is_list) for v in values], wanted)


def _as_str(value, is_list: bool):
    if is_list:
        return None if value is None else [str(v) for v in value]
    return None if value is None else str(value)


def _parse_one(value, kind: str, is_list: bool):
    """Slow path, only when a batch holds a malformed date/timestamp: parse each value, bad ones -> NULL."""
    def one(v):
        target = pa.timestamp("ns", tz="UTC") if kind == "ts" else pa.date32()
        try:
            return pa.scalar(str(v)).cast(target).as_py()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    if is_list:
        return None if value is None else [one(v) for v in value]
    return None if value is None else one(value)


def _coerce(value, kind: str, is_list: bool):
    convert = {"text": lambda v: v if isinstance(v, str) else json.dumps(v), "double": float, "bigint": int,
               "bool": lambda v: v if isinstance(v, bool) else str(v).lower() == "true"}[kind]

    def one(v):
        try:
            return None if v is None else convert(v)
        except (TypeError, ValueError, OverflowError):
            return None
    if is_list:
        return None if value is None else [one(v) for v in value]
    return one(value)


# ---------------------------------------------------------------------------------------------------------
# Fetch


class Fetcher:
    def __init__(self, api_url: str, token: str, workdir: Path, client: HttpClient | None = None):
        self.api_url = api_url
        self.client = client or HttpClient(timeout=60, headers=bearer_auth(token))
        self.workdir = workdir

    def fetch(self, obj: str, on_page=None) -> tuple[Path, ObjectScan] | None:
        """Every record of `obj`, paged until an empty page, spilled compacted to a JSON-lines file.

        None when the workspace has no such object (Attio answers 404, e.g. deals not enabled)."""
        spill = self.workdir / f"{obj}.jsonl"
        scan = ObjectScan()
        offset = 0
        previous_first = None
        with open(spill, "w", encoding="utf-8") as out:
            while True:
                response = self.client.request("POST", f"{self.api_url}/objects/{obj}/records/query",
                                               json_body={"limit": PAGE_SIZE, "offset": offset}, accept={404})
                if response.status == 404:
                    return None
                body = response.json()
                page = body.get("data") if isinstance(body, dict) else None
                if not isinstance(page, list):
                    raise HttpError(f"unexpected response for {obj}: no 'data' list")
                if not page:
                    break
                first = json.dumps(page[0].get("id"), sort_keys=True) if isinstance(page[0], dict) else None
                if first is not None and first == previous_first:  # an API ignoring offset would loop forever
                    raise HttpError(f"Attio returned the same page again at offset {offset} for {obj}")
                previous_first = first
                for record in page:
                    record, types = compact(record)
                    scan.see(record, types)
                    out.write(json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n")
                offset += len(page)
                if on_page:
                    on_page(scan.records)
        return spill, scan


# ---------------------------------------------------------------------------------------------------------
# Command


def run(cfg, args) -> int:
    if not cfg.source_attio_api_access_token:
        raise UserError("SOURCE_ATTIO_API_ACCESS_TOKEN (--api-access-token) is required", exit_code=2)
    from bemidb.storage.writer import write_table

    schema_name = cfg.destination_schema or SOURCE
    catalog = open_catalog(cfg)
    _refuse_foreign_tables(catalog, schema_name)
    with SyncProgress("sync attio") as progress, tempfile.TemporaryDirectory(prefix="bemidb-attio-") as workdir:
        fetcher = Fetcher(cfg.source_attio_api_url, cfg.source_attio_api_access_token, Path(workdir))
        fetched: dict[str, tuple[Path, ObjectScan]] = {}
        for obj in OBJECTS:  # all the network work first: a failure here leaves every table as it was
            name = f"{schema_name}.{obj}"
            progress.table_started(name)
            try:
                result = fetcher.fetch(obj, on_page=lambda n, name=name: progress.advance(name, n, 0))
            except AuthError as exc:
                progress.table_done(name, 0, 0, error="credentials rejected")
                raise UserError(f"Attio rejected the access token ({exc}); nothing was changed") from None
            except HttpError as exc:
                progress.table_done(name, 0, 0, error="fetch failed")
                raise UserError(f"Attio query for {obj} failed: {exc}; nothing was changed") from None
            if result is None:
                progress.table_done(name, 0, 0)
                progress.note(f"{name}: the workspace has no '{obj}' object; skipped")
                continue
            fetched[obj] = result
        for obj, (spill, scan) in fetched.items():
            name = f"{schema_name}.{obj}"
            columns = scan.columns()
            schema = arrow_schema(columns)
            written = write_table(catalog, (schema_name, obj), schema, record_batches(spill, columns, schema),
                                  mode="overwrite", properties={PROP_SOURCE: SOURCE},
                                  on_progress=lambda rows, size, name=name: progress.advance(name, rows, size))
            progress.table_done(name, written.rows, written.bytes)
    return 0


def _refuse_foreign_tables(catalog, schema_name: str) -> None:
    """A full refresh replaces the tables: never one that another sync wrote (e.g. --schema public)."""
    from pyiceberg.exceptions import NoSuchTableError

    for obj in OBJECTS:
        try:
            table = catalog.load_table((schema_name, obj))
        except NoSuchTableError:
            continue
        source = table.properties.get(PROP_SOURCE, SOURCE)
        if source != SOURCE:
            raise UserError(f"{schema_name}.{obj} exists and was written by `sync {source}`, not `sync attio`; "
                            "choose another --schema (nothing was changed)")
