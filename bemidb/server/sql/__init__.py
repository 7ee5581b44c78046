"""SQL translation: a client's text classified into a plan per statement kind, and Postgres SQL rewritten
into DuckDB SQL (sqlglot) through tables of transforms, plus to_char.

May import catalog/ (relation and function names) and server's errors and settings; never protocol/ or codec/.
"""
