"""Values on the wire: Arrow columns encoded in Postgres's text and binary formats (vectorised), datetime text,
and parameters decoded from the client.

May import catalog/pg_types (the type table) only; never sql/ or protocol/.
"""
