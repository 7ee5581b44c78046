"""Cutting a simple Query message into statements, as the client wrote them (a small lexer: quotes, dollar
quotes, comments, parentheses), and trimming the comments around one statement."""

from __future__ import annotations

import re


def split(sql: str) -> list[str]:
    """Statements of a simple Query message, in order, as the client wrote them; comments-only input gives [].

    Splits on top-level semicolons with a small lexer (quotes, dollar quotes, comments, parentheses), so the
    text of each statement reaches `translate` untouched (sqlglot would re-generate it)."""
    out, start, i, n = [], 0, 0, len(sql)
    depth = 0
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            j = i + 1
            while j < n:
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:
                        j += 2
                        continue
                    break
                if ch == "'" and sql[j] == "\\" and i > 0 and sql[i - 1] in "eE":
                    j += 1
                j += 1
            i = j + 1
            continue
        if ch == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if ch == "/" and sql.startswith("/*", i):
            level, j = 1, i + 2
            while j < n and level:
                if sql.startswith("/*", j):
                    level, j = level + 1, j + 2
                elif sql.startswith("*/", j):
                    level, j = level - 1, j + 2
                else:
                    j += 1
            i = j
            continue
        if ch == "$":
            m = _DOLLAR_TAG.match(sql, i)
            if m and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
                end = sql.find(m.group(0), m.end())
                i = n if end < 0 else end + len(m.group(0))
                continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif ch == ";" and depth == 0:
            out.append(sql[start:i])
            start = i + 1
        i += 1
    out.append(sql[start:])
    return [s.strip() for s in out if strip_comments(s).strip()]


_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def strip_comments(sql: str) -> str:
    """Leading/trailing comments and whitespace removed (inner ones kept)."""
    text = sql.strip()
    while True:
        if text.startswith("--"):
            nl = text.find("\n")
            text = "" if nl < 0 else text[nl + 1:].lstrip()
        elif text.startswith("/*"):
            end = text.find("*/")
            text = "" if end < 0 else text[end + 2:].lstrip()
        else:
            break
    return text.rstrip().rstrip(";").rstrip()
