"""Alembic environment: the database URL comes from the environment, never from alembic.ini."""

from __future__ import annotations

import logging
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from fleetapp.config import load_migration_settings
from fleetapp.extensions import create_db_engine, wait_for_database
from fleetapp.models import Base

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
log = logging.getLogger("alembic.env")


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table there and is a plain
        # ALTER TABLE on MariaDB.
        render_as_batch=True,
        compare_type=True,
        **kwargs,
    )


def _run(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    settings = load_migration_settings()
    # `flask db upgrade` and the tests pass the URL; the alembic command reads the environment.
    url = config.attributes.get("url") or settings.url
    if context.is_offline_mode():
        _configure(url=url, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_db_engine(url)
    wait_for_database(engine, attempts=settings.connect_retries)
    with engine.connect() as conn:
        log.info("migrating %s", engine.url.render_as_string(hide_password=True))
        _run(conn)
    engine.dispose()


main()
