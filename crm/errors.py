"""Domain errors and their rendering.

Services raise a DomainError subclass with a stable snake_case `code`; one handler
turns it into `{"error": {"code", "message", "details"}}` for every /api/ path (and
every HTTP error there too: 404, 405, 500 — never an HTML page or a traceback).
"""
import logging
from urllib.parse import urlsplit

from flask import current_app, flash, g, jsonify, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from marshmallow import ValidationError
from sqlalchemy.exc import DataError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class DomainError(Exception):
    status = 422
    code = "invalid"
    message = _l("The request is not valid.")

    def __init__(self, message=None, *, code=None, field=None, keep_work=False, **details):
        super().__init__(message or self.message)
        self.message = message or self.message
        # The transaction so far holds exactly what must survive this error (a wrong PIN try,
        # counted under the member's lock before anything else was written): commit it
        # instead of rolling back, so the next try sees the count. See rollback_for().
        self.keep_work = keep_work
        if code:
            self.code = code
        self.field = field  # the form field a UI should show this next to
        self.details = details
        if field:
            self.details.setdefault("field", field)


class NotFound(DomainError):
    status, code, message = 404, "not_found", _l("Not found.")


class Conflict(DomainError):
    status, code, message = 409, "conflict", _l("Conflicts with the current state.")


class Invalid(DomainError):
    status, code = 422, "invalid"


class Forbidden(DomainError):
    status, code, message = 403, "forbidden", _l("Your role may not do this.")


class ConcurrentChange(Conflict):
    code = "concurrent_change"
    message = _l("Another request changed the same data at the same time; reload and try again.")


class UnsupportedMediaType(DomainError):
    status, code, message = 415, "unsupported_media_type", _l("Send the body as JSON (Content-Type: application/json).")


class Unauthorized(DomainError):
    status, code, message = 401, "unauthorized", _l("Log in or send a valid Bearer token.")


_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "validation_error", 429: "rate_limited",
}


def is_api_request() -> bool:
    return request.path.startswith("/api/")


MAX_FIELD_ERRORS = 20


def _capped(details: dict) -> dict:
    """At most MAX_FIELD_ERRORS field errors, and how many more there were."""
    fields = details.get("fields")
    if isinstance(fields, dict) and len(fields) > MAX_FIELD_ERRORS:
        details = {**details, "fields": dict(list(fields.items())[:MAX_FIELD_ERRORS]),
                   "more_fields": len(fields) - MAX_FIELD_ERRORS}
    return details


def error_response(status, code, message, details=None):
    details = _capped(details or {})
    resp = jsonify({"error": {"code": code, "message": str(message), "details": details or {}}})
    resp.status_code = status
    return resp


_PAGE_MESSAGES = {
    400: _l("The request could not be understood."), 403: _l("Your role may not do this."),
    404: _l("This page does not exist."), 405: _l("This action is not available here."),
    413: _l("The upload is too large."), 429: _l("Too many failed attempts. Try again later."),
    500: _l("Something went wrong on our side."),
}


def _html_error(status, message=None):
    message = message or _PAGE_MESSAGES.get(status, _PAGE_MESSAGES[500])
    return render_template("error.html", status=status, message=message), status


def rollback_for(err: DomainError):
    """Undo the request's work, unless the error says the work so far must be kept."""
    from .extensions import db
    if getattr(err, "keep_work", False):
        db.session.commit()
    else:
        db.session.rollback()


