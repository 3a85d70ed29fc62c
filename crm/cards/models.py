from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.timeutil import utcnow
from ..extensions import db

STATUSES = ("active", "frozen", "lost", "replaced", "cancelled")
LIVE = ("active", "frozen")  # a member holds at most one live card
PAYMENT_METHODS = ("cash", "wechat", "alipay", "bank_card", "other")
PAYMENT_LABELS = {"cash": _l("Cash"), "wechat": _l("WeChat Pay"), "alipay": _l("Alipay"),
                  "bank_card": _l("Bank card"), "other": _l("Other")}
STATUS_LABELS = {"active": _l("Active"), "frozen": _l("Frozen"), "lost": _l("Lost"),
                 "replaced": _l("Replaced"), "cancelled": _l("Cancelled")}
_LIVE_SQL = "status IN ('active', 'frozen')"


class Card(db.Model):
    __tablename__ = "cards"
    __table_args__ = (
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})", name="status"),
        Index("uq_cards_member_live", "member_id", unique=True,
              sqlite_where=text(_LIVE_SQL), postgresql_where=text(_LIVE_SQL)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    card_no: Mapped[str] = mapped_column(String(20), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    status: Mapped[str] = mapped_column(String(12), default="active")
    issued_store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"))
    # A number brought from a legacy system (import), kept as printed on the guest's card: it
    # need not carry our check digit, so look-ups accept it as it is.
    legacy: Mapped[bool] = mapped_column(default=False, server_default=sa_false())

    # Loaded on access: a member's live card is fetched for whole result pages, and
    # joining the member back in there would load it (and its tags) twice.
    member = relationship("Member")
    issued_store = relationship("Store")
    replaces = relationship("Card", remote_side=[id], lazy="select")


class CardFee(db.Model):
    """Card fee 办卡费 taken at a store: revenue of the issuing store (append-only)."""
    __tablename__ = "card_fees"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_non_negative"),
        CheckConstraint("kind IN ('issue', 'replace')", name="kind"),
        CheckConstraint(f"payment_method IN ({', '.join(repr(p) for p in PAYMENT_METHODS)})",
                        name="payment_method"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"), index=True)
    amount: Mapped[int]  # fen
    kind: Mapped[str] = mapped_column(String(8))
    payment_method: Mapped[str] = mapped_column(String(16))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class PhoneLink(db.Model):
    """A member's private link to the phone card page (the rotating code). Only its hash is
    kept; issuing a new link replaces the old one, which stops working at once."""
    __tablename__ = "phone_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
