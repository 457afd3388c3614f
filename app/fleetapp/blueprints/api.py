"""The JSON API. Every input is validated here, before any service or database call."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import redis
from celery.result import AsyncResult
from flask import Blueprint, Response, jsonify, request, url_for
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from fleetapp import services, tasks
from fleetapp.auth import (
    admin_required,
    current_user,
    hash_password,
    login_required,
    login_user,
    logout_user,
    verify_password,
)
from fleetapp.cache import cached_papers
from fleetapp.errors import ApiError
from fleetapp.extensions import db, get_celery, get_settings
from fleetapp.models import ImportJob, Keyword, Paper, Star, Subscription, User, utcnow
from fleetapp.ratelimit import hit
from fleetapp.validation import EMAIL_RE, KEYWORD_RE, Validator, json_body, normalize_keyword

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api")

MAX_PER_PAGE = 100
MAX_SUBSCRIPTIONS = 50
DOI_RE = re.compile(r"^10\.\d{4,9}/\S+$")
QUERY_FIELDS = ("q", "keywords", "published_from", "published_to", "page", "per_page", "sort")
PAPER_FIELDS = ("title", "abstract", "authors", "published_on", "doi")
SORTS = ("newest", "oldest", "title")


def _user() -> User:
    # Only called behind login_required, which has already loaded the user.
    user = current_user()
    assert user is not None
    return user


# --- authentication -----------------------------------------------------------------------


def _credentials(data: dict[str, Any], *, new_password: bool) -> tuple[str, str]:
    v = Validator(data)
    v.reject_unknown(("email", "password"))
    email = v.string("email", max_length=255, pattern=EMAIL_RE)
    # A new password has a minimum length; a login attempt is just compared.
    password = v.string("password", min_length=8 if new_password else 1, max_length=128)
    v.check()
    assert email is not None and password is not None
    return email.lower(), password


@bp.post("/auth/register")
def register() -> tuple[Response, int]:
    email, password = _credentials(json_body(), new_password=True)
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        raise ApiError(409, "already registered", {"email": "is already registered"})
    user = User.create(email=email, password_hash=hash_password(password), is_admin=False)
    try:
        db.session.commit()
    except IntegrityError:
        # Two registrations raced past the check above; the unique index decided.
        db.session.rollback()
        raise ApiError(409, "already registered", {"email": "is already registered"}) from None
    login_user(user)
    return jsonify({"user": user.to_dict()}), 201


@bp.post("/auth/login")
def login() -> Response:
    settings = get_settings()
    # Counted before anything else so that malformed attempts are limited as well.
    retry_after = hit(
        f"login:{request.remote_addr}", settings.login_rate_limit, settings.login_rate_window
    )
    if retry_after is not None:
        raise ApiError(
            429,
            "too many login attempts, try again later",
            headers={"Retry-After": str(retry_after)},
        )
    email, password = _credentials(json_body(), new_password=False)
    user = db.session.scalar(select(User).where(User.email == email))
    if not verify_password(user, password):
        # One message for unknown e-mail and wrong password: no account enumeration.
        raise ApiError(401, "invalid credentials", {"password": "wrong e-mail or password"})
    assert user is not None
    user.update(last_login_at=utcnow())
    db.session.commit()
    login_user(user)
    return jsonify({"user": user.to_dict()})


@bp.post("/auth/logout")
def logout() -> tuple[str, int]:
    logout_user()
    return "", 204


@bp.get("/auth/whoami")
@login_required
def whoami() -> Response:
    return jsonify({"user": _user().to_dict()})


@bp.get("/auth/session")
def auth_session() -> Response:
    """The signed-in user or null, always 200: what the page asks on load, so an anonymous
    visit costs no failed request (a 401 is logged as an error in the browser's console)."""
    user = current_user()
    return jsonify({"user": user.to_dict() if user is not None else None})


# --- keywords -----------------------------------------------------------------------------


def _keyword_from_body() -> str:
    v = Validator(json_body())
    v.reject_unknown(("keyword",))
    raw = v.string("keyword", max_length=64)
    v.check()
    assert raw is not None
    term = normalize_keyword(raw)
    if not KEYWORD_RE.match(term):
        raise ApiError(
            422,
            "invalid fields",
            {"keyword": "use letters, digits, spaces and + # . _ - (at most 64 characters)"},
        )
    return term


def _subscribed_terms(user_id: int) -> list[str]:
    return list(
        db.session.scalars(
            select(Keyword.term)
            .join(Subscription, Subscription.keyword_id == Keyword.id)
            .where(Subscription.user_id == user_id)
            .order_by(Keyword.term)
        )
    )


@bp.get("/keywords/subscriptions")
@login_required
def subscriptions() -> Response:
    return jsonify({"keywords": _subscribed_terms(_user().id)})


@bp.post("/keywords/subscribe")
@login_required
def subscribe() -> tuple[Response, int]:
    term = _keyword_from_body()
    user = _user()
    if len(_subscribed_terms(user.id)) >= MAX_SUBSCRIPTIONS:
        raise ApiError(
            422, "invalid fields", {"keyword": f"at most {MAX_SUBSCRIPTIONS} subscriptions"}
        )
    keyword, created, new_keyword = services.subscribe(user.id, term)
    if new_keyword:
        _enqueue_best_effort(tasks.match_keyword, keyword.id)
    return jsonify({"keyword": term, "subscribed": True}), 201 if created else 200


@bp.post("/keywords/unsubscribe")
@login_required
def unsubscribe() -> Response:
    term = _keyword_from_body()
    if not services.unsubscribe(_user().id, term):
        raise ApiError(404, "not subscribed", {"keyword": "you are not subscribed to it"})
    return jsonify({"keyword": term, "subscribed": False})


def _enqueue_best_effort(task: Any, *args: Any) -> None:
    try:
        task.delay(*args)
    except (BrokerError, redis.RedisError) as exc:
        # The subscription itself is saved; matching catches up with the next import.
        log.warning("could not queue %s%r: %s", task.name, args, exc)


# --- papers -------------------------------------------------------------------------------


def _query_filters(data: dict[str, Any]) -> dict[str, Any]:
    v = Validator(data)
    v.reject_unknown(QUERY_FIELDS)
    filters: dict[str, Any] = {
        "q": v.string("q", required=False, max_length=200),
        "keywords": v.string_list(
            "keywords", max_items=10, max_length=64, pattern=KEYWORD_RE, normalize=True
        ),
        "page": v.integer("page", default=1, minimum=1, maximum=10_000),
        "per_page": v.integer("per_page", default=20, minimum=1, maximum=MAX_PER_PAGE),
        "sort": v.choice("sort", SORTS, default="newest"),
    }
    for name in ("published_from", "published_to"):
        value = v.date(name)
        filters[name] = value.isoformat() if value else None
    v.check()
    return filters


def _reject_unknown_keywords(terms: list[str]) -> None:
    unknown = services.unknown_keywords(terms)
    if unknown:
        raise ApiError(
            422,
            "invalid fields",
            {f"keywords[{terms.index(term)}]": "unknown keyword" for term in unknown},
        )


def _cached_query(filters: dict[str, Any]) -> Response:
    def compute() -> dict[str, Any]:
        # Checked only on a cache miss: keywords are never deleted, so a cached entry implies
        # its keywords existed, and cache hits cost no database round trip at all.
        _reject_unknown_keywords(filters["keywords"])
        return services.query_papers(filters)

    result, hit_cache = cached_papers(filters, compute)
    response = jsonify(result)
    response.headers["X-Cache"] = "HIT" if hit_cache else "MISS"
    return response


@bp.get("/papers")
def list_papers() -> Response:
    # Query strings are text; turn digit strings into ints so the same validator applies.
    args = {
        name: int(value) if value.isdigit() else value for name, value in request.args.items()
    }
    v = Validator(args)
    v.reject_unknown(("page", "per_page", "sort"))
    v.check()
    return _cached_query(_query_filters(args))


@bp.post("/papers/query")
def query_papers() -> Response:
    return _cached_query(_query_filters(json_body()))


def _paper_or_404(paper_id: int) -> Paper:
    paper = Paper.get(paper_id)
    if paper is None:
        raise ApiError(404, "paper not found")
    return paper


@bp.get("/papers/<int:paper_id>")
def get_paper(paper_id: int) -> Response:
    paper = _paper_or_404(paper_id)
    user = current_user()
    starred = user is not None and db.session.get(Star, (user.id, paper.id)) is not None
    return jsonify({"paper": paper.to_dict(), "starred": starred})


@bp.post("/papers/<int:paper_id>/star")
@login_required
def star(paper_id: int) -> Response:
    paper = _paper_or_404(paper_id)
    user = _user()
    if db.session.get(Star, (user.id, paper.id)) is None:
        Star.create(user_id=user.id, paper_id=paper.id)
        db.session.commit()
    return jsonify({"paper_id": paper.id, "starred": True})


@bp.post("/papers/<int:paper_id>/unstar")
@login_required
def unstar(paper_id: int) -> Response:
    paper = _paper_or_404(paper_id)
    existing = db.session.get(Star, (_user().id, paper.id))
    if existing is not None:
        existing.delete()
        db.session.commit()
    return jsonify({"paper_id": paper.id, "starred": False})


@bp.get("/stars")
@login_required
def stars() -> Response:
    papers = db.session.scalars(
        select(Paper)
        .join(Star, Star.paper_id == Paper.id)
        .where(Star.user_id == _user().id)
        .order_by(Star.created_at.desc(), Paper.id.desc())
    ).all()
    return jsonify({"items": [paper.to_dict() for paper in papers]})


# --- imports ------------------------------------------------------------------------------


def _validate_batch(data: dict[str, Any]) -> list[dict[str, Any]]:
    top = Validator(data)
    top.reject_unknown(("papers",))
    top.check()
    items = data.get("papers")
    if not isinstance(items, list) or not items:
        raise ApiError(422, "invalid fields", {"papers": "must be a non-empty list of papers"})
    max_batch = get_settings().import_max_batch
    if len(items) > max_batch:
        raise ApiError(
            413, "batch too large", {"papers": f"at most {max_batch} papers per batch"}
        )
    errors: dict[str, str] = {}
    papers: list[dict[str, Any]] = []
    seen_dois: dict[str, int] = {}
    for index, item in enumerate(items):
        prefix = f"papers[{index}]."
        if not isinstance(item, dict):
            errors[f"papers[{index}]"] = "must be an object"
            continue
        v = Validator(item, prefix=prefix)
        v.reject_unknown(PAPER_FIELDS)
        title = v.string("title", max_length=500)
        abstract = v.string("abstract", required=False, min_length=0, max_length=20_000)
        authors = v.string_list("authors", max_items=50, max_length=200)
        published_on = v.date("published_on", required=True)
        doi = v.string("doi", required=False, max_length=255, pattern=DOI_RE)
        if doi is not None:
            doi = doi.lower()
            if doi in seen_dois:
                v.error("doi", f"duplicates papers[{seen_dois[doi]}].doi in this batch")
            seen_dois.setdefault(doi, index)
        errors.update(v.errors)
        if not v.errors and published_on is not None:
            papers.append(
                {
                    "title": title,
                    "abstract": abstract or "",
                    "authors": authors,
                    "published_on": published_on.isoformat(),
                    "doi": doi,
                }
            )
    if errors:
        raise ApiError(422, "invalid fields", errors)
    return papers


def _job_dict(job: ImportJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "status": job.status,
        "paper_count": job.paper_count,
        "error": job.error,
        "created_at": job.created_at.isoformat() + "Z",
        "finished_at": job.finished_at.isoformat() + "Z" if job.finished_at else None,
    }


@bp.post("/papers/import")
@admin_required
def import_papers() -> tuple[Response, int, dict[str, str]]:
    papers = _validate_batch(json_body())
    job = services.create_import_job(_user().id, papers, task_id=uuid.uuid4().hex)
    try:
        tasks.import_batch.apply_async(args=[job.id], task_id=job.task_id)
    except (BrokerError, redis.RedisError) as exc:
        log.error("could not queue import job %s: %s", job.id, exc)
        services.mark_job_failed(job.id, "could not be queued: broker unavailable")
        raise ApiError(503, "the task queue is unavailable, try again later") from exc
    db.session.refresh(job)
    location = url_for("api.job_status", job_id=job.id)
    return jsonify({"job": _job_dict(job)}), 202, {"Location": location}


@bp.get("/jobs/<int:job_id>")
@login_required
def job_status(job_id: int) -> Response:
    job = ImportJob.get(job_id)
    if job is None:
        raise ApiError(404, "job not found")
    user = _user()
    if job.created_by != user.id and not user.is_admin:
        raise ApiError(403, "this job belongs to another user")
    try:
        task_state = AsyncResult(job.task_id, app=get_celery()).state
    except redis.RedisError as exc:
        log.warning("result backend unavailable: %s", exc)
        task_state = "UNKNOWN"
    return jsonify({"job": {**_job_dict(job), "task_state": task_state}})


# --- digest -------------------------------------------------------------------------------


@bp.get("/digest")
@login_required
def digest() -> Response:
    return jsonify({"digest": services.latest_digest(_user().id)})
