"""Users from the users file and what each may read: tables, columns and rows (enforced by sql/grants.py)."""
