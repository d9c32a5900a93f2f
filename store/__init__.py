"""The case store (SQLAlchemy; SQLite by default, PostgreSQL by URL) and the file store."""
