"""Postgres to_char(timestamp, format) as a DuckDB expression, token by token.

sqlglot's conversion to strftime misses many template patterns (Day -> "%uay", HH -> "HH", "quoted text"),
so the format is read here: each Postgres pattern becomes a strftime piece, with Postgres's blank-padding
(Month and Day to 9 characters unless FM), upper-case variants (MON, DAY) and quoted literal text.
"""

from __future__ import annotations

import re

from sqlglot import exp

# pattern -> (strftime code, pad to width or 0, upper-case). Longest patterns first.
_PATTERNS = [
    ("HH24", "%H", 0, False), ("HH12", "%I", 0, False), ("IYYY", "%G", 0, False), ("YYYY", "%Y", 0, False),
    ("MONTH", "%B", 9, True), ("Month", "%B", 9, False), ("month", "%B", 9, False),
    ("DAY", "%A", 9, True), ("Day", "%A", 9, False), ("day", "%A", 9, False),
    ("MON", "%b", 0, True), ("Mon", "%b", 0, False), ("mon", "%b", 0, False),
    ("DDD", "%j", 0, False), ("YY", "%y", 0, False), ("MM", "%m", 0, False), ("DD", "%d", 0, False),
    ("DY", "%a", 0, True), ("Dy", "%a", 0, False), ("dy", "%a", 0, False),
    ("HH", "%I", 0, False), ("MI", "%M", 0, False), ("SS", "%S", 0, False), ("MS", "%g", 0, False),
    ("US", "%f", 0, False), ("AM", "%p", 0, False), ("PM", "%p", 0, False), ("am", "%p", 0, False),
    ("pm", "%p", 0, False), ("IW", "%V", 0, False), ("TZ", "%Z", 0, False), ("OF", "%z", 0, False),
]
_NO_PAD = {"%d": "%-d", "%m": "%-m", "%H": "%-H", "%I": "%-I", "%M": "%-M", "%S": "%-S", "%j": "%-j"}


def _pieces(fmt: str) -> list[tuple[str, str, int, bool]] | None:
    """[(kind, text, pad, upper)] with kind 'lit' or 'fmt'; None when a pattern is not supported."""
    out: list[tuple[str, str, int, bool]] = []
    i, fill_mode = 0, False
    while i < len(fmt):
        if fmt.startswith("FM", i):
            fill_mode, i = True, i + 2
            continue
        if fmt[i] == '"':
            end = fmt.find('"', i + 1)
            end = len(fmt) if end < 0 else end
            out.append(("lit", fmt[i + 1:end], 0, False))
            i = end + 1
            continue
        for pattern, code, pad, upper in _PATTERNS:
            if fmt.startswith(pattern, i):
                if fill_mode:
                    code, pad = _NO_PAD.get(code, code), 0
                if code == "%p" and pattern.islower():
                    upper = None  # am/pm: lower-case
                out.append(("fmt", code, pad, upper))
                i += len(pattern)
                fill_mode = False
                break
        else:
            if re.match(r"[A-Za-z]", fmt[i]) and fmt[i] not in "T":
                return None  # Q, W, J, CC ... : leave it to the default conversion
            out.append(("lit", fmt[i], 0, False))
            i += 1
    return out


def to_char(value: exp.Expression, fmt: str) -> exp.Expression | None:
    pieces = _pieces(fmt)
    if pieces is None:
        return None
    parts: list[exp.Expression] = []
    for kind, text, pad, upper in pieces:
        if kind == "lit":
            parts.append(exp.Literal.string(text))
            continue
        part: exp.Expression = exp.Anonymous(this="strftime", expressions=[value.copy(), exp.Literal.string(text)])
        if pad:
            part = exp.Anonymous(this="rpad", expressions=[part, exp.Literal.number(pad), exp.Literal.string(" ")])
        if upper:
            part = exp.Upper(this=part)
        elif upper is None:
            part = exp.Lower(this=part)
        parts.append(part)
    if not parts:
        return exp.Literal.string("")
    text = exp.Anonymous(this="concat", expressions=parts) if len(parts) > 1 else parts[0]
    # concat skips NULLs: to_char(NULL, 'Dy DD/MM') must be NULL, not ' /'
    return exp.Case(ifs=[exp.If(this=exp.Is(this=value.copy(), expression=exp.Null()), true=exp.Null())],
                    default=text)
