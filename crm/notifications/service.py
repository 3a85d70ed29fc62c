"""Transactional notifications: written in the event's own transaction, sent by the dispatcher.

Each event (a card issued, a top-up, a stored-value payment, points earned, points about to
expire, a level change) calls one function here from the service that made it, inside its
transaction. For every channel whose template is switched on and for which the member has an
address, one `notifications` row (its text rendered) is written with INSERT … ON CONFLICT
DO NOTHING on (kind, event_ref, channel): an event retried, replayed or run twice at once
writes its message once; `skipped` (no_consent) when the member has switched service
messages off. The scheduler's next beat (`hand_over`, jobs.tick) turns the pending ones
into `deliveries` rows without a campaign (the outbox), which the campaigns dispatcher
sends. Payment alerts go at any hour; the other kinds wait out the quiet hours
(the delivery's `marketing` flag is what makes the dispatcher wait; the dispatcher asks the
member's *service* consent, not their marketing consent, for a delivery without a campaign).

The templates are reference data cached per worker (core/refcache.py, namespace
"notifications"): a bill whose member has the points-earned template off sends no statement
for it, and a payment alert or a receipt costs one INSERT.
"""
import string
import uuid
from datetime import datetime, timedelta, timezone
from functools import cache

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import and_, func, select
from sqlalchemy.dialects import postgresql, sqlite

from ..campaigns.messages import TITLES
from ..campaigns.models import DELIVERY_LABELS, Delivery, reason_text
from ..core import audit, refcache
from ..core.actor import Actor
from ..core.money import format_fen
from ..core.rows import insert_into
from ..core.timeutil import utcnow, zone
from ..errors import Invalid, NotFound
from ..extensions import db
from ..members.models import Member
from .models import (
    CHANNELS,
    DEFAULTS,
    DIRECTIONS,
    FIELDS,
    IMMEDIATE,
    KIND_LABELS,
    KINDS,
    REASONS,
    Notification,
    NotificationTemplate,
)

EXPIRY_NOTICE_DAYS = 30  # default for the config key NOTIFY_POINTS_EXPIRING_DAYS


# Templates -----------------------------------------------------------------------------------

def _load_templates() -> dict:
    stored = {(t.kind, t.channel): t for t in db.session.scalars(select(NotificationTemplate))}
    found = {}
    for key, (subject, body, enabled) in DEFAULTS.items():
        row = stored.get(key)
        found[key] = ({"subject": row.subject, "body": row.body, "enabled": row.enabled, "customised": True}
                      if row is not None else
                      {"subject": subject, "body": body, "enabled": enabled, "customised": False})
    return found


def templates() -> dict:
    """{(kind, channel): {"subject", "body", "enabled", "customised"}} for every kind and
    channel: the admin's version, or the default text."""
    return refcache.get("notifications", "templates", _load_templates)


def template_list() -> list[dict]:
    found = templates()
    return [{"kind": kind, "channel": channel, "placeholders": list(FIELDS[kind]), **found[(kind, channel)]}
            for kind in KINDS for channel in CHANNELS]


def check_text(kind: str, text: str, field: str):
    """Refuse a text with a placeholder this kind does not fill, or with a stray brace."""
    allowed = FIELDS[kind]
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        raise Invalid(_("Unbalanced braces: write a placeholder as {name}; a literal brace as {{ or }}."),
                      code="invalid_template", field=field) from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            raise Invalid(_("Unknown placeholder {%(name)s}. This message can use: %(allowed)s.",
                            name=name, allowed=", ".join("{%s}" % f for f in allowed)),
                          code="unknown_placeholder", field=field, placeholder=name)


def _key(kind: str, channel: str):
    if kind not in KINDS or channel not in CHANNELS:
        raise NotFound(_("No such notification template."))
    return kind, channel


