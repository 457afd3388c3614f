import click
from flask import current_app
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

metadata = MetaData()

counters = Table(
    "counters",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("value", Integer, nullable=False),
)


def get_engine():
    engine = current_app.extensions.get("hello_engine")
    if engine is None:
        engine = create_engine(current_app.config["DATABASE_URL"], pool_pre_ping=True)
        current_app.extensions["hello_engine"] = engine
    return engine


def bump(name):
    """Add one to a counter and return the new value.

    The UPDATE locks the row, so concurrent requests queue behind each other instead of
    losing increments; the first visit ever inserts the row (and a racing first visit that
    loses the INSERT simply updates).
    """
    engine = get_engine()
    step = update(counters).where(counters.c.name == name).values(value=counters.c.value + 1)
    with engine.begin() as conn:
        if conn.execute(step).rowcount == 0:
            try:
                with conn.begin_nested():
                    conn.execute(insert(counters).values(name=name, value=1))
            except IntegrityError:
                conn.execute(step)
        return conn.execute(select(counters.c.value).where(counters.c.name == name)).scalar_one()


@click.command("init-db")
def init_db_command():
    """Create the tables that do not exist yet (safe to run again)."""
    metadata.create_all(get_engine())
    click.echo("Initialized the database.")


def init_app(app):
    app.cli.add_command(init_db_command)
