"""Stored-value ledger tables.

Each member has two accounts, `principal` (money the guest paid in, owed back on refund)
and `bonus` (what the business added); each account's balance is a cache of the sum of
its entries, kept in the same transaction. Entries are never edited: a void or refund
writes new ones. `crm audit` checks balance == Σ entries for every account.
"""
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.timeutil import utcnow
from ..extensions import db

KINDS = ("principal", "bonus")
# opening: a balance brought from a legacy system (import); transfer: moved between members by a merge.
ENTRY_KINDS = ("topup", "spend", "refund", "reversal", "opening", "transfer")


class WalletAccount(db.Model):
    __tablename__ = "wallet_accounts"
    __table_args__ = (UniqueConstraint("member_id", "kind", name="uq_wallet_accounts_member_kind"),
                      CheckConstraint("balance >= 0", name="balance_non_negative"),
                      CheckConstraint("kind IN ('principal', 'bonus')", name="kind"))

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(10))
    balance: Mapped[int] = mapped_column(default=0)  # fen
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WalletEntry(db.Model):
    __tablename__ = "wallet_entries"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_non_zero"),
        CheckConstraint(f"kind IN ({', '.join(repr(k) for k in ENTRY_KINDS)})", name="kind"),
        Index("ix_wallet_entries_account_created", "account_id", "created_at"),
        # A reversal names the entry it reverses, and no entry is reversed twice.
        Index("uq_wallet_entries_reverses_id", "reverses_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("wallet_accounts.id"))
    kind: Mapped[str] = mapped_column(String(10))
    amount: Mapped[int]  # fen, signed
    topup_id: Mapped[int | None] = mapped_column(ForeignKey("wallet_topups.id"), index=True)
    checkout_id: Mapped[int | None] = mapped_column(ForeignKey("checkouts.id"), index=True)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("wallet_entries.id"))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    account = relationship(WalletAccount, lazy="joined")


class WalletTopup(db.Model):
    """One top-up 充值 at a store: the money taken and the bonus given (for reports)."""
    __tablename__ = "wallet_topups"
    __table_args__ = (CheckConstraint("amount > 0 AND bonus >= 0", name="amounts"),
                      Index("ix_wallet_topups_store_created", "store_id", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    amount: Mapped[int]
    bonus: Mapped[int]
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("wallet_bonus_tiers.id"))
    payment_method: Mapped[str] = mapped_column(String(16))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BonusTier(db.Model):
    """Top up at least `min_amount`, get `bonus` added (the highest matching tier, once)."""
    __tablename__ = "wallet_bonus_tiers"
    __table_args__ = (CheckConstraint("min_amount > 0 AND bonus >= 0", name="amounts"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    min_amount: Mapped[int]
    bonus: Mapped[int]
    valid_from: Mapped[date | None]
    valid_to: Mapped[date | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WalletPin(db.Model):
    """The member's 6-digit payment PIN (hashed) and its wrong-try counter."""
    __tablename__ = "wallet_pins"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    pin_hash: Mapped[str] = mapped_column(String(255))
    failures: Mapped[int] = mapped_column(default=0)
    locked_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
