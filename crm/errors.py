"""Domain errors and their rendering.

Services raise a DomainError subclass with a stable snake_case `code`; one handler
turns it into `{"error": {"code", "message", "details"}}` for every /api/ path (and
every HTTP error there too: 404, 405, 500 — never an HTML page or a traceback).
"""
import logging

from flask import jsonify, render_template, request
from flask_babel import gettext as _
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class DomainError(Exception):
    status = 422
    code = "invalid"
    message = "The request is not valid."

    def __init__(self, message=None, *, code=None, field=None, **details):
        super().__init__(message or self.message)
        self.message = message or self.message
        if code:
            self.code = code
        self.field = field  # the form field a UI should show this next to
        self.details = details
        if field:
            self.details.setdefault("field", field)


class NotFound(DomainError):
    status, code, message = 404, "not_found", "Not found."


class Conflict(DomainError):
    status, code, message = 409, "conflict", "Conflicts with the current state."


class Invalid(DomainError):
    status, code = 422, "invalid"


class Forbidden(DomainError):
    status, code, message = 403, "forbidden", "Your role may not do this."


class Unauthorized(DomainError):
    status, code, message = 401, "unauthorized", "Log in or send a valid Bearer token."


_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "validation_error", 429: "rate_limited",
}


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def error_response(status, code, message, details=None):
    resp = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    resp.status_code = status
    return resp


def _html_error(status, message):
    return render_template("error.html", status=status, message=message), status


def register_error_handlers(app):
    from .extensions import db

    @app.errorhandler(DomainError)
    def _domain(err):
        db.session.rollback()
        if is_api_request():
            return error_response(err.status, err.code, err.message, err.details)
        return _html_error(err.status, err.message)

    @app.errorhandler(ValidationError)
    def _validation(err):
        db.session.rollback()
        if is_api_request():
            return error_response(422, "validation_error", "Some fields are invalid.",
                                  {"fields": err.messages})
        return _html_error(422, _("Some fields are invalid."))

    @app.errorhandler(HTTPException)
    def _http(err):
        db.session.rollback()
        if not is_api_request():
            if err.code == 429:
                return _html_error(429, _("Too many failed attempts. Try again later."))
            return _html_error(err.code or 500, err.description)
        code = _HTTP_CODES.get(err.code, "http_error")
        details = {}
        data = getattr(err, "data", None) or {}
        message = err.description
        if "messages" in data:  # webargs / flask-smorest body validation
            messages = data["messages"]
            # Locations ("json", "query") are noise for callers; flatten them.
            fields = {}
            for loc in messages.values():
                fields.update(loc if isinstance(loc, dict) else {"_schema": loc})
            if "_schema" in fields and any("Invalid JSON" in m for m in _flat(fields["_schema"])):
                return error_response(400, "malformed_json", "The body is not valid JSON.")
            details = {"fields": fields}
            message = "Some fields are invalid."
        elif err.code == 400:
            code = "malformed_request"
        if err.code == 429:
            message = "Too many attempts; try again later."
        return error_response(err.code or 500, code, message, details)

    @app.errorhandler(Exception)
    def _unexpected(err):
        log.exception("Unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        if is_api_request():
            return error_response(500, "internal_error", "Something went wrong on our side.")
        return _html_error(500, _("Something went wrong on our side."))


def _flat(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _flat(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _flat(v)
    else:
        yield str(value)
