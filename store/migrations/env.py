"""Alembic environment: migrates the URL given by store.migrate (or DATABASE_URL)."""

from __future__ import annotations

from alembic import context

import store.tokens  # noqa: F401  (its table joins Base.metadata, for autogenerate)
from store.cases import make_engine
from store.schema import Base

url = context.config.get_main_option("sqlalchemy.url")
assert url, "store.migrate sets sqlalchemy.url"

engine = make_engine(url)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=url.startswith("sqlite"),  # SQLite alters tables by copying them
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