def update_template(actor: Actor, kind: str, channel: str, changes: dict) -> dict:
    """Change a template's subject, body or switch; a body left out keeps the current text."""
    _key(kind, channel)
    current = templates()[(kind, channel)]
    subject = changes.get("subject", current["subject"])
    body = changes.get("body", current["body"])
    enabled = changes.get("enabled", current["enabled"])
    if not body.strip():
        raise Invalid(_("Write the message."), code="invalid_template", field="body")
    check_text(kind, subject, "subject")
    check_text(kind, body, "body")
    row = db.session.scalar(select(NotificationTemplate).where(NotificationTemplate.kind == kind,
                                                               NotificationTemplate.channel == channel))
    if row is None:
        row = NotificationTemplate(kind=kind, channel=channel)
        db.session.add(row)
    row.subject, row.body, row.enabled, row.updated_by = subject, body, bool(enabled), actor.staff_id
    db.session.flush()
    audit.record(actor, "notification_template.update", entity=row, kind=kind, channel=channel,
                 enabled=bool(enabled), subject=subject, body=body)
    return {"kind": kind, "channel": channel, "placeholders": list(FIELDS[kind]), "subject": subject,
            "body": body, "enabled": bool(enabled), "customised": True}


def reset_template(actor: Actor, kind: str, channel: str) -> dict:
    """Back to the default text and switch."""
    _key(kind, channel)
    row = db.session.scalar(select(NotificationTemplate).where(NotificationTemplate.kind == kind,
                                                               NotificationTemplate.channel == channel))
    if row is not None:
        db.session.delete(row)
        db.session.flush()
        audit.record(actor, "notification_template.reset", entity_type="notification_templates",
                     entity_id=row.id, kind=kind, channel=channel)
    subject, body, enabled = DEFAULTS[(kind, channel)]
    return {"kind": kind, "channel": channel, "placeholders": list(FIELDS[kind]), "subject": subject,
            "body": body, "enabled": enabled, "customised": False}


# Writing a notification -----------------------------------------------------------------------

@cache
def _write_statement(dialect_name: str):  # built once (core/rows.py says why)
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    return insert(Notification.__table__).on_conflict_do_nothing(index_elements=["kind", "event_ref", "channel"])


class _Blank(dict):
    """The values of a message: a placeholder the event has no value for reads as nothing (the
    texts are checked when saved; a message must never be what makes a top-up fail)."""

    def __missing__(self, key):
        return ""


def _address(member, channel: str) -> str:
    return (member.mobile if channel == "sms" else member.email) or ""


def notify(kind: str, member, event_ref, values: dict, *, tz: str | None = None, store_name: str = "",
           now: datetime | None = None) -> int:
    """Write `kind`'s message about this event to `member` on every switched-on channel they
    have an address for: one INSERT … ON CONFLICT DO NOTHING on (kind, event_ref, channel),
    so an event retried, replayed or run twice at once writes its message once. Call it
    inside the event's transaction; the scheduler's next beat hands it to the outbox.
    Returns how many messages it tried to write (0: the kind is off or no address)."""
    found = templates()
    active = [channel for channel in CHANNELS if found[(kind, channel)]["enabled"] and _address(member, channel)]
    if not active:
        return 0
    now = now or utcnow()
    fill = _Blank({"name": member.name, "title": TITLES.get(member.gender, ""), "store": store_name,
                   **{k: "" if v is None else str(v) for k, v in values.items()}})
    consent = bool(member.service_consent)
    rows = [{"kind": kind, "event_ref": str(event_ref)[:64], "channel": channel, "member_id": member.id,
             "send_id": uuid.uuid4().hex, "address": _address(member, channel)[:255],
             "subject": found[(kind, channel)]["subject"].format_map(fill)[:200],
             "body": found[(kind, channel)]["body"].format_map(fill), "tz": tz or "", "quiet": kind not in IMMEDIATE,
             "status": "pending" if consent else "skipped", "reason": "" if consent else "no_consent",
             "created_at": now} for channel in active]
    connection = db.session.connection()
    connection.execute(_write_statement(connection.dialect.name), rows)
    return len(rows)


