"""At most LOGIN_FAILURE_LIMIT failed logins per user and per address (Flask-Limiter).

Only failures count (deduct_when); once a limit is reached every attempt, right or
wrong, is refused with 429 until the window passes, and the refusal is audited.
"""
from flask import current_app, g, request
from flask_limiter.util import get_remote_address

from ..core import audit
from ..core.actor import Actor
from ..extensions import db, limiter


def attempted_username() -> str:
    data = request.get_json(silent=True) if request.is_json else request.form
    name = data.get("username") if isinstance(data, dict) or hasattr(data, "get") else None
    return str(name or "").strip().lower()[:64]


def _user_key():
    return "login-user:" + attempted_username()


def _failed(_response) -> bool:
    return bool(g.get("login_failed"))


def _limit_value():
    return current_app.config["LOGIN_FAILURE_LIMIT"]


def _on_breach(request_limit):
    actor = Actor(staff_id=None, username=attempted_username() or "?", role="anonymous",
                  address=get_remote_address())
    audit.record(actor, "auth.rate_limited", entity_type="login",
                 entity_id=actor.username, limit=str(request_limit.limit))
    db.session.commit()
    return None


def login_rate_limited(fn):
    """Apply the per-address and per-user failed-login limits to a login view."""
    for key_func in (get_remote_address, _user_key):
        fn = limiter.limit(_limit_value, key_func=key_func, deduct_when=_failed,
                           on_breach=_on_breach, methods=["POST"])(fn)
    return fn
