"""Idempotency keys for POSTs that move value (docs/architecture.md, "Unit of work").

The key row is inserted in the same transaction as the effect. A retry with the same
key and body replays the stored response; a different body is 422
`idempotency_key_reused`. Concurrent duplicates are serialised before they look for the
key: on PostgreSQL by a transaction-scoped advisory lock on (caller, key), on SQLite by
`BEGIN IMMEDIATE`; so the second waits for the first to commit and then replays it. The
unique index on (caller, key) is the last line of defence.
"""
import hashlib
import json
from datetime import datetime, timedelta
from functools import wraps

from flask import current_app, g, make_response, request
from flask_babel import gettext as _
from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, delete, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from ..errors import ConcurrentChange, Invalid
from ..extensions import db
from . import locks
from .timeutil import utcnow

HEADER = "Idempotency-Key"


class IdempotencyKey(db.Model):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("staff_id", "key", name="uq_idempotency_keys_staff_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int]
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


_SECRETS = ("pin", "current_pin")  # never stored, not even inside a hash (six digits are quickly guessed back)


def _request_hash() -> str:
    try:
        payload = request.get_json(silent=True)
        if isinstance(payload, dict):
            payload = {k: v for k, v in payload.items() if k not in _SECRETS}
        body = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        body = request.get_data(as_text=True)
    raw = f"{request.method} {request.path}\n{body}".encode()
    return hashlib.sha256(raw).hexdigest()


def _serialise_same_key(staff_id, key):
    if db.session.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(f"idempotency:{staff_id}:{key}".encode()).digest()
        db.session.connection().execute(text("SELECT pg_advisory_xact_lock(:k)"),
                                        {"k": int.from_bytes(digest[:8], "big", signed=True)})


def _replay(staff_id, key, req_hash):
    keys = IdempotencyKey.__table__.c  # a plain read: every keyed POST runs it, and it needs no object
    row = db.session.connection().execute(select(keys.request_hash, keys.body, keys.status).where(
        keys.staff_id == staff_id, keys.key == key)).first()
    if row is None:
        return None
    if row.request_hash != req_hash:
        raise Invalid(_("This Idempotency-Key was used for a different request."),
                      code="idempotency_key_reused")
    resp = current_app.response_class(row.body, status=row.status, mimetype="application/json")
    resp.headers["Idempotent-Replayed"] = "true"
    return resp


def unit_of_work(idempotent=False):
    """Commit once after the view succeeds; with idempotent=True honour Idempotency-Key.

    A deadlock or serialization failure rolls back and runs the view again (at most
    `locks.RETRIES` times), then answers 409 `concurrent_change`. Put it outermost (above
    flask-smorest's decorators) so it sees the final response.
    """
    def decorator(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            key = request.headers.get(HEADER, "").strip() if idempotent else ""
            if len(key) > 128:
                raise Invalid(_("Idempotency-Key is at most 128 characters."), code="invalid_idempotency_key")
            for _attempt in range(locks.RETRIES):
                try:
                    return _attempt_once(fn, args, kwargs, key)
                except DBAPIError as exc:
                    db.session.rollback()
                    if not locks.is_retryable(exc):
                        raise
            raise ConcurrentChange()
        wrapper._unit_of_work = True
        if idempotent:
            from .api import idempotent as document_key
            wrapper = document_key(wrapper)
        return wrapper
    return decorator


def _attempt_once(fn, args, kwargs, key):
    staff_id = g.actor.staff_id if key else None
    req_hash = _request_hash() if key else None
    if key:
        _serialise_same_key(staff_id, key)
        replay = _replay(staff_id, key, req_hash)
        if replay is not None:
            db.session.rollback()
            return replay
    try:
        resp = make_response(fn(*args, **kwargs))
        if resp.status_code >= 400:
            db.session.rollback()
            return resp
        if key:
            remember(staff_id, key, resp.get_data(as_text=True), req_hash, resp.status_code)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if key:  # a concurrent twin committed first: answer as it did
            replay = _replay(staff_id, key, req_hash)
            if replay is not None:
                db.session.rollback()
                return replay
        raise ConcurrentChange() from None
    return resp


def recall(staff_id: int, key: str) -> tuple[str, str] | None:
    """(body, request hash) remembered under this key for this staff member, read after
    taking the key's lock, so a twin sent at the same moment waits for the first and then
    sees its result (UI forms use it: a resubmitted form cannot close a bill twice)."""
    _serialise_same_key(staff_id, key)
    row = db.session.execute(select(IdempotencyKey.body, IdempotencyKey.request_hash).where(
        IdempotencyKey.staff_id == staff_id, IdempotencyKey.key == key)).first()
    return tuple(row) if row else None


def remember(staff_id: int, key: str, body: str, request_hash: str, status: int = 200):
    """Record a key in the current transaction (after `recall` took its lock): one INSERT; a
    concurrent twin that got past the lock anyway fails on the unique index."""
    db.session.flush()  # what the request changed goes first, as the unit of work ordered it
    db.session.connection().execute(insert(IdempotencyKey.__table__), {
        "staff_id": staff_id, "key": key, "request_hash": request_hash, "status": status, "body": body,
        "created_at": utcnow()})


def prune(hours: int | None = None) -> int:
    """Delete keys older than the retention window (at least 24 hours)."""
    hours = max(24, hours or current_app.config["IDEMPOTENCY_KEY_HOURS"])
    result = db.session.execute(delete(IdempotencyKey).where(
        IdempotencyKey.created_at < utcnow() - timedelta(hours=hours)))
    return result.rowcount