def hand_over(now: datetime | None = None, *, batch: int = 500, commit=None) -> int:
    """The scheduler's beat: pending notifications become queued deliveries (no campaign) for
    the dispatcher, a batch per transaction. Each is claimed by one conditional UPDATE
    (pending -> queued) whose RETURNING is what is inserted, so two processes never hand the
    same one over twice. Returns how many were handed over."""
    now = now or utcnow()
    table = Notification.__table__
    moved = 0
    while True:
        ids = select(table.c.id).where(table.c.status == "pending").order_by(table.c.id).limit(batch)
        claimed = db.session.execute(
            table.update().where(table.c.id.in_(ids.scalar_subquery()), table.c.status == "pending")
            .values(status="queued")
            .returning(table.c.kind, table.c.member_id, table.c.channel, table.c.address, table.c.subject,
                       table.c.body, table.c.tz, table.c.quiet, table.c.send_id, table.c.created_at)).all()
        if not claimed:
            return moved
        db.session.execute(insert_into(Delivery.__table__), [
            {"campaign_id": None, "occurrence": row.kind, "member_id": row.member_id, "channel": row.channel,
             "address": row.address, "subject": row.subject, "body": row.body, "tz": row.tz,
             "marketing": row.quiet, "coupon_id": None, "status": "queued", "reason": "", "attempts": 0,
             "next_attempt_at": now, "send_id": row.send_id, "created_at": row.created_at} for row in claimed])
        moved += len(claimed)
        if commit is not None:
            commit()
        if len(claimed) < batch:
            return moved


def _store_of(member, store=None):
    store = store if store is not None else member.store
    return (store.timezone if store is not None else None), (store.name if store is not None else "")


def _member(member_id: int) -> Member:
    """The member, from this session's identity map when the caller has read them (no SQL)."""
    return db.session.get(Member, member_id)


def _local(when: datetime, tz: str | None, fmt: str) -> str:
    return when.astimezone(zone(tz)).strftime(fmt)


# The events (one call each, from the service that makes the event) ----------------------------

def card_issued(member, card, store=None) -> int:
    """Welcome, once per member (a later card issued after a cancel does not welcome again)."""
    if not templates_on("welcome"):
        return 0
    tz, store_name = _store_of(member, store)
    return notify("welcome", member, member.id, {"card_last4": card.card_no[-4:], "level": member.level.name},
                  tz=tz, store_name=store_name)


def topped_up(member, topup, store, balance: int) -> int:
    """The receipt of a top-up: amount, bonus and the new balance."""
    if not templates_on("topup"):
        return 0
    tz, store_name = _store_of(member, store)
    return notify("topup", member, topup.id, {"amount": format_fen(topup.amount), "bonus": format_fen(topup.bonus),
                                              "balance": format_fen(balance)},
                  tz=tz, store_name=store_name, now=topup.created_at)


def paid(member_id: int, amount: int, balance: int, store, checkout_id: int) -> int:
    """A stored-value payment alert (sent at any hour)."""
    if amount <= 0 or not templates_on("payment"):
        return 0
    member = _member(member_id)
    tz, store_name = _store_of(member, store)
    now = utcnow()
    return notify("payment", member, checkout_id, {"amount": format_fen(amount), "balance": format_fen(balance),
                                                   "time": _local(now, tz, "%m-%d %H:%M")},
                  tz=tz, store_name=store_name, now=now)


def points_earned(member_id: int, points: int, balance: int, store, checkout_id: int) -> int:
    """Points a bill earned (off unless an admin switches it on)."""
    if points <= 0 or not templates_on("points_earned"):
        return 0
    member = _member(member_id)
    tz, store_name = _store_of(member, store)
    # per member and bill: a referral reward earns the referrer points on the referee's bill too
    return notify("points_earned", member, f"{checkout_id}:{member_id}", {"points": points, "balance": balance},
                  tz=tz, store_name=store_name)


def level_changed(member, old_level, new_level, change) -> int:
    """A level change, up or down, with why (the history row's reason)."""
    if old_level is None or old_level.id == new_level.id or not templates_on("level_change"):
        return 0
    if change.id is None:
        db.session.flush()
    tz, store_name = _store_of(member)
    direction = DIRECTIONS["up" if new_level.rank > old_level.rank else "down"]
    return notify("level_change", member, change.id, {"level": new_level.name, "old_level": old_level.name,
                                                      "direction": direction,
                                                      "reason": REASONS.get(change.reason, change.reason)},
                  tz=tz, store_name=store_name)


def templates_on(kind: str) -> bool:
    found = templates()
    return any(found[(kind, channel)]["enabled"] for channel in CHANNELS)


# Points about to expire (the nightly job) -----------------------------------------------------

def expiry_notice_days() -> int:
    return int(current_app.config.get("NOTIFY_POINTS_EXPIRING_DAYS", EXPIRY_NOTICE_DAYS))


