"""Parameters the client declared json/jsonb at Parse, cast in the text so the rewrite sees their type.

Postgres types `$1` from Parse's OIDs; the rewrite reads only the text, so `doc @> $1` with a jsonb parameter
(postgres.js `sql.json`) was taken for array containment. Only json/jsonb change an operator's meaning here."""

from __future__ import annotations

import re

_JSON_OIDS = {114: "json", 3802: "jsonb"}
# $n not followed by a digit (so $1 is not $10) and not already cast
_PLACEHOLDER = re.compile(r"\$(\d+)(?!\d)(?!\s*::)")


def cast_json_parameters(sql: str, oids: list[int]) -> str:
    names = {i + 1: _JSON_OIDS[oid] for i, oid in enumerate(oids) if oid in _JSON_OIDS}
    if not names:
        return sql
    return _PLACEHOLDER.sub(lambda m: f"{m.group(0)}::{names[int(m.group(1))]}" if int(m.group(1)) in names
                            else m.group(0), sql)
