"""Coupon tables.

Stock of a limited definition, a gift rule or a draw prize is a counter taken with a
conditional `UPDATE … SET stock = stock - 1 WHERE stock >= 1`, so it never goes below
zero however many cashiers issue at once; `crm audit` checks initial − issued == left.
An issued coupon is used once: `UPDATE … SET status='redeemed' WHERE status='issued'`.
"""
from datetime import date, datetime
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.timeutil import utcnow
from ..extensions import db

KINDS = ("cash", "item", "gift", "percent")
SOURCES = ("topup", "campaign", "draw", "birthday", "manual")
STATUSES = ("issued", "redeemed", "cancelled")
STATUS_LABELS = {"issued": _l("Usable"), "redeemed": _l("Used"), "cancelled": _l("Cancelled")}


def _in(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class CouponDefinition(db.Model):
    """What a coupon is worth: cash off (with a minimum spend), an item, a gift, or % off."""
    __tablename__ = "coupon_definitions"
    __table_args__ = (
        CheckConstraint(_in("kind", KINDS), name="kind"),
        CheckConstraint("face_value >= 0 AND min_spend >= 0", name="amounts"),
        CheckConstraint("rate_bp IS NULL OR (rate_bp > 0 AND rate_bp < 10000)", name="rate"),
        CheckConstraint("stock_total IS NULL OR (stock_left >= 0 AND stock_left <= stock_total)", name="stock"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(8))
    face_value: Mapped[int] = mapped_column(default=0)  # fen: cash off, or the item's worth
    min_spend: Mapped[int] = mapped_column(default=0)  # fen, bill total before the coupon
    rate_bp: Mapped[int | None]  # percent coupons: share of the bill paid (8800 = 12% off)
    sku: Mapped[str | None] = mapped_column(String(32))  # item coupons: the item it pays for
    valid_days: Mapped[int] = mapped_column(default=30)  # from issue, unless valid_to is earlier
    valid_to: Mapped[date | None]
    stock_total: Mapped[int | None]  # None: unlimited
    stock_left: Mapped[int | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def rate_pct(self) -> Decimal | None:
        return None if self.rate_bp is None else Decimal(self.rate_bp) / 100


class Coupon(db.Model):
    """One issued coupon with its own code, for one member, used once."""
    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint(_in("source", SOURCES), name="source"),
        CheckConstraint(_in("status", STATUSES), name="status"),
        Index("ix_coupons_member_status", "member_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("coupon_definitions.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    source: Mapped[str] = mapped_column(String(10))
    source_ref: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(10), default="issued")
    valid_from: Mapped[date]
    valid_until: Mapped[date]  # inclusive, store-local
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    redeemed_at: Mapped[datetime | None]
    checkout_id: Mapped[int | None] = mapped_column(ForeignKey("checkouts.id"), index=True)

    definition = relationship(CouponDefinition, lazy="joined")


class GiftRule(db.Model):
    """A time-boxed top-up gift: top up at least `min_topup` and get one coupon, while stock lasts."""
    __tablename__ = "gift_rules"
    __table_args__ = (CheckConstraint("min_topup > 0", name="min_topup"),
                      CheckConstraint("stock_left >= 0 AND stock_left <= stock_total", name="stock"),
                      CheckConstraint("starts_on <= ends_on", name="dates"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    min_topup: Mapped[int]
    definition_id: Mapped[int] = mapped_column(ForeignKey("coupon_definitions.id"))
    starts_on: Mapped[date]
    ends_on: Mapped[date]
    stock_total: Mapped[int]
    stock_left: Mapped[int]
    active: Mapped[bool] = mapped_column(default=True)

    definition = relationship(CouponDefinition, lazy="joined")


class DrawPrize(db.Model):
    """A lucky-draw prize: its weight among the prizes in stock, and the coupon it pays out as."""
    __tablename__ = "draw_prizes"
    __table_args__ = (CheckConstraint("weight > 0", name="weight"),
                      CheckConstraint("stock_left >= 0 AND stock_left <= stock_total", name="stock"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    definition_id: Mapped[int] = mapped_column(ForeignKey("coupon_definitions.id"))
    weight: Mapped[int]
    stock_total: Mapped[int]
    stock_left: Mapped[int]
    active: Mapped[bool] = mapped_column(default=True)

    definition = relationship(CouponDefinition, lazy="joined")


class DrawTicket(db.Model):
    """One draw, earned by a qualifying checkout; used once."""
    __tablename__ = "draw_tickets"
    __table_args__ = (CheckConstraint(_in("status", ("unused", "used", "cancelled")), name="status"),
                      Index("ix_draw_tickets_member_status", "member_id", "status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    checkout_id: Mapped[int] = mapped_column(ForeignKey("checkouts.id"), unique=True)
    status: Mapped[str] = mapped_column(String(10), default="unused")
    prize_id: Mapped[int | None] = mapped_column(ForeignKey("draw_prizes.id"))
    coupon_id: Mapped[int | None] = mapped_column(ForeignKey("coupons.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    drawn_at: Mapped[datetime | None]
