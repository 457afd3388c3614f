"""Domain operations shared by the API, the Celery tasks and the CLI.

Functions take and return ids and plain data so that tasks can call them with message
arguments; each owns its transaction and leaves the session clean.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import date, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import selectinload

from fleetapp.cache import invalidate_papers
from fleetapp.extensions import db, get_settings, redis_clients
from fleetapp.models import (
    Digest,
    ImportJob,
    Keyword,
    Paper,
    PaperKeyword,
    Subscription,
    User,
    utcnow,
)

log = logging.getLogger(__name__)

HEARTBEAT_KEY = "fleetapp:heartbeat"
DIGEST_MAX_PAPERS = 100


class ImportRejected(Exception):
    """The batch cannot be imported as a whole; nothing of it was written."""


# --- papers -------------------------------------------------------------------------------


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def query_papers(filters: dict[str, Any]) -> dict[str, Any]:
    """Run a validated paper query; the result is plain JSON-ready data (it gets cached)."""
    stmt = select(Paper)
    if filters.get("q"):
        pattern = f"%{_escape_like(filters['q'])}%"
        stmt = stmt.where(
            or_(
                Paper.title.ilike(pattern, escape="\\"),
                Paper.abstract.ilike(pattern, escape="\\"),
            )
        )
    if filters.get("keywords"):
        matched = (
            select(PaperKeyword.paper_id)
            .join(Keyword, Keyword.id == PaperKeyword.keyword_id)
            .where(Keyword.term.in_(filters["keywords"]))
        )
        stmt = stmt.where(Paper.id.in_(matched))
    if filters.get("published_from"):
        stmt = stmt.where(Paper.published_on >= date.fromisoformat(filters["published_from"]))
    if filters.get("published_to"):
        stmt = stmt.where(Paper.published_on <= date.fromisoformat(filters["published_to"]))

    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    order = {
        "newest": (Paper.published_on.desc(), Paper.id.desc()),
        "oldest": (Paper.published_on.asc(), Paper.id.asc()),
        "title": (Paper.title.asc(), Paper.id.asc()),
    }[filters["sort"]]
    page, per_page = filters["page"], filters["per_page"]
    papers = db.session.scalars(
        stmt.options(selectinload(Paper.keywords))
        .order_by(*order)
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return {
        "items": [paper.to_dict() for paper in papers],
        "page": page,
        "per_page": per_page,
        "total": total,
    }


def unknown_keywords(terms: list[str]) -> list[str]:
    if not terms:
        return []
    known = set(db.session.scalars(select(Keyword.term).where(Keyword.term.in_(terms))))
    return [term for term in terms if term not in known]


# --- import -------------------------------------------------------------------------------


def create_import_job(user_id: int, papers: list[dict[str, Any]], task_id: str) -> ImportJob:
    job = ImportJob.create(
        task_id=task_id,
        created_by=user_id,
        status="queued",
        payload=papers,
        paper_count=len(papers),
    )
    db.session.commit()
    return job


def mark_job_failed(job_id: int, error: str) -> None:
    db.session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id)
        .values(status="failed", error=error[:2000], finished_at=utcnow())
    )
    db.session.commit()


def run_import(job_id: int) -> dict[str, Any]:
    """Insert a job's whole batch in one transaction, or none of it.

    Safe to run twice (acks_late redelivers after a worker crash): a finished job is left alone,
    and the row lock serialises two deliveries racing each other.
    """
    session = db.session
    job = session.get(ImportJob, job_id, with_for_update=True)
    if job is None:
        raise ImportRejected(f"import job {job_id} does not exist")
    if job.status in ("done", "failed"):
        result = {"job_id": job.id, "status": job.status, "imported": job.paper_count}
        session.rollback()
        return result
    try:
        items: list[dict[str, Any]] = job.payload or []
        dois = [item["doi"] for item in items if item.get("doi")]
        if dois:
            existing = sorted(session.scalars(select(Paper.doi).where(Paper.doi.in_(dois))))
            if existing:
                raise ImportRejected(f"papers already imported (doi): {', '.join(existing)}")
        session.add_all(
            Paper(
                title=item["title"],
                abstract=item.get("abstract", ""),
                authors=item.get("authors", []),
                published_on=date.fromisoformat(item["published_on"]),
                doi=item.get("doi"),
                import_job_id=job.id,
            )
            for item in items
        )
        job.status = "done"
        job.finished_at = utcnow()
        # The batch now lives in papers; keeping a second copy would only grow the table.
        job.payload = None
        session.commit()
    except OperationalError:
        # Transient (connection lost, lock timeout): roll back and let the task retry.
        session.rollback()
        raise
    except ImportRejected as exc:
        session.rollback()
        mark_job_failed(job_id, str(exc))
        raise
    except IntegrityError as exc:
        session.rollback()
        mark_job_failed(job_id, f"batch conflicts with existing data: {exc.orig}")
        raise ImportRejected(f"batch conflicts with existing data: {exc.orig}") from exc
    except Exception as exc:
        session.rollback()
        mark_job_failed(job_id, f"{type(exc).__name__}: {exc}")
        raise
    invalidate_papers()
    log.info("import job %s: %d papers imported", job_id, len(items))
    return {"job_id": job_id, "status": "done", "imported": len(items)}


# --- matching -----------------------------------------------------------------------------


def _term_pattern(term: str) -> re.Pattern[str]:
    # Letters/digits around the term mean it is part of a longer word ("ai" in "detail");
    # \b cannot be used because terms may end in symbols ("c++").
    return re.compile(rf"(?<![a-z0-9]){re.escape(term)}(?![a-z0-9])")


def _link(papers: list[Paper], keywords: list[Keyword]) -> int:
    if not papers or not keywords:
        return 0
    rows = db.session.execute(
        select(PaperKeyword.paper_id, PaperKeyword.keyword_id).where(
            PaperKeyword.paper_id.in_([paper.id for paper in papers]),
            PaperKeyword.keyword_id.in_([keyword.id for keyword in keywords]),
        )
    )
    existing = {(row.paper_id, row.keyword_id) for row in rows}
    patterns = [(keyword.id, _term_pattern(keyword.term)) for keyword in keywords]
    new_links = []
    for paper in papers:
        text = f"{paper.title}\n{paper.abstract}".lower()
        for keyword_id, pattern in patterns:
            if (paper.id, keyword_id) not in existing and pattern.search(text):
                new_links.append(PaperKeyword(paper_id=paper.id, keyword_id=keyword_id))
    db.session.add_all(new_links)
    db.session.commit()
    if new_links:
        invalidate_papers()
    return len(new_links)


def match_job(job_id: int) -> int:
    """Link a finished import's papers to every known keyword they mention."""
    papers = list(db.session.scalars(select(Paper).where(Paper.import_job_id == job_id)))
    keywords = list(db.session.scalars(select(Keyword)))
    return _link(papers, keywords)


