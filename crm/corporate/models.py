"""Tables of crm.corporate: a company's account at the till (挂账), its authorised signers and its ledger.

Money is fen. `company_accounts.owed` is what the company owes and always equals the sum of its
entries (charges +, reversals −, payments −, adjustments ±); it changes only by a conditional
UPDATE in service.py, in the same transaction as the entry. It may fall below zero only when a
bill already paid for is voided (the company is then in credit); a charge is refused unless
owed + amount ≤ credit_limit, so the limit is never exceeded by charges.
"""
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.timeutil import utcnow
from ..extensions import db

ENTRY_KINDS = ("charge", "reversal", "payment", "adjustment")
PAYMENT_METHODS = ("bank_transfer", "cash", "cheque", "wechat_pay", "alipay", "other")


class CompanyAccount(db.Model):
    __tablename__ = "company_accounts"
    __table_args__ = (CheckConstraint("credit_limit >= 0", name="credit_limit_non_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), unique=True)
    credit_limit: Mapped[int] = mapped_column(default=0)
    owed: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    company = relationship("Company", lazy="joined")
    signers = relationship("CompanySigner", lazy="selectin", order_by="CompanySigner.id",
                           cascade="all, delete-orphan")

    @property
    def available(self) -> int:
        """Credit left for new charges (0 when suspended or over a lowered limit)."""
        return max(self.credit_limit - self.owed, 0) if self.active else 0


class CompanySigner(db.Model):
    """A member allowed to sign bills to their company's account."""
    __tablename__ = "company_signers"
    __table_args__ = (UniqueConstraint("account_id", "member_id", name="uq_company_signers_account_member"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("company_accounts.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    member = relationship("Member", lazy="joined")


class CompanyAccountEntry(db.Model):
    """Append-only ledger of a company account. A bill has at most one charge and one reversal
    (unique on checkout and kind), so a void can never give back twice."""
    __tablename__ = "company_account_entries"
    __table_args__ = (
        CheckConstraint(f"kind IN ({', '.join(repr(k) for k in ENTRY_KINDS)})", name="kind"),
        CheckConstraint("amount != 0", name="amount_not_zero"),
        CheckConstraint("(kind = 'charge' AND amount > 0) OR (kind IN ('reversal', 'payment') AND amount < 0) "
                        "OR kind = 'adjustment'", name="amount_sign"),
        UniqueConstraint("checkout_id", "kind", name="uq_company_account_entries_checkout_kind"),
        Index("ix_company_account_entries_account_created", "account_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("company_accounts.id"))
    kind: Mapped[str] = mapped_column(String(12))
    amount: Mapped[int]  # signed: + raises what is owed
    checkout_id: Mapped[int | None] = mapped_column(ForeignKey("checkouts.id"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))  # the signer of a charge
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    method: Mapped[str | None] = mapped_column(String(16))  # a payment's means
    reference: Mapped[str | None] = mapped_column(String(100))
    received_on: Mapped[date | None]
    note: Mapped[str | None] = mapped_column(String(200))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    member = relationship("Member")
    store = relationship("Store")
    checkout = relationship("Checkout")
