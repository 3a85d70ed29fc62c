"""Points ledger tables.

An account's `balance` is a cache of the sum of its entries, kept in the same
transaction as each entry; lots record what each earning has left (`remaining`) and
when it expires, so redemption and expiry can go oldest first. Entries are never
updated or deleted: a void writes reversing entries. `crm audit` checks
balance == Σ entries == Σ lot remaining for every account.
"""
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..core.timeutil import utcnow
from ..extensions import db

# opening: a balance brought from a legacy system (import); transfer: moved between members by a merge;
# stay: earned by a hotel stay (crm/stays), stay_undo: taken back when that stay is corrected or cancelled.
ENTRY_KINDS = ("earn", "redeem", "expire", "adjust", "reversal", "opening", "transfer", "stay", "stay_undo")


class PointsAccount(db.Model):
    __tablename__ = "points_accounts"
    __table_args__ = (CheckConstraint("balance >= 0", name="balance_non_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), unique=True)
    balance: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PointsEntry(db.Model):
    __tablename__ = "points_entries"
    __table_args__ = (
        CheckConstraint("points <> 0", name="points_non_zero"),
        CheckConstraint(f"kind IN ({', '.join(repr(k) for k in ENTRY_KINDS)})", name="kind"),
        Index("ix_points_entries_account_created", "account_id", "created_at"),
        # A reversal names the entry it reverses, and no entry is reversed twice.
        Index("uq_points_entries_reverses_id", "reverses_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("points_accounts.id"))
    kind: Mapped[str] = mapped_column(String(10))
    points: Mapped[int]  # signed
    checkout_id: Mapped[int | None] = mapped_column(ForeignKey("checkouts.id"), index=True)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("points_entries.id"))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    reason: Mapped[str] = mapped_column(String(200), default="")
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class PointsLot(db.Model):
    """What is left of one earning (or positive adjustment), and when it expires."""
    __tablename__ = "points_lots"
    __table_args__ = (
        CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining_range"),
        Index("ix_points_lots_account_fifo", "account_id", "expires_at", "id"),
        Index("ix_points_lots_due", "expires_at", "remaining"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("points_accounts.id"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("points_entries.id"), unique=True)
    points: Mapped[int]
    remaining: Mapped[int]
    earned_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]  # None: never expires


class PointsLotUse(db.Model):
    """How many points an entry took from (or gave back to) a lot; lets a void restore them."""
    __tablename__ = "points_lot_uses"
    __table_args__ = (CheckConstraint("points <> 0", name="points_non_zero"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("points_entries.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("points_lots.id"), index=True)
    points: Mapped[int]  # negative: taken from the lot; positive: given back