def queue_expiry_notices(now: datetime | None = None, *, days: int | None = None, batch: int = 200,
                         commit=None) -> int:
    """One message per member per expiry date for the points expiring within `days` (default
    NOTIFY_POINTS_EXPIRING_DAYS, 30): its unique key (member, expiry date) means a later run,
    a second scheduler or tomorrow's run finds it written and sends nothing more. Members in
    id order, `commit` called after each batch. Returns how many messages were queued."""
    from ..points.models import PointsAccount, PointsLot
    if not templates_on("points_expiring"):
        return 0
    now = now or utcnow()
    days = expiry_notice_days() if days is None else days
    horizon = now + timedelta(days=days)
    queued, after = 0, 0
    while True:
        rows = db.session.execute(
            select(PointsAccount.member_id, PointsLot.expires_at, func.sum(PointsLot.remaining))
            .join(PointsAccount, PointsAccount.id == PointsLot.account_id)
            .where(PointsLot.remaining > 0, PointsLot.expires_at > now, PointsLot.expires_at <= horizon,
                   PointsAccount.member_id.in_(
                       select(PointsAccount.member_id).join(PointsLot, PointsLot.account_id == PointsAccount.id)
                       .where(and_(PointsLot.remaining > 0, PointsLot.expires_at > now,
                                   PointsLot.expires_at <= horizon, PointsAccount.member_id > after))
                       .group_by(PointsAccount.member_id).order_by(PointsAccount.member_id).limit(batch)))
            .group_by(PointsAccount.member_id, PointsLot.expires_at)
            .order_by(PointsAccount.member_id, PointsLot.expires_at)).all()
        if not rows:
            return queued
        members = {m.id: m for m in db.session.scalars(select(Member).where(Member.id.in_({r[0] for r in rows})))}
        due: dict[tuple[int, str], int] = {}
        for member_id, expires_at, points in rows:
            member = members[member_id]
            tz = member.store.timezone if member.store is not None else None
            if expires_at.tzinfo is None:
                expires_at = expires_at.replace(tzinfo=timezone.utc)
            last_day = (expires_at.astimezone(zone(tz)) - timedelta(microseconds=1)).date()
            key = (member_id, last_day.isoformat())
            due[key] = due.get(key, 0) + int(points)
        told = set(db.session.execute(select(Notification.member_id, Notification.event_ref).where(
            Notification.kind == "points_expiring", Notification.member_id.in_(members),
            Notification.event_ref.in_([f"{m}:{d}" for m, d in due]))).all())
        for (member_id, last_day), points in due.items():
            if (member_id, f"{member_id}:{last_day}") in told:
                continue  # an earlier run wrote it (the unique key would drop it anyway)
            member = members[member_id]
            tz, store_name = _store_of(member)
            queued += notify("points_expiring", member, f"{member_id}:{last_day}",
                             {"points": points, "expiry_date": last_day, "days": days},
                             tz=tz, store_name=store_name, now=now)
        after = max(members)
        if commit is not None:
            commit()


# Reading ------------------------------------------------------------------------------------

def for_member(member_id: int, limit: int = 20) -> list[dict]:
    """The member's recent service messages, newest first: kind, channel, status (the
    delivery's once handed to the outbox; `queued` before; `skipped` with why), when written
    and sent, subject and text (`body`, also as `text`), with labels for a page."""
    rows = db.session.execute(
        select(Notification.kind, Notification.channel, Notification.created_at, Notification.subject,
               Notification.body, Notification.status.label("own_status"), Notification.reason.label("own_reason"),
               Delivery.status, Delivery.reason, Delivery.sent_at)
        .outerjoin(Delivery, and_(Delivery.send_id == Notification.send_id, Delivery.member_id == member_id))
        .where(Notification.member_id == member_id)
        .order_by(Notification.id.desc()).limit(max(1, min(int(limit), 200)))).all()
    found = []
    for row in rows:
        status = row.status or ("skipped" if row.own_status == "skipped" else "queued")
        reason = row.reason if row.status else row.own_reason
        found.append({"kind": row.kind, "channel": row.channel, "status": status, "reason": reason or "",
                      "created_at": row.created_at, "sent_at": row.sent_at, "subject": row.subject,
                      "body": row.body, "text": row.body, "kind_label": str(KIND_LABELS[row.kind]),
                      "status_label": str(DELIVERY_LABELS.get(status, status)), "reason_text": reason_text(reason)})
    return found
