"""JSON errors for everything under /api; the rest of the site keeps Flask's default pages."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the API reports to the client: status, message and per-field details."""

    def __init__(
        self,
        status: int,
        message: str,
        fields: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})


def _wants_json() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def error_response(
    status: int,
    message: str,
    fields: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    response = jsonify(
        {"error": message, "fields": dict(fields or {}), "request_id": g.get("request_id")}
    )
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _handle_api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.message, exc.fields, exc.headers)


def _handle_http_exception(exc: HTTPException) -> Response | HTTPException:
    if not _wants_json():
        return exc
    # Keep protocol headers such as Allow (405) but not the HTML content type.
    headers = {
        name: value
        for name, value in exc.get_headers(request.environ)
        if name.lower() != "content-type"
    }
    return error_response(exc.code or 500, exc.description or exc.name, headers=headers)


def _handle_unexpected(exc: Exception) -> Response | HTTPException:
    log.exception("unhandled error on %s %s", request.method, request.path)
    if not _wants_json():
        return InternalServerError()
    return error_response(500, "internal server error")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)
