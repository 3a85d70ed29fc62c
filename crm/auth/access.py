"""Deny-by-default access control, run before every request.

A view opts in with `@allow(roles)` (admin is always added) or `@public`. A route
whose view says neither is closed to everyone: forgetting the decorator fails safe.
API callers authenticate with `Authorization: Bearer <token>` only (no cookies, so
the API needs no CSRF token); UI callers with the Flask-Login session, backed by a
server-side session row that expires after SESSION_IDLE_MINUTES idle or
SESSION_ABSOLUTE_MINUTES after login and is revoked by logging out.
"""

from flask import current_app, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, logout_user

from ..core.actor import Actor
from ..core.database import set_write_intent
from ..errors import Forbidden, Unauthorized, is_api_request
from . import service, sessions
from .roles import ADMIN

# Endpoints of third-party blueprints that are open by nature.
_PUBLIC_ENDPOINTS = {"static", "api-docs.openapi_json", "swagger_ui.show", "health.healthz", "health.readyz"}
_READ_METHODS = {"GET", "HEAD", "OPTIONS"}


def allow(roles):
    """Open a view to these roles (and admin)."""
    allowed = frozenset(roles) | {ADMIN}

    def decorator(fn):
        fn._roles = allowed
        return fn
    return decorator


def public(fn):
    fn._public = True
    return fn


def read_only(fn):
    """A POST that only reads (e.g. a card scan): on SQLite it must not take the write lock."""
    fn._read_only = True
    return fn


def _handler(view_func, method: str):
    """The function that will handle this method (a MethodView's get/post/…, or the view)."""
    view_class = getattr(view_func, "view_class", None)
    if view_class is None:
        return view_func
    target = getattr(view_class, method.lower(), None)
    if target is None and method == "HEAD":
        target = getattr(view_class, "get", None)
    return target


def rule_for(view_func, method: str):
    """The access marker of the code that will handle this method: a role set, 'public' or None."""
    target = _handler(view_func, method)
    if target is None:
        return None
    if getattr(target, "_public", False):
        return "public"
    return getattr(target, "_roles", None)


def actor_for(staff) -> Actor:
    return Actor(staff_id=staff.id, username=staff.username, role=staff.role,
                 store_id=staff.store_id, address=request.remote_addr)


def _bearer_staff():
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():  # the scheme is case-insensitive (RFC 9110)
        return None
    return service.staff_for_token(token.strip())


def end_client_session():
    """Forget the login in the cookie session, keeping the chosen language."""
    lang = session.get("lang")
    logout_user()
    session.clear()
    if lang:
        session["lang"] = lang


def _session_staff():
    """The logged-in UI user, if their server-side session is still open (crm/auth/sessions.py:
    not logged out or revoked, not idle too long, not too old)."""
    if current_user.is_authenticated:
        return current_user._get_current_object()
    if sessions.COOKIE_KEY in session:  # a session the server no longer honours
        end_client_session()
        flash(_("Your session expired. Please log in again."), "warning")
    return None


def enforce_access():
    """before_request: authenticate, then check the route's roles; deny when unmarked."""
    set_write_intent(request.method not in _READ_METHODS)
    g.actor = None
    if request.routing_exception is not None or request.endpoint is None:
        return None  # 404 / 405 are answered as such
    view_func = current_app.view_functions[request.endpoint]
    if getattr(_handler(view_func, request.method), "_read_only", False):
        set_write_intent(False)
    if request.method == "OPTIONS":
        return None
    if request.endpoint in _PUBLIC_ENDPOINTS:
        # Static files and API docs leave the session alone: a stylesheet still loading must not
        # write back a session that a language switch or a logout has just changed.
        return None
    staff = _bearer_staff() if is_api_request() else _session_staff()
    if staff is not None:
        g.staff = staff
        g.actor = actor_for(staff)
    rule = rule_for(view_func, request.method)
    if rule == "public":
        return None
    if staff is None:
        if is_api_request():
            raise Unauthorized()
        return redirect(url_for("auth.login", next=request.full_path))
    if rule is None or staff.role not in rule:
        raise Forbidden()
    return None
