"""Audit log: one row for every staff action that changes data.

Written in the same transaction as the change, so a rolled-back action leaves no
audit row and a committed one always has one. Details must never hold a full mobile.
"""
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .actor import Actor
from .rows import insert_into
from .timeutil import utcnow


class AuditEntry(db.Model):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity_type", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    username: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(64), index=True)
    entity_type: Mapped[str | None] = mapped_column(String(32))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    address: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict] = mapped_column(JSON, default=dict)


def record(actor: Actor, action: str, *, entity=None, entity_type=None, entity_id=None,
           store_id=None, **details):
    """Write an audit row in the current transaction (the caller commits): one INSERT now,
    not an object for the unit of work (every request that changes data writes one)."""
    if entity is not None:
        entity_type = entity_type or entity.__tablename__
        if entity_id is None:
            if getattr(entity, "id", None) is None and entity in db.session:
                db.session.flush()  # a new row's id, as the unit of work would have filled it in
            entity_id = getattr(entity, "id", None)
    db.session.connection().execute(insert_into(AuditEntry.__table__), {
        "created_at": utcnow(), "staff_id": actor.staff_id, "username": actor.username, "role": actor.role,
        "action": action, "entity_type": entity_type, "entity_id": None if entity_id is None else str(entity_id),
        "store_id": store_id if store_id is not None else actor.store_id, "address": actor.address,
        "details": details})
