"""Validation at the edge: requests are checked here before any view logic or database work."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from flask import request
from werkzeug.exceptions import BadRequest

from fleetapp.errors import ApiError

KEYWORD_RE = re.compile(r"^[a-z0-9][a-z0-9 +#._-]{0,62}[a-z0-9+#]$|^[a-z0-9]$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400 that says what was wrong with it."""
    if not request.is_json:
        raise ApiError(400, "expected a JSON body (Content-Type: application/json)")
    try:
        data = request.get_json()
    except BadRequest:
        raise ApiError(400, "malformed JSON body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the JSON body must be an object")
    return data


def normalize_keyword(value: str) -> str:
    return " ".join(value.lower().split())


class Validator:
    """Collects every field error of one object so the client sees them all at once (422)."""

    def __init__(self, data: Mapping[str, Any], prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix
        self.errors: dict[str, str] = {}

    def _name(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(self._name(name), message)

    def _present(self, name: str, required: bool) -> bool:
        if self.data.get(name) is None:
            if required:
                self.error(name, "is required")
            return False
        return True

    def string(
        self,
        name: str,
        *,
        required: bool = True,
        max_length: int = 255,
        min_length: int = 1,
        pattern: re.Pattern[str] | None = None,
    ) -> str | None:
        if not self._present(name, required):
            return None
        value = self.data[name]
        if not isinstance(value, str):
            self.error(name, "must be a string")
            return None
        value = value.strip()
        if len(value) < min_length:
            self.error(name, f"must be at least {min_length} characters")
            return None
        if len(value) > max_length:
            self.error(name, f"must be at most {max_length} characters")
            return None
        if pattern is not None and not pattern.match(value):
            self.error(name, "has an invalid format")
            return None
        return value

    def integer(
        self, name: str, *, default: int, minimum: int, maximum: int
    ) -> int:
        if not self._present(name, required=False):
            return default
        value = self.data[name]
        # bool is an int subclass; "page": true is a client bug, not page 1.
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(name, "must be an integer")
            return default
        if not minimum <= value <= maximum:
            self.error(name, f"must be between {minimum} and {maximum}")
            return default
        return value

    def date(self, name: str, *, required: bool = False) -> date | None:
        if not self._present(name, required):
            return None
        value = self.data[name]
        if not isinstance(value, str):
            self.error(name, "must be a date string (YYYY-MM-DD)")
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.error(name, "must be a date (YYYY-MM-DD)")
            return None

    def choice(self, name: str, choices: Iterable[str], *, default: str) -> str:
        options = tuple(choices)
        if not self._present(name, required=False):
            return default
        value = self.data[name]
        if value not in options:
            self.error(name, f"must be one of {', '.join(options)}")
            return default
        return value

    def string_list(
        self,
        name: str,
        *,
        required: bool = False,
        max_items: int,
        max_length: int = 255,
        pattern: re.Pattern[str] | None = None,
        normalize: bool = False,
    ) -> list[str]:
        if not self._present(name, required):
            return []
        value = self.data[name]
        if not isinstance(value, list):
            self.error(name, "must be a list of strings")
            return []
        if len(value) > max_items:
            self.error(name, f"must have at most {max_items} items")
            return []
        items: list[str] = []
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.error(f"{name}[{index}]", "must be a non-empty string")
                continue
            cleaned = normalize_keyword(item) if normalize else item.strip()
            if len(cleaned) > max_length:
                self.error(f"{name}[{index}]", f"must be at most {max_length} characters")
            elif pattern is not None and not pattern.match(cleaned):
                self.error(f"{name}[{index}]", "has an invalid format")
            else:
                items.append(cleaned)
        return items

    def reject_unknown(self, allowed: Iterable[str]) -> None:
        # Unknown fields are refused rather than ignored: a typo such as "per_pgae" should not
        # silently fall back to a default.
        known = set(allowed)
        for name in self.data:
            if name not in known:
                self.error(name, "unknown field")

    def check(self) -> None:
        if self.errors:
            raise ApiError(422, "invalid fields", self.errors)
