"""The one place that does price arithmetic for a bill. Pure: no database, no clock.

Rules (docs/rules.md, "Prices and member prices"):
- A line's unit price is the lowest price the guest is entitled to: the list price; for
  a member, the member price of their level if the item has one, else its member price;
  the promotion price of every promotion that applies; and for a member of a company with a
  negotiated discount, the company price (list price × (1 − discount), rounded half-up to the
  fen), marked `promotion = "company"` on the line. Prices never stack: a member price is not
  discounted again by a promotion or the company discount.
- Promotion price per unit = list price × rate, rounded half-up to the fen (core.money);
  a line's amount is unit price × quantity, so a receipt's lines always multiply out.
- list_total = Σ list price × qty; member_total = Σ amounts (for a non-member it is what
  they pay after public promotions); savings = list_total − member_total.
"""
from dataclasses import dataclass, field
from decimal import Decimal

from ..core.money import round_fen


@dataclass(frozen=True)
class PriceItem:
    sku: str
    name: str
    category: str
    list_price: int
    member_price: int | None = None
    level_prices: dict = field(default_factory=dict)  # level code -> fen


@dataclass(frozen=True)
class PromoRule:
    code: str
    rate_bp: int
    categories: frozenset = frozenset()
    members_only: bool = False

    def applies(self, item: PriceItem, is_member: bool) -> bool:
        return (is_member or not self.members_only) and (not self.categories or item.category in self.categories)


@dataclass(frozen=True)
class PricedLine:
    sku: str
    name: str
    category: str
    qty: int
    list_price: int
    unit_price: int
    amount: int
    promotion: str | None


@dataclass(frozen=True)
class PricedBill:
    lines: tuple
    list_total: int
    member_total: int

    @property
    def savings(self) -> int:
        return self.list_total - self.member_total


def promotion_price(list_price: int, rate_bp: int) -> int:
    return round_fen(Decimal(list_price) * rate_bp / 10000)


COMPANY = "company"  # the line's `promotion` when the company's negotiated discount gave its price


def unit_price(item: PriceItem, *, level: str | None, promotions=(), company_discount_bp: int = 0
               ) -> tuple[int, str | None]:
    """(price, promotion code or None) for one unit; level None means not a member.
    `company_discount_bp` is the negotiated discount of the member's company (1500 = 15% off list)."""
    best, promo = item.list_price, None
    if level is not None:
        member = item.level_prices.get(level, item.member_price)
        if member is not None and member < best:
            best = member
        if company_discount_bp > 0:
            price = promotion_price(item.list_price, 10000 - company_discount_bp)
            if price < best:
                best, promo = price, COMPANY
    for rule in promotions:
        if rule.applies(item, level is not None):
            price = promotion_price(item.list_price, rule.rate_bp)
            if price < best:
                best, promo = price, rule.code
    return best, promo


def price_bill(lines, *, level: str | None, promotions=(), company_discount_bp: int = 0) -> PricedBill:
    """Price [(PriceItem, qty), …] for a member of `level` (None: not a member), of a company
    with `company_discount_bp` negotiated off list (0: none)."""
    priced = []
    for item, qty in lines:
        price, promo = unit_price(item, level=level, promotions=promotions, company_discount_bp=company_discount_bp)
        priced.append(PricedLine(item.sku, item.name, item.category, qty, item.list_price, price, price * qty, promo))
    return PricedBill(tuple(priced), sum(p.list_price * p.qty for p in priced), sum(p.amount for p in priced))
