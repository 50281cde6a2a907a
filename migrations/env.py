"""Alembic environment. Store.migrate() hands over its own connection; the alembic CLI uses DATABASE_URL."""

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

from mnist.store import Base

config = context.config
target_metadata = Base.metadata  # for `alembic revision --autogenerate`; migrations never import it
if config.config_file_name is not None:  # the CLI's alembic.ini; Store.migrate() leaves app logging alone
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def run(connection) -> None:
    """Run the pending revisions on one connection, in one transaction where the backend allows."""
    # render_as_batch: SQLite can't ALTER most things, so autogenerate writes copy-and-move batches.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def database_url() -> str:
    """An explicit sqlalchemy.url in the config wins; otherwise the app's own setting."""
    from mnist.config import get_settings

    return config.get_main_option("sqlalchemy.url") or get_settings().database_url


if context.is_offline_mode():  # `alembic upgrade head --sql`: print the DDL for a DBA
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (shared := config.attributes.get("connection")) is not None:
    run(shared)
else:
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        run(connection)
    engine.dispose()
