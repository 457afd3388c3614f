"""Alembic glue shared by the CLI, the readiness check and the tests."""

from __future__ import annotations

from functools import cache

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

# The same location alembic.ini names, so `alembic upgrade head` and `flask db upgrade` agree.
SCRIPT_LOCATION = "fleetapp:migrations"


def alembic_config(url: str | None = None) -> Config:
    """A Config that needs no alembic.ini; env.py takes the URL from its attributes."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if url is not None:
        config.attributes["url"] = url
    return config


@cache
def head_revisions() -> frozenset[str]:
    # The scripts ship inside the package and never change while the process runs.
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


@cache
def known_revisions() -> frozenset[str]:
    """Every revision this release's scripts define."""
    script = ScriptDirectory.from_config(alembic_config())
    return frozenset(rev.revision for rev in script.walk_revisions())


def current_revisions(connection: Connection) -> frozenset[str]:
    return frozenset(MigrationContext.configure(connection).get_current_heads())


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url=url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url=url), revision)
