"""SQLAlchemy 2 models. The schema itself is owned by the alembic migrations, never create_all()."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Self

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from fleetapp.extensions import db

# Deterministic constraint names: alembic can then alter or drop them on MariaDB and in SQLite
# batch mode, where an unnamed constraint cannot be addressed.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# MariaDB's plain DATETIME drops fractions of a second; digests compare creation times, so keep
# microseconds there as SQLite does.
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def utcnow() -> datetime:
    """Naive UTC: MariaDB DATETIME has no zone, so the app stores UTC everywhere."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class CRUDMixin:
    """The few persistence verbs the views and tasks need. Callers own the transaction (commit)."""

    @classmethod
    def get(cls, ident: Any) -> Self | None:
        return db.session.get(cls, ident)

    @classmethod
    def create(cls, **fields: Any) -> Self:
        obj = cls(**fields)
        db.session.add(obj)
        db.session.flush()
        return obj

    def update(self, **fields: Any) -> Self:
        for name, value in fields.items():
            setattr(self, name, value)
        db.session.flush()
        return self

    def delete(self) -> None:
        db.session.delete(self)
        db.session.flush()


class User(CRUDMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    # Added by revision 0002.
    last_login_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)

    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "email": self.email, "is_admin": self.is_admin}


class Keyword(CRUDMixin, Base):
    __tablename__ = "keywords"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    term: Mapped[str] = mapped_column(String(64), unique=True)


class Subscription(CRUDMixin, Base):
    __tablename__ = "subscriptions"
    # Matching looks subscriptions up by keyword; the primary key already serves by-user lookups.
    __table_args__ = (Index("ix_subscriptions_keyword_id", "keyword_id"),)

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    keyword_id: Mapped[int] = mapped_column(
        ForeignKey("keywords.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    user: Mapped[User] = relationship(back_populates="subscriptions")
    keyword: Mapped[Keyword] = relationship()


class ImportJob(CRUDMixin, Base):
    __tablename__ = "import_jobs"
    __table_args__ = (Index("ix_import_jobs_created_by", "created_by"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    # The validated batch waits here so the task message carries only the job id.
    payload: Mapped[Any] = mapped_column(JSON, nullable=True)
    paper_count: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class Paper(CRUDMixin, Base):
    __tablename__ = "papers"
    __table_args__ = (
        # Listing and date-range queries sort and filter on publication date.
        Index("ix_papers_published_on", "published_on"),
        Index("ix_papers_import_job_id", "import_job_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    abstract: Mapped[str] = mapped_column(Text, default="")
    authors: Mapped[list[str]] = mapped_column(JSON, default=list)
    published_on: Mapped[date] = mapped_column(Date)
    import_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("import_jobs.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    # Added by revision 0002: the natural key that makes re-imports detectable.
    doi: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)

    keywords: Mapped[list[Keyword]] = relationship(
        secondary="paper_keywords", order_by="Keyword.term"
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "abstract": self.abstract,
            "authors": list(self.authors or []),
            "published_on": self.published_on.isoformat(),
            "doi": self.doi,
            "keywords": [keyword.term for keyword in self.keywords],
        }


class PaperKeyword(Base):
    """A paper matched to a keyword by the match task."""

    __tablename__ = "paper_keywords"
    __table_args__ = (Index("ix_paper_keywords_keyword_id", "keyword_id"),)

    paper_id: Mapped[int] = mapped_column(
        ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True
    )
    keyword_id: Mapped[int] = mapped_column(
        ForeignKey("keywords.id", ondelete="CASCADE"), primary_key=True
    )


class Star(CRUDMixin, Base):
    __tablename__ = "stars"
    __table_args__ = (Index("ix_stars_paper_id", "paper_id"),)

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    paper_id: Mapped[int] = mapped_column(
        ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Digest(CRUDMixin, Base):
    __tablename__ = "digests"
    __table_args__ = (Index("ix_digests_user_id_created_at", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    paper_ids: Mapped[list[int]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