def match_keyword(keyword_id: int) -> int:
    """Backfill a newly subscribed keyword against the papers already stored."""
    keyword = db.session.get(Keyword, keyword_id)
    if keyword is None:
        return 0
    # LIKE narrows the candidates in the database; the regex then applies word boundaries.
    pattern = f"%{_escape_like(keyword.term)}%"
    papers = list(
        db.session.scalars(
            select(Paper).where(
                or_(
                    Paper.title.ilike(pattern, escape="\\"),
                    Paper.abstract.ilike(pattern, escape="\\"),
                )
            )
        )
    )
    return _link(papers, [keyword])


# --- subscriptions ------------------------------------------------------------------------


def subscribe(user_id: int, term: str) -> tuple[Keyword, bool, bool]:
    """Return (keyword, subscription_created, keyword_created)."""
    keyword = db.session.scalar(select(Keyword).where(Keyword.term == term))
    keyword_created = keyword is None
    if keyword is None:
        keyword = Keyword.create(term=term)
    if db.session.get(Subscription, (user_id, keyword.id)) is not None:
        return keyword, False, keyword_created
    Subscription.create(user_id=user_id, keyword_id=keyword.id)
    db.session.commit()
    return keyword, True, keyword_created


def unsubscribe(user_id: int, term: str) -> bool:
    keyword = db.session.scalar(select(Keyword).where(Keyword.term == term))
    if keyword is None:
        return False
    subscription = db.session.get(Subscription, (user_id, keyword.id))
    if subscription is None:
        return False
    subscription.delete()
    db.session.commit()
    return True


