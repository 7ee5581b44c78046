"""json(b)_each(_text) and json(b)_array_elements(_text) in FROM, with Postgres's columns (key, value).

DuckDB's json_each gives eight columns (key, value, type, atom, id, parent, fullkey, path); an UNNEST is
named `unnest`. Postgres gives `key, value` (each) or `value` (array elements), jsonb values printed with its
blanks, the _text forms' values as text (a JSON null as NULL). Rewritten before the remap walks the tree, from
the Postgres call; the argument is then remapped like any other expression.
"""

from __future__ import annotations

from sqlglot import exp

from bemidb.server.sql import remap_json
from bemidb.server.sql.nodes import call

_DUCKDB = "bemidb_duckdb_json_each"
_FUNCTIONS = {f"{kind}_{shape}{text}" for kind in ("json", "jsonb") for shape in ("each", "array_elements")
              for text in ("", "_text")}


def table_functions(tree: exp.Expression) -> None:
    bare = {c.name for c in tree.find_all(exp.Column) if not c.table}
    for table in list(tree.find_all(exp.Table)):
        fn = table.this
        if not isinstance(fn, exp.Anonymous) or fn.name.lower() not in _FUNCTIONS or len(fn.expressions) != 1 or \
                fn.meta.get(_DUCKDB):
            continue
        alias = table.args.get("alias")
        if alias is not None and not alias.columns and alias.name in bare:
            continue  # `FROM jsonb_array_elements(..) AS e` read as `e`: the scalar's own name, as it was
        table.replace(_subquery(fn.name.lower(), fn.expressions[0], alias))


def _subquery(name: str, argument: exp.Expression, alias: exp.TableAlias | None) -> exp.Expression:
    value: exp.Expression = exp.column("value")
    if name.endswith("_text"):
        value = call("json_extract_string", value, exp.Literal.string("$"))
    elif name.startswith("jsonb"):  # described as jsonb (column_origins sees this cast)
        value = exp.Cast(this=remap_json.spaced(value), to=exp.DataType.build("jsonb", dialect="postgres"))
    else:  # json keeps its input's text; written as usual ({"b": 2}), that is jsonb's spacing
        value = remap_json.spaced(value)
    columns = [exp.column("key")] if "_each" in name else []
    each = call("json_each", argument.copy())
    each.meta[_DUCKDB] = True  # DuckDB's json_each now, not Postgres's
    select = exp.select(*columns, exp.alias_(value, "value")).from_(exp.Table(this=each))
    alias = alias.copy() if alias is not None else exp.TableAlias(this=exp.to_identifier(name))
    return exp.Subquery(this=select, alias=alias)
