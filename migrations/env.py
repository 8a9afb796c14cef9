"""Alembic's environment for the delivery log. Configured from code
(``pipeline.delivery_log.migrate``), so ``jira-impact db upgrade`` works from any directory: the
caller hands over an open connection."""

from alembic import context

from pipeline.delivery_log import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the migrations through `jira-impact db upgrade`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
