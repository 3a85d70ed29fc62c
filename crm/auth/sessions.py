"""Server-side UI sessions: the signed cookie holds a random token, the staff_sessions row
decides whether it is still good.

Every request costs one indexed query (the session row joined to its staff member), which
also enforces the idle (SESSION_IDLE_MINUTES, to the minute) and absolute
(SESSION_ABSOLUTE_MINUTES) timeouts. last_seen_at is written at most once a minute.
Logging out, a password reset and deactivation revoke the row, so a copied cookie stops
working at once.
"""
import hashlib
import logging
import secrets
from datetime import timedelta

from flask import current_app, session
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError

from ..core.timeutil import as_utc, utcnow
from ..extensions import db
from .models import Staff, StaffSession

log = logging.getLogger(__name__)

COOKIE_KEY = "sid"
TOUCH_EVERY = timedelta(minutes=1)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _limits():
    cfg = current_app.config
    return timedelta(minutes=cfg["SESSION_IDLE_MINUTES"]), timedelta(minutes=cfg["SESSION_ABSOLUTE_MINUTES"])


def start(staff: Staff):
    """Open a session for this staff member and put its token in the cookie session (the
    caller commits). Their sessions past the absolute timeout are deleted on the way."""
    now = utcnow()
    db.session.execute(delete(StaffSession).where(StaffSession.staff_id == staff.id,
                                                  StaffSession.created_at < now - _limits()[1]))
    token = secrets.token_urlsafe(32)
    db.session.add(StaffSession(id=_digest(token), staff_id=staff.id, created_at=now, last_seen_at=now))
    session[COOKIE_KEY] = token


def end():
    """Revoke the session in the cookie (the caller commits and clears the cookie session)."""
    token = session.get(COOKIE_KEY)
    if token:
        db.session.execute(update(StaffSession).where(StaffSession.id == _digest(token),
                                                      StaffSession.revoked_at.is_(None))
                           .values(revoked_at=utcnow()))


def revoke_all(staff_id: int):
    """End every open session of this staff member (password reset, deactivation)."""
    db.session.execute(update(StaffSession).where(StaffSession.staff_id == staff_id,
                                                  StaffSession.revoked_at.is_(None))
                       .values(revoked_at=utcnow()))


def current_staff(user_id: str) -> Staff | None:
    """Flask-Login's user loader: the staff member of the cookie's session if that session
    is still open, active and within its timeouts; else None (the caller ends it)."""
    token = session.get(COOKIE_KEY)
    if not isinstance(token, str) or not user_id:
        return None
    row = db.session.execute(select(StaffSession.id, StaffSession.created_at, StaffSession.last_seen_at,
                                    StaffSession.revoked_at, Staff)
                             .join(Staff, Staff.id == StaffSession.staff_id)
                             .where(StaffSession.id == _digest(token))).first()
    if row is None:
        return None
    sid, created_at, last_seen_at, revoked_at, staff = row
    now = utcnow()
    idle, absolute = _limits()
    if (revoked_at is not None or not staff.active or str(staff.id) != str(user_id)
            or now - as_utc(last_seen_at) > idle or now - as_utc(created_at) > absolute):
        return None
    if now - as_utc(last_seen_at) >= TOUCH_EVERY:
        _touch(sid, now)
    return staff


def _touch(sid: str, now):
    """Record activity. Best effort, in a transaction of its own: on SQLite a write must
    not be added to the request's read transaction (another writer may have moved on), and
    a failure here only means the next request tries again."""
    if db.session.new or db.session.dirty or db.session.deleted:
        return  # never commit someone else's unfinished work
    try:
        db.session.commit()  # end the read that found the session
        db.session.execute(update(StaffSession).where(StaffSession.id == sid).values(last_seen_at=now))
        db.session.commit()
    except DBAPIError:
        db.session.rollback()
        log.warning("Could not record session activity; will try again on the next request", exc_info=True)
