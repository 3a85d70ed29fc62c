"""Idempotency keys for POSTs that move value (docs/architecture.md, "Unit of work").

A keyed POST first claims its key: `INSERT … ON CONFLICT DO NOTHING RETURNING id`, in the
same transaction as the effect, and fills in the response at the end (one UPDATE). A twin
sent at the same moment waits on the unique index on (caller, key) until the first commits
(PostgreSQL; SQLite runs one writer at a time anyway), finds the key taken and replays the
stored response; a retry with a different body is 422 `idempotency_key_reused`. A request
that fails rolls back and takes its claim with it, so the key can be used again.

UI forms (`recall`/`remember`) take a transaction-scoped advisory lock on (caller, key)
instead, because they look the key up before deciding what to show.
"""
import hashlib
import json
from datetime import datetime, timedelta
from functools import cache, wraps

from flask import current_app, g, make_response, request
from flask_babel import gettext as _
from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, bindparam, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from ..errors import ConcurrentChange, DomainError, Invalid
from ..extensions import db
from . import locks
from .rows import insert_into
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


# Statements every keyed request sends, built once (core/rows.py says why).
_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_KEYS = IdempotencyKey.__table__
_STORED = select(_KEYS.c.request_hash, _KEYS.c.body, _KEYS.c.status).where(
    _KEYS.c.staff_id == bindparam("staff_id"), _KEYS.c.key == bindparam("key"))
_UNCLAIM = delete(_KEYS).where(_KEYS.c.id == bindparam("claim_id"))
_FILL_IN = update(_KEYS).where(_KEYS.c.id == bindparam("claim_id")).values(  # parameters not named as columns
    status=bindparam("response_status"), body=bindparam("response_body"))


@cache
def _claim_statement(dialect_name: str):
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    return insert(_KEYS).on_conflict_do_nothing(index_elements=["staff_id", "key"]).returning(_KEYS.c.id)


def _claim(staff_id, key, req_hash) -> int | None:
    """Take the key for this request (its row, response to follow), or None if a committed
    request holds it. Waits while a twin that holds it has not committed yet."""
    return db.session.connection().execute(_claim_statement(db.session.get_bind().dialect.name), {
        "staff_id": staff_id, "key": key, "request_hash": req_hash, "status": 0, "body": "",
        "created_at": utcnow()}).scalar()


def _claim_or_replay(staff_id, key, req_hash):
    """(claim id, None) for a key no committed request holds, else (None, its stored answer)."""
    for _attempt in range(locks.RETRIES):
        claim_id = _claim(staff_id, key, req_hash)
        if claim_id is not None:
            return claim_id, None
        replay = _replay(staff_id, key, req_hash)
        if replay is not None:
            return None, replay
        # The row that refused the claim is gone (pruned that moment, PostgreSQL): claim again.
    raise ConcurrentChange()


def _serialise_same_key(staff_id, key):
    if db.session.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(f"idempotency:{staff_id}:{key}".encode()).digest()
        db.session.connection().execute(_ADVISORY_LOCK, {"k": int.from_bytes(digest[:8], "big", signed=True)})


def _replay(staff_id, key, req_hash):
    row = db.session.connection().execute(_STORED, {"staff_id": staff_id, "key": key}).first()
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
    claim_id, replay = _claim_or_replay(staff_id, key, req_hash) if key else (None, None)
    if replay is not None:
        db.session.rollback()
        return replay
    try:
        resp = make_response(fn(*args, **kwargs))
        if resp.status_code >= 400:
            db.session.rollback()
            return resp
        if key:
            db.session.flush()  # what the request changed goes first, as the unit of work ordered it
            db.session.connection().execute(_FILL_IN, {"claim_id": claim_id, "response_status": resp.status_code,
                                                       "response_body": resp.get_data(as_text=True)})
        db.session.commit()
    except DomainError as err:
        if claim_id is not None and getattr(err, "keep_work", False):
            # The error handler commits the work done so far (a wrong PIN try): not the claim,
            # which would be replayed as an answer never given. A retry must run again.
            db.session.connection().execute(_UNCLAIM, {"claim_id": claim_id})
        raise
    except IntegrityError:  # a unique row another request wrote meanwhile (the key is ours: claimed)
        db.session.rollback()
        raise ConcurrentChange() from None
    return resp


def recall(staff_id: int, key: str) -> tuple[str, str] | None:
    """(body, request hash) remembered under this key for this staff member, read after
    taking the key's lock, so a twin sent at the same moment waits for the first and then
    sees its result (UI forms use it: a resubmitted form cannot close a bill twice)."""
    _serialise_same_key(staff_id, key)
    row = db.session.connection().execute(_STORED, {"staff_id": staff_id, "key": key}).first()
    return (row.body, row.request_hash) if row else None


def remember(staff_id: int, key: str, body: str, request_hash: str, status: int = 200):
    """Record a key in the current transaction (after `recall` took its lock): one INSERT; a
    concurrent twin that got past the lock anyway fails on the unique index."""
    db.session.flush()  # what the request changed goes first, as the unit of work ordered it
    db.session.connection().execute(insert_into(IdempotencyKey.__table__), {
        "staff_id": staff_id, "key": key, "request_hash": request_hash, "status": status, "body": body,
        "created_at": utcnow()})


def prune(hours: int | None = None) -> int:
    """Delete keys older than the retention window (at least 24 hours)."""
    hours = max(24, hours or current_app.config["IDEMPOTENCY_KEY_HOURS"])
    result = db.session.execute(delete(IdempotencyKey).where(
        IdempotencyKey.created_at < utcnow() - timedelta(hours=hours)))
    return result.rowcount
