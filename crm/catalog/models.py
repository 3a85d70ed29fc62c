from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, Column, ForeignKey, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from ..core.timeutil import utcnow
from ..extensions import db
from .pinyin import search_text

item_stores = Table(
    "item_stores", db.metadata,
    Column("item_id", ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("store_id", ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True),
)


class Item(db.Model):
    """Something on the bill. Sold in every store unless `stores` names some."""
    __tablename__ = "items"
    __table_args__ = (
        CheckConstraint("list_price >= 0", name="list_price_non_negative"),
        CheckConstraint("member_price IS NULL OR member_price >= 0", name="member_price_non_negative"),
        CheckConstraint("valid_from IS NULL OR valid_to IS NULL OR valid_from <= valid_to", name="validity"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    # Pinyin initials and full pinyin of the name, kept in step with it (catalog/pinyin.py says why a column).
    search_pinyin: Mapped[str] = mapped_column(String(300), default="")
    category: Mapped[str] = mapped_column(String(32), index=True)
    list_price: Mapped[int]  # fen
    member_price: Mapped[int | None]  # fen; None = members pay the list price
    valid_from: Mapped[date | None]
    valid_to: Mapped[date | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    level_prices = relationship("ItemLevelPrice", cascade="all, delete-orphan", lazy="selectin")
    stores = relationship("Store", secondary=item_stores, lazy="selectin")

    @validates("name")
    def _name_set(self, _key, name):
        self.search_pinyin = search_text(name)
        return name

    @property
    def member_prices(self) -> dict:
        return {lp.level.code: lp.price for lp in self.level_prices}

    @property
    def store_codes(self) -> list:
        return sorted(s.code for s in self.stores)


class ItemLevelPrice(db.Model):
    """A member price for one level (e.g. gold members pay less than the plain member price)."""
    __tablename__ = "item_level_prices"
    __table_args__ = (UniqueConstraint("item_id", "level_id", name="uq_item_level_prices_item_level"),
                      CheckConstraint("price >= 0", name="price_non_negative"))

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    level_id: Mapped[int] = mapped_column(ForeignKey("member_levels.id"))
    price: Mapped[int]

    level = relationship("MemberLevel", lazy="joined")


class Promotion(db.Model):
    """Percentage off categories for a date range, e.g. Valentine's 7.7折 (rate 7700 = pay 77%)."""
    __tablename__ = "promotions"
    __table_args__ = (CheckConstraint("rate_bp > 0 AND rate_bp < 10000", name="rate_range"),
                      CheckConstraint("starts_on <= ends_on", name="dates"))

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    rate_bp: Mapped[int]  # share of the list price the guest pays, in basis points
    categories: Mapped[list] = mapped_column(JSON, default=list)  # empty = every category
    starts_on: Mapped[date]
    ends_on: Mapped[date]  # inclusive, in the store's time zone
    members_only: Mapped[bool] = mapped_column(default=False)
    auto_apply: Mapped[bool] = mapped_column(default=True)  # False: only when the cashier enters its code
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))  # None = every store
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    store = relationship("Store")

    @property
    def rate_pct(self) -> Decimal:
        return Decimal(self.rate_bp) / 100

    @property
    def store_code(self):
        return self.store.code if self.store else None
