"""Session-cookie authentication helpers."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, wraps
from typing import ParamSpec, TypeVar

from flask import g, session
from werkzeug.security import check_password_hash, generate_password_hash

from fleetapp.errors import ApiError
from fleetapp.models import User

P = ParamSpec("P")
R = TypeVar("R")


@cache
def _dummy_hash() -> str:
    """Checked against when the e-mail is unknown, so a miss costs as much as a wrong password
    and response times do not reveal which addresses are registered. Made at the first miss,
    not at import: every process that imports the app (each gunicorn worker, the Celery
    programs, the deploy's checks) would otherwise pay a password hash, 0.14 s of CPU, to
    start."""
    return generate_password_hash("not-a-real-password")


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def verify_password(user: User | None, password: str) -> bool:
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return False
    return check_password_hash(user.password_hash, password)


def current_user() -> User | None:
    """The logged-in user, loaded once per request into g."""
    if "user" not in g:
        user_id = session.get("user_id")
        g.user = User.get(user_id) if isinstance(user_id, int) else None
    return g.user


def login_user(user: User) -> None:
    # A fresh session on login defeats session fixation.
    session.clear()
    session["user_id"] = user.id
    session.permanent = True
    g.user = user


def logout_user() -> None:
    session.clear()
    g.user = None


def login_required(view: Callable[P, R]) -> Callable[P, R]:
    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if current_user() is None:
            raise ApiError(401, "authentication required")
        return view(*args, **kwargs)

    return wrapper


def admin_required(view: Callable[P, R]) -> Callable[P, R]:
    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        user = current_user()
        if user is None:
            raise ApiError(401, "authentication required")
        if not user.is_admin:
            raise ApiError(403, "administrator rights required")
        return view(*args, **kwargs)

    return wrapper
