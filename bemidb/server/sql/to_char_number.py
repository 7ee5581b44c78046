"""Postgres to_char(number, template) for the digit templates (9 0 . D , G, FM prefix) as one DuckDB
expression: the value is printed once as a fixed-scale decimal, then each template position takes its digit
or a blank (leading zeros of 9-positions), group separators print only after a digit, the sign goes right
before the first digit, FM drops the blanks and the 9-positions' trailing zeros, overflow prints #.
S before and MI after the digits place the sign. Other templates (PR, L, RN, EEEE ...) are not read here (the caller leaves the call as it was).
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp

_TEMPLATE = re.compile(r"(FM)?(S)?([90.,DG]+)(MI)?")


def is_number_template(fmt: str) -> bool:
    m = _TEMPLATE.fullmatch(fmt)
    return bool(m) and any(c in "90" for c in m.group(3)) and sum(c in ".D" for c in m.group(3)) <= 1 and \
        not (m.group(2) and m.group(4))


def to_char_number(value: exp.Expression, fmt: str) -> exp.Expression | None:
    m = _TEMPLATE.fullmatch(fmt)
    if not is_number_template(fmt) or m is None:
        return None
    fill_mode, body = bool(m.group(1)), m.group(3).replace("D", ".").replace("G", ",")
    plus, trailing = bool(m.group(2)), bool(m.group(4))  # S: '+' or '-' before the digits; MI: '-' or ' ' after
    int_part, _, frac_part = body.partition(".")
    has_point = "." in body
    int_digits = sum(c in "90" for c in int_part)
    frac = frac_part.replace(",", "")  # group separators after the point print as-is in Postgres; rare
    first_zero = int_part.replace(",", "").find("0")
    zero_at = first_zero if first_zero >= 0 else int_digits
    ip = "split_part(s, '.', 1)"
    ipad = f"lpad({ip}, {max(int_digits, 1)}, '0')"
    start = f"least({int_digits} - length(ltrim({ip}, '0')), {zero_at})"
    pieces, digit = [], 0
    for ch in int_part:
        if ch == ",":
            pieces.append(f"CASE WHEN {start} < {digit} THEN ',' ELSE ' ' END")
        else:
            pieces.append(f"CASE WHEN {digit} >= {start} THEN substr({ipad}, {digit + 1}, 1) ELSE ' ' END")
            digit += 1
    text = " || ".join(pieces) if pieces else "''"
    if has_point:
        fp = "split_part(s, '.', 2)"
        last_zero = frac.rfind("0") + 1
        fixed, tail = f"substr({fp}, 1, {last_zero})", f"substr({fp}, {last_zero + 1})"
        fraction = f"{fixed} || rtrim({tail}, '0')" if fill_mode else fp
        text = f"({text}) || '.' || {fraction}"
    sign = "CASE WHEN v < 0 THEN '-' ELSE '+' END" if plus else "''" if trailing else \
        "CASE WHEN v < 0 THEN '-' ELSE '' END"
    width = len(body) if trailing else 1 + len(body)
    shown = f"{sign} || ltrim({text})" if fill_mode else f"lpad({sign} || ltrim({text}), {width}, ' ')"
    if trailing:
        shown += " || CASE WHEN v < 0 THEN '-' ELSE " + ("''" if fill_mode else "' '") + " END"
    overflow = "'" + ("" if fill_mode else " ") + re.sub(r"[90]", "#", body) + "'"
    inner = (f"CASE WHEN length({ip}) > {max(int_digits, 1)} OR ({int_digits} = 0 AND {ip} <> '0') "
             f"THEN {overflow} ELSE {shown} END")
    sql = (f"CASE WHEN x IS NULL THEN NULL ELSE list_transform([x], v -> list_transform("
           f"[CAST(abs(v) AS DECIMAL(38, {len(frac)}))::VARCHAR], s -> {inner})[1])[1] END")
    tree = sqlglot.parse_one(sql, read="duckdb")
    for column in list(tree.find_all(exp.Column)):
        if column.name == "x" and not column.table:
            column.replace(value.copy())
    return tree
