"""The catalog rows of the synced tables: pg_namespace, pg_class, pg_attribute, pg_type (row and extra types),
pg_index/pg_constraint for primary keys, pg_description, and information_schema's tables, columns and key
usage, built from each table's TableInfo (the SOURCE Postgres types, nullability, order)."""

from __future__ import annotations

from collections.abc import Iterable

from bemidb.quoting import quote_ident_if_needed
from bemidb.server.catalog import pg_types
from bemidb.server.catalog.oids import (
    DEFAULT_COLLATION,
    NS_PUBLIC,
    OWNER_OID,
    PG_CLASS_OID,
    namespace_oid,
    relation_oid,
    stable_oid,
)
from bemidb.server.catalog.pg_proc_rows import PG_PROC
from bemidb.server.catalog.row_shapes import attribute_row, class_row, info_column_row, type_row
from bemidb.server.catalog.static_rows import static_relation_rows
from bemidb.server.catalog.type_description_rows import TYPE_DESCRIPTIONS
from bemidb.storage.catalog import TableInfo

PG_PROC_OID = 1255  # pg_description.classoid of a function
PG_TYPE_OID = 1247  # ... of a type


class RowBuilder:
    """Accumulates the rows of every dynamic relation for one refresh."""

    def __init__(self, database: str):
        self.database = database
        self.rows: dict[tuple[str, str], list[dict]] = {}
        self.extra_types: dict[str, dict] = {}
        self.defs: list[dict] = []  # bemidb_defs: oid -> definition text for pg_get_*def macros
        self.index_columns: list[tuple[int, int, str]] = []  # (index oid, column number, its definition)
        self.used_oids: set[int] = set()

    def add(self, relation: str, row: dict, schema: str = "pg_catalog") -> None:
        self.rows.setdefault((schema, relation), []).append(row)

    def unique(self, oid: int) -> int:
        # A hash collision (~1e-6 for thousands of tables) is resolved by probing, in sorted-name order.
        while oid in self.used_oids:
            oid += 1
        self.used_oids.add(oid)
        return oid

    def column_type(self, text: str) -> tuple[int, int, pg_types.PgType | None]:
        """(type oid, typmod, built-in type or None) for a SOURCE type text; unknown names get a pg_type row."""
        parsed = pg_types.parse_type_name(text)
        if parsed is not None:
            return parsed[0].oid, parsed[1], parsed[0]
        name = text.strip()
        is_array = name.endswith("[]")
        base = name[:-2].strip() if is_array else name
        schema, _, short = base.rpartition(".")
        key = base.lower()
        if key not in self.extra_types:
            oid = stable_oid("type", base)
            array_oid = stable_oid("type", base + "[]")
            nsp = namespace_oid(schema.strip('"')) if schema else NS_PUBLIC
            short = short.strip('"')
            row = {**type_row(pg_types.BY_NAME["text"]), "oid": oid, "typname": short, "typnamespace": nsp,
                   "typcategory": "U", "typispreferred": False, "typarray": array_oid, "typinput": "textin",
                   "typcollation": DEFAULT_COLLATION}
            array_row = {**type_row(pg_types.BY_NAME["_text"]), "oid": array_oid, "typname": "_" + short,
                         "typnamespace": nsp, "typelem": oid, "typarray": 0}
            self.extra_types[key] = row
            self.extra_types[key + "[]"] = array_row
        row = self.extra_types[key + ("[]" if is_array else "")]
        return row["oid"], -1, None