# --- digests and housekeeping -------------------------------------------------------------


def build_digest(user_id: int) -> dict[str, Any]:
    """Collect papers matched to the user's keywords since their previous digest."""
    if db.session.get(User, user_id) is None:
        return {"user_id": user_id, "digest_id": None, "papers": 0}
    since = db.session.scalar(select(func.max(Digest.created_at)).where(Digest.user_id == user_id))
    stmt = (
        select(Paper.id)
        .join(PaperKeyword, PaperKeyword.paper_id == Paper.id)
        .join(Subscription, Subscription.keyword_id == PaperKeyword.keyword_id)
        .where(Subscription.user_id == user_id)
        .group_by(Paper.id, Paper.published_on)
        .order_by(Paper.published_on.desc(), Paper.id.desc())
        .limit(DIGEST_MAX_PAPERS)
    )
    if since is not None:
        stmt = stmt.where(Paper.created_at > since)
    paper_ids = list(db.session.scalars(stmt))
    if not paper_ids:
        return {"user_id": user_id, "digest_id": None, "papers": 0}
    digest = Digest.create(user_id=user_id, paper_ids=paper_ids)
    db.session.commit()
    return {"user_id": user_id, "digest_id": digest.id, "papers": len(paper_ids)}


def latest_digest(user_id: int) -> dict[str, Any] | None:
    digest = db.session.scalar(
        select(Digest)
        .where(Digest.user_id == user_id)
        .order_by(Digest.created_at.desc(), Digest.id.desc())
        .limit(1)
    )
    if digest is None:
        return None
    papers = db.session.scalars(
        select(Paper).options(selectinload(Paper.keywords)).where(Paper.id.in_(digest.paper_ids))
    ).all()
    by_id = {paper.id: paper for paper in papers}
    return {
        "id": digest.id,
        "created_at": digest.created_at.isoformat() + "Z",
        # Papers deleted since the digest was built are simply left out.
        "papers": [by_id[pid].to_dict() for pid in digest.paper_ids if pid in by_id],
    }


def subscriber_ids() -> list[int]:
    return list(db.session.scalars(select(Subscription.user_id).distinct()))


def cleanup(retention_days: int) -> dict[str, int]:
    """Drop digests and failed-job payloads older than the retention period."""
    cutoff = utcnow() - timedelta(days=retention_days)
    digests = db.session.execute(delete(Digest).where(Digest.created_at < cutoff)).rowcount
    payloads = db.session.execute(
        update(ImportJob)
        .where(ImportJob.finished_at < cutoff, ImportJob.payload.is_not(None))
        .values(payload=None)
    ).rowcount
    db.session.commit()
    return {"digests_deleted": digests, "payloads_cleared": payloads}


def record_heartbeat(now: float | None = None) -> float:
    stamp = time.time() if now is None else now
    # The key outlives the freshness window by far, so "stale" and "never seen" stay distinct.
    ttl = max(int(get_settings().heartbeat_max_age * 10), 600)
    redis_clients.cache.set(HEARTBEAT_KEY, repr(stamp), ex=ttl)
    return stamp


def heartbeat_age() -> float | None:
    """Seconds since the last beat heartbeat, or None if none was recorded."""
    raw = redis_clients.cache.get(HEARTBEAT_KEY)
    if raw is None:
        return None
    return max(0.0, time.time() - float(raw))
