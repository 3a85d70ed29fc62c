"""A closed bill (a 'check'): what was bought, at what prices, and what it did to points.

Money columns are fen. The row is written once when the bill closes; a void only sets
the void fields (through the transition table in service.py) and writes reversing
ledger entries — the amounts are never edited.
"""
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.segments import SEGMENT_KEYS
from ..core.timeutil import utcnow
from ..extensions import db

STATUSES = ("closed", "voided")
# How a bill was paid. `stored_value` is the member's wallet (its amount is the bill's
# wallet_paid); `other` is a payment by means the client did not say (API clients from
# before tenders, and bills closed before tenders were recorded). `company_account` is
# a bill signed to the member's company account (挂账, crm/corporate): its amount is the bill's
# charge in company_account_entries.
TENDER_METHODS = ("cash", "bank_card", "wechat_pay", "alipay", "stored_value", "other", "company_account")


class Checkout(db.Model):
    __tablename__ = "checkouts"
    __table_args__ = (
        CheckConstraint("status IN ('closed', 'voided')", name="status"),
        CheckConstraint("list_total >= 0 AND member_total >= 0 AND member_total <= list_total", name="totals"),
        CheckConstraint("points_redeemed >= 0 AND points_value >= 0 AND points_earned >= 0", name="points"),
        CheckConstraint("coupon_discount >= 0 AND wallet_paid >= 0 AND due >= 0", name="payments"),
        CheckConstraint("due = member_total - coupon_discount - points_value - wallet_paid", name="due_adds_up"),
        CheckConstraint("wallet_paid = wallet_principal + wallet_bonus", name="wallet_adds_up"),
        CheckConstraint("covers IS NULL OR covers > 0", name="covers_positive"),
        CheckConstraint(f"segment IN ({', '.join(repr(s) for s in SEGMENT_KEYS)})", name="segment"),
        Index("ix_checkouts_store_created", "store_id", "created_at"),
        Index("ix_checkouts_member_created", "member_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"))
    member_level: Mapped[str | None] = mapped_column(String(32))  # level when the bill closed
    status: Mapped[str] = mapped_column(String(8), default="closed")
    covers: Mapped[int | None]
    segment: Mapped[str | None] = mapped_column(String(24))
    joined_at_visit: Mapped[bool] = mapped_column(default=False)  # the guest became a member at this visit
    list_total: Mapped[int]
    member_total: Mapped[int]
    coupon_discount: Mapped[int] = mapped_column(default=0)
    points_redeemed: Mapped[int] = mapped_column(default=0)
    points_value: Mapped[int] = mapped_column(default=0)
    wallet_paid: Mapped[int] = mapped_column(default=0)
    wallet_principal: Mapped[int] = mapped_column(default=0)  # parts of wallet_paid
    wallet_bonus: Mapped[int] = mapped_column(default=0)
    due: Mapped[int]  # paid by other means (cash, card, WeChat …)
    points_earned: Mapped[int] = mapped_column(default=0)
    points_balance_after: Mapped[int | None]  # the member's points when the bill closed (for reprints)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    voided_at: Mapped[datetime | None]
    voided_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    void_reason: Mapped[str | None] = mapped_column(String(200))

    store = relationship("Store")
    member = relationship("Member")
    card = relationship("Card")
    lines = relationship("CheckoutLine", order_by="CheckoutLine.line_no", lazy="selectin",
                         cascade="all, delete-orphan")
    tenders = relationship("CheckoutTender", order_by="CheckoutTender.id", lazy="selectin",
                           cascade="all, delete-orphan")

    @property
    def savings(self) -> int:
        return self.list_total - self.member_total


class CheckoutLine(db.Model):
    __tablename__ = "checkout_lines"
    __table_args__ = (CheckConstraint("qty > 0", name="qty_positive"),
                      CheckConstraint("amount = unit_price * qty", name="amount_adds_up"))

    id: Mapped[int] = mapped_column(primary_key=True)
    checkout_id: Mapped[int] = mapped_column(ForeignKey("checkouts.id", ondelete="CASCADE"), index=True)
    line_no: Mapped[int]
    sku: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(32))
    qty: Mapped[int]
    list_price: Mapped[int]
    unit_price: Mapped[int]
    amount: Mapped[int]
    promotion: Mapped[str | None] = mapped_column(String(32))


class CheckoutTender(db.Model):
    """One way a bill was paid and how much (fen). A closed bill's tenders add up to what the
    guest paid after coupons and points: due + wallet_paid (service.settle_tenders; `crm
    audit` checks it). One row per method and bill."""
    __tablename__ = "checkout_tenders"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(f"method IN ({', '.join(repr(m) for m in TENDER_METHODS)})", name="method"),
        UniqueConstraint("checkout_id", "method", name="uq_checkout_tenders_checkout_method"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    checkout_id: Mapped[int] = mapped_column(ForeignKey("checkouts.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int]