def build_rows(database: str, tables: Iterable[TableInfo]) -> RowBuilder:
    b = RowBuilder(database)
    tables = sorted(tables, key=lambda t: (t.schema, t.name))
    schemas = ["pg_catalog", "public", "information_schema", "pg_toast"]
    schemas += sorted({t.schema for t in tables} - set(schemas))
    for schema in schemas:
        b.add("pg_namespace", {"oid": b.unique(namespace_oid(schema)), "nspname": schema,
                               "nspowner": OWNER_OID, "nspacl": None})
        if schema not in ("pg_toast",):
            b.add("schemata", {"catalog_name": database, "schema_name": schema, "schema_owner": "bemidb",
                               "default_character_set_catalog": None, "default_character_set_schema": None,
                               "default_character_set_name": None, "sql_path": None}, "information_schema")

    # Our catalog relations first: their OIDs are fixed or hashed from fixed names (rows built once).
    static_classes, static_attributes = static_relation_rows()
    b.used_oids.update(row["oid"] for row in static_classes)
    b.rows.setdefault(("pg_catalog", "pg_class"), []).extend(static_classes)
    b.rows.setdefault(("pg_catalog", "pg_attribute"), []).extend(static_attributes)
    b.rows.setdefault(("pg_catalog", "pg_description"), []).extend(
        {"objoid": row[0], "classoid": PG_PROC_OID, "objsubid": 0, "description": row[-1]}
        for row in PG_PROC if row[-1])  # built-in functions' comments (\df+, obj_description)
    b.rows["pg_catalog", "pg_description"].extend(
        {"objoid": oid, "classoid": PG_TYPE_OID, "objsubid": 0, "description": text}
        for oid, text in TYPE_DESCRIPTIONS.items())  # built-in types' comments (DBeaver's data types, \dT+)

    for info in tables:
        nsp = namespace_oid(info.schema)
        kind = "m" if info.source == "matview" else "r"
        oid = b.unique(relation_oid(info.schema, info.name))
        rowtype = b.unique(stable_oid("rowtype", info.schema, info.name))
        pk = tuple(getattr(info, "primary_key", ()) or ())
        indexes = info.indexes if hasattr(info, "indexes") else []
        has_index = bool(pk or indexes)
        relation_row = class_row(oid, info.name, nsp, kind, len(info.columns), rowtype, has_index=has_index)
        rows = getattr(info, "row_count", None)
        if rows is not None:  # the Iceberg snapshot's total-records, current after every sync
            relation_row["reltuples"] = float(rows)
        b.add("pg_class", relation_row)
        # the row type, among the extra types so that format_type and ::regtype name it as Postgres does
        b.extra_types[f"row type {info.schema}.{info.name}"] = {
            **type_row(pg_types.BY_NAME["record"]), "oid": rowtype, "typname": info.name, "typnamespace": nsp,
            "typtype": "c", "typcategory": "C", "typrelid": oid, "typinput": "record_in", "typoutput": "record_out",
            "typreceive": "record_recv", "typsend": "record_send", "typarray": 0, "typalign": "d", "typstorage": "x"}
        if info.comment:
            b.add("pg_description", {"objoid": oid, "classoid": PG_CLASS_OID, "objsubid": 0,
                                     "description": info.comment})
        table_type = "BASE TABLE"
        b.add("tables", {"table_catalog": database, "table_schema": info.schema, "table_name": info.name,
                         "table_type": table_type, "self_referencing_column_name": None, "reference_generation":
                         None, "user_defined_type_catalog": None, "user_defined_type_schema": None,
                         "user_defined_type_name": None, "is_insertable_into": "NO", "is_typed": "NO",
                         "commit_action": None}, "information_schema")
        defaults = info.column_defaults if hasattr(info, "column_defaults") else {}
        for text, enum in (info.enums if hasattr(info, "enums") else {}).items():
            _add_enum(b, text, enum)
        for attnum, col in enumerate(info.columns, start=1):
            type_oid, mod, t = b.column_type(col.pg_type)
            udt = t.name if t else next(r["typname"] for r in b.extra_types.values() if r["oid"] == type_oid)
            attribute = attribute_row(oid, attnum, col.name, type_oid, mod, t, not col.nullable)
            column = info_column_row(database, info.schema, info.name, attnum, col.name, type_oid, mod, t,
                                     col.nullable, udt)
            _add_default(b, info, oid, attnum, defaults.get(col.name) or {}, attribute, column)
            b.add("pg_attribute", attribute)
            b.add("columns", column, "information_schema")
            if col.comment:
                b.add("pg_description", {"objoid": oid, "classoid": PG_CLASS_OID, "objsubid": attnum,
                                         "description": col.comment})
        if pk:
            _add_primary_key(b, info, oid, nsp, pk)
        for index in indexes:
            _add_index(b, info, oid, nsp, index)
        stat = {"relid": oid, "schemaname": info.schema, "relname": info.name, "seq_scan": 0, "seq_tup_read": 0,
                "idx_scan": 0 if pk else None, "idx_tup_fetch": 0 if pk else None, "n_tup_ins": 0, "n_tup_upd": 0,
                "n_tup_del": 0, "n_tup_hot_upd": 0, "n_live_tup": rows or 0, "n_dead_tup": 0, "n_mod_since_analyze": 0,
                "n_ins_since_vacuum": 0, "vacuum_count": 0, "autovacuum_count": 0, "analyze_count": 0,
                "autoanalyze_count": 0, "n_tup_newpage_upd": 0}
        b.add("pg_stat_user_tables", stat)
        b.add("pg_stat_all_tables", stat)
        b.add("pg_statio_user_tables", {"relid": oid, "schemaname": info.schema, "relname": info.name,
                                        "heap_blks_read": 0, "heap_blks_hit": 0})
        if kind == "r":
            b.add("pg_tables", {"schemaname": info.schema, "tablename": info.name, "tableowner": "bemidb",
                                "tablespace": None, "hasindexes": has_index, "hasrules": False,
                                "hastriggers": False, "rowsecurity": False})
        else:
            definition = getattr(info, "definition", None) or ""
            b.defs.append({"oid": oid, "def": definition})
            b.add("pg_matviews", {"schemaname": info.schema, "matviewname": info.name, "matviewowner": "bemidb",
                                  "tablespace": None, "hasindexes": False, "ispopulated": True,
                                  "definition": definition})
    for row in b.extra_types.values():
        b.add("pg_type", row)
    return b


