"""Add papers.doi (unique natural key for imports) and users.last_login_at.

Both columns are nullable, so the change is expand-only: the previous release keeps working
against the new schema while a rolling deploy is under way.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Microsecond precision on MariaDB (plain DATETIME would truncate it), as in fleetapp.models.
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("papers") as batch:
        batch.add_column(sa.Column("doi", sa.String(255), nullable=True))
        batch.create_unique_constraint(op.f("uq_papers_doi"), ["doi"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("last_login_at", TIMESTAMP, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("last_login_at")
    with op.batch_alter_table("papers") as batch:
        batch.drop_constraint(op.f("uq_papers_doi"), type_="unique")
        batch.drop_column("doi")