def register_error_handlers(app):
    from .extensions import db

    @app.errorhandler(DomainError)
    def _domain(err):
        try:
            rollback_for(err)
        except Exception as exc:  # keeping the work (a wrong PIN try) met a lost or read-only database
            what = unavailable_reason(exc)
            if not what:
                raise
            log.warning("%s unavailable on %s %s: %s", what, request.method, request.path, exc)
            return unavailable_response(what)
        if is_api_request():
            return error_response(err.status, err.code, err.message, err.details)
        return _html_error(err.status, str(err.message))

    @app.errorhandler(ValidationError)
    def _validation(err):
        db.session.rollback()
        if is_api_request():
            return error_response(422, "validation_error", "Some fields are invalid.",
                                  {"fields": err.messages})
        return _html_error(422, _("Some fields are invalid."))

    @app.errorhandler(CSRFError)
    def _csrf(err):
        # A form left open past the session or security-token lifetime: say so and start again.
        db.session.rollback()
        flash(_("The page had expired, so nothing was saved. Please try again."), "warning")
        back = urlsplit(request.referrer or "")
        same_site = back.netloc in ("", request.host) and back.path.startswith("/")
        return redirect(back.path if same_site and current_user.is_authenticated else url_for("auth.login"))

    @app.errorhandler(HTTPException)
    def _http(err):
        db.session.rollback()
        if not is_api_request():
            return _html_error(err.code or 500)
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
        resp = error_response(err.code or 500, code, message, details)
        for name, value in err.get_headers():  # Allow on 405, Retry-After on 429/503
            if name.lower() != "content-type":
                resp.headers[name] = value
        return resp

    @app.errorhandler(Exception)
    def _unexpected(err):
        from .core.locks import is_retryable
        if is_retryable(err):  # lost a race the unit of work could not retry away: 409, retryable
            return _domain(ConcurrentChange())
        what = unavailable_reason(err)
        if what:  # a store we depend on is unreachable or refuses writes: say when to try again, never 500
            log.warning("%s unavailable on %s %s: %s", what, request.method, request.path, err)
            return unavailable_response(what)
        if isinstance(err, (DataError, OverflowError)):  # a number past its column, a NUL in text
            log.info("Refused a value the database cannot store on %s %s: %s", request.method, request.path, err)
            return _domain(Invalid(_("A value is out of range or holds characters that cannot be stored."),
                                   code="invalid_value"))
        log.exception("Unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        if is_api_request():
            return error_response(500, "internal_error", "Something went wrong on our side.")
        return _html_error(500, _("Something went wrong on our side."))


RETRY_AFTER_SECONDS = 10
# SQLSTATEs that mean "the database cannot do this now", whatever exception class the driver
# picked: a read-only database or standby (25006, psycopg raises it as InternalError), a lost
# connection (class 08), a server shutting down or still starting (57P01-57P03), too many
# connections (53300).
_UNAVAILABLE_SQLSTATES = {"25006", "57P01", "57P02", "57P03", "53300"}


def unavailable_reason(err) -> str | None:
    """Return "database" when the database is unreachable or read-only, "service" when the rate-limit
    store (Redis) is unreachable, else None. Looks down the exception's cause chain, so an error
    re-raised by a unit of work (or wrapped by SQLAlchemy) is still recognised. Deadlocks and
    serialization failures, also OperationalErrors, are answered 409 before this is asked."""
    import psycopg
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeout
    from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, (RedisConnectionError, RedisTimeout)):
            return "service"
        if isinstance(err, (DisconnectionError, InterfaceError, OperationalError, PoolTimeout,
                            psycopg.OperationalError, psycopg.InterfaceError)):
            return "database"
        state = getattr(err.orig, "sqlstate", None) if isinstance(err, DBAPIError) else getattr(err, "sqlstate", None)
        if isinstance(state, str) and (state in _UNAVAILABLE_SQLSTATES or state.startswith("08")):
            return "database"
        err = err.__cause__ or err.__context__
    return None


def unavailable_response(what: str = "database"):
    """503 with Retry-After: JSON `database_unavailable` / `service_unavailable` under /api/,
    else a plain error page. Safe to call while the database is gone: the rollback may fail
    and the page does not look up the logged-in user (that would query the database again)."""
    from .extensions import db
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection is already gone; the pool replaces it
        log.debug("Rollback failed on an unavailable database", exc_info=True)
    if what == "database":
        # Drop this worker's pooled connections: one opened while the database was read-only
        # stays read-only for its whole life, and pre-ping (SELECT 1) cannot tell.
        db.engine.dispose()
    if is_api_request():
        code = "database_unavailable" if what == "database" else "service_unavailable"
        resp = error_response(503, code, "Temporarily unavailable; try again shortly.")
    else:
        # Render as nobody: the staff row may be expired by the rollback, and reloading it (or
        # running the session loader) would meet the same dead database.
        g._login_user = current_app.login_manager.anonymous_user()
        resp = make_response(_html_error(503, _("The service is briefly unavailable; try again in a moment.")))
    resp.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return resp


def _flat(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _flat(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _flat(v)
    else:
        yield str(value)