def _add_enum(b: RowBuilder, text: str, enum: dict) -> None:
    """A source enum type with the source's OIDs (what its clients and RowDescription say), typtype e, and its
    labels in pg_enum in declaration order."""
    key = text.strip().lower()
    if key in b.extra_types or not isinstance(enum, dict) or not enum.get("oid"):
        return
    schema, _, short = text.strip().rpartition(".")
    short, nsp = short.strip('"'), namespace_oid(schema.strip('"')) if schema else NS_PUBLIC
    oid = int(enum["oid"])
    array_oid = int(enum.get("array_oid") or stable_oid("type", text + "[]"))
    b.extra_types[key] = {
        **type_row(pg_types.BY_NAME["oid"]), "oid": oid, "typname": short, "typnamespace": nsp, "typtype": "e",
        "typcategory": "E", "typispreferred": False, "typarray": array_oid, "typinput": "enum_in",
        "typoutput": "enum_out", "typreceive": "enum_recv", "typsend": "enum_send"}
    b.extra_types[key + "[]"] = {**type_row(pg_types.BY_NAME["_oid"]), "oid": array_oid, "typname": "_" + short,
                                 "typnamespace": nsp, "typelem": oid, "typarray": 0}
    for position, label in enumerate(enum.get("labels") or (), start=1):
        b.add("pg_enum", {"oid": stable_oid("enum", text, label), "enumtypid": oid,
                          "enumsortorder": float(position), "enumlabel": label})


def _add_default(b: RowBuilder, info: TableInfo, relid: int, attnum: int, source: dict, attribute: dict,
                 column: dict) -> None:
    """A column's default / identity / generated expression, as the source had it: pg_attrdef (adbin holds the
    expression's text, which pg_get_expr gives back), pg_attribute's flags, information_schema's columns."""
    default, identity, generated = source.get("default"), source.get("identity"), source.get("generated")
    if identity:
        attribute["attidentity"] = identity
        column.update(is_identity="YES", identity_generation="ALWAYS" if identity == "a" else "BY DEFAULT")
    if default:
        attribute["atthasdef"] = True
        b.add("pg_attrdef", {"oid": b.unique(stable_oid("attrdef", info.schema, info.name, str(attnum))),
                             "adrelid": relid, "adnum": attnum, "adbin": default})
        if generated:
            attribute["attgenerated"] = generated
            column.update(is_generated="ALWAYS", generation_expression=default)
        else:
            column["column_default"] = default


def _per_key(index: dict, field: str, keys: list[int]) -> list[int]:
    """One value per key column as the source had it (0s for a table synced before they were recorded)."""
    values = index.get(field)
    return [int(v) for v in values] if isinstance(values, list) and len(values) == len(keys) else [0] * len(keys)


def _add_index(b: RowBuilder, info: TableInfo, relid: int, nsp: int, index: dict) -> None:
    """One of the source's other indexes, as metadata (pg_class, pg_index, pg_indexes, the definition)."""
    names = [c.name for c in info.columns]
    columns = index.get("columns") or []
    keys = [names.index(c) + 1 if c in names else 0 for c in columns]  # 0: an expression, as in Postgres
    name, unique, using = index.get("name"), bool(index.get("unique")), index.get("using")
    if not name or not using or not keys:
        return
    index_oid = b.unique(stable_oid("index", info.schema, name))
    b.add("pg_class", class_row(index_oid, name, nsp, "i", len(keys)))
    b.add("pg_index", {"indexrelid": index_oid, "indrelid": relid, "indnatts": len(keys), "indnkeyatts": len(keys),
                       "indisunique": unique, "indnullsnotdistinct": False, "indisprimary": False,
                       "indisexclusion": False, "indimmediate": True, "indisclustered": False, "indisvalid": True,
                       "indcheckxmin": False, "indisready": True, "indislive": True, "indisreplident": False,
                       "indkey": keys, "indcollation": _per_key(index, "collations", keys),
                       "indclass": _per_key(index, "classes", keys), "indoption": _per_key(index, "options", keys),
                       "indexprs": None, "indpred": None})
    texts = index.get("keys") or []
    for position, attnum in enumerate(keys, start=1):
        column = names[attnum - 1] if attnum else (texts[position - 1].split("(")[0] if len(texts) >= position
                                                   else f"expr{position}")
        b.add("pg_attribute", attribute_row(index_oid, position, column, 0, -1, None, False))
        text = texts[position - 1] if len(texts) >= position else quote_ident_if_needed(column)
        b.index_columns.append((index_oid, position, text))
    definition = (f"CREATE {'UNIQUE ' if unique else ''}INDEX {quote_ident_if_needed(name)} ON "
                  f"{quote_ident_if_needed(info.schema)}.{quote_ident_if_needed(info.name)} USING {using}")
    b.defs.append({"oid": index_oid, "def": definition})
    b.add("pg_indexes", {"schemaname": info.schema, "tablename": info.name, "indexname": name,
                         "tablespace": None, "indexdef": definition})
    if index.get("constraint") and all(keys):  # UNIQUE (...): SQLAlchemy's get_unique_constraints, DBeaver
        con_oid = b.unique(stable_oid("constraint", info.schema, info.name, name))
        b.add("pg_constraint", {"oid": con_oid, "conname": name, "connamespace": nsp, "contype": "u",
                                "condeferrable": False, "condeferred": False, "convalidated": True,
                                "conrelid": relid, "contypid": 0, "conindid": index_oid, "conparentid": 0,
                                "confrelid": 0, "confupdtype": " ", "confdeltype": " ", "confmatchtype": " ",
                                "conislocal": True, "coninhcount": 0, "connoinherit": True, "conkey": keys})
        cols = ", ".join(quote_ident_if_needed(names[k - 1]) for k in keys)
        b.defs.append({"oid": con_oid, "def": f"UNIQUE ({cols})"})
        _add_key_constraint(b, info, name, "UNIQUE", [names[k - 1] for k in keys])


def _add_primary_key(b: RowBuilder, info: TableInfo, relid: int, nsp: int, pk: tuple[str, ...]) -> None:
    names = [c.name for c in info.columns]
    keys = [names.index(k) + 1 for k in pk if k in names]
    if not keys:
        return
    index_name = f"{info.name}_pkey"
    index_oid = b.unique(stable_oid("index", info.schema, index_name))
    con_oid = b.unique(stable_oid("constraint", info.schema, info.name, index_name))
    cols = ", ".join(quote_ident_if_needed(k) for k in pk)
    b.add("pg_class", class_row(index_oid, index_name, nsp, "i", len(keys)))
    b.add("pg_index", {"indexrelid": index_oid, "indrelid": relid, "indnatts": len(keys), "indnkeyatts": len(keys),
                       "indisunique": True, "indnullsnotdistinct": False, "indisprimary": True,
                       "indisexclusion": False, "indimmediate": True, "indisclustered": False, "indisvalid": True,
                       "indcheckxmin": False, "indisready": True, "indislive": True, "indisreplident": False,
                       "indkey": keys, "indcollation": [0] * len(keys), "indclass": [0] * len(keys),
                       "indoption": [0] * len(keys), "indexprs": None, "indpred": None})
    b.add("pg_constraint", {"oid": con_oid, "conname": index_name, "connamespace": nsp, "contype": "p",
                            "condeferrable": False, "condeferred": False, "convalidated": True, "conrelid": relid,
                            "contypid": 0, "conindid": index_oid, "conparentid": 0, "confrelid": 0,
                            "confupdtype": " ", "confdeltype": " ", "confmatchtype": " ", "conislocal": True,
                            "coninhcount": 0, "connoinherit": True, "conkey": keys})
    for position, attnum in enumerate(keys, start=1):
        b.add("pg_attribute", attribute_row(index_oid, position, names[attnum - 1], 0, -1, None, False))
        b.index_columns.append((index_oid, position, quote_ident_if_needed(names[attnum - 1])))
    b.defs.append({"oid": con_oid, "def": f"PRIMARY KEY ({cols})"})
    b.defs.append({"oid": index_oid, "def": f"CREATE UNIQUE INDEX {quote_ident_if_needed(index_name)} ON "
                                            f"{quote_ident_if_needed(info.schema)}.{quote_ident_if_needed(info.name)} "
                                            f"USING btree ({cols})"})
    b.add("pg_indexes", {"schemaname": info.schema, "tablename": info.name, "indexname": index_name,
                         "tablespace": None, "indexdef": b.defs[-1]["def"]})
    _add_key_constraint(b, info, index_name, "PRIMARY KEY", list(pk))


def _add_key_constraint(b: RowBuilder, info: TableInfo, name: str, kind: str, columns: list[str]) -> None:
    """information_schema's rows of a PRIMARY KEY or UNIQUE constraint (Power BI, dbt, Metabase read them)."""
    base = {"constraint_catalog": b.database, "constraint_schema": info.schema, "constraint_name": name,
            "table_catalog": b.database, "table_schema": info.schema, "table_name": info.name}
    b.add("table_constraints", {**base, "constraint_type": kind, "is_deferrable": "NO", "initially_deferred": "NO",
                                "enforced": "YES", "nulls_distinct": "YES" if kind == "UNIQUE" else None},
          "information_schema")
    for position, column in enumerate(columns, start=1):
        b.add("key_column_usage", {**base, "column_name": column, "ordinal_position": position,
                                   "position_in_unique_constraint": None}, "information_schema")
