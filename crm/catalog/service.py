"""Catalogue and promotions: keep them, and turn a bill's SKUs into priceable items."""
from dataclasses import dataclass
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import or_, select

from ..core import audit, refcache
from ..core.actor import Actor
from ..core.money import percent_to_bp
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..members import levels
from ..stores import service as stores
from .models import Item, ItemLevelPrice, Promotion
from .pinyin import query_key
from .pricing import PriceItem, PromoRule


def _check_item(list_price, member_price, level_prices, valid_from, valid_to):
    if member_price is not None and member_price > list_price:
        raise Invalid(_("A member price cannot be above the list price."), code="member_price_above_list",
                      field="member_price")
    for code, price in (level_prices or {}).items():
        if price > list_price:
            raise Invalid(_("A member price cannot be above the list price."), code="member_price_above_list",
                          field="member_prices", level=code)
    if valid_from and valid_to and valid_from > valid_to:
        raise Invalid(_("The item's validity ends before it starts."), code="invalid_validity", field="valid_to")


def _apply(item: Item, data: dict):
    for field in ("name", "category", "list_price", "member_price", "valid_from", "valid_to", "active"):
        if field in data:
            setattr(item, field, data[field])
    if "member_prices" in data:  # update rows in place: replacing them would clash on (item, level)
        wanted = {levels.get_by_code(code).id: price for code, price in (data["member_prices"] or {}).items()}
        for row in list(item.level_prices):
            if row.level_id in wanted:
                row.price = wanted.pop(row.level_id)
            else:
                item.level_prices.remove(row)
        item.level_prices.extend(ItemLevelPrice(level_id=level_id, price=price) for level_id, price in wanted.items())
    if "store_codes" in data:
        item.stores = [stores.get_by_code(code) for code in data["store_codes"] or []]


def create_item(actor: Actor, data: dict) -> Item:
    """Add an item; SKUs are unique and are what POS terminals send."""
    sku = data["sku"].strip().upper()
    if db.session.scalar(select(Item.id).where(Item.sku == sku)):
        raise Conflict(_("An item with that SKU exists."), code="sku_taken", field="sku")
    _check_item(data["list_price"], data.get("member_price"), data.get("member_prices"),
                data.get("valid_from"), data.get("valid_to"))
    item = Item(sku=sku)
    _apply(item, data)
    db.session.add(item)
    db.session.flush()
    audit.record(actor, "item.create", entity=item, sku=sku)
    return item


def update_item(actor: Actor, sku: str, data: dict) -> Item:
    item = get_item(sku)
    merged = {"list_price": item.list_price, "member_price": item.member_price, "valid_from": item.valid_from,
              "valid_to": item.valid_to, **data}
    _check_item(merged["list_price"], merged["member_price"], data.get("member_prices"),
                merged["valid_from"], merged["valid_to"])
    _apply(item, data)
    audit.record(actor, "item.update", entity=item, sku=item.sku, fields=sorted(data))
    return item


def _by_code(model, column, value, message, code):
    row = db.session.scalar(select(model).where(column == value.strip().upper()))
    if row is None:
        raise NotFound(message, code=code)
    return row


def get_item(sku: str) -> Item:
    return _by_code(Item, Item.sku, sku, _("No such item."), "item_not_found")


def _matching(stmt, q: str | None):
    """Items whose SKU or name contains q, or whose name's pinyin initials or full pinyin
    do (`swy` or `sanwen` finds 三文鱼刺身)."""
    q = (q or "").strip()
    if not q:
        return stmt
    like = f"%{_escape_like(q)}%"
    matches = [Item.sku.ilike(like, escape="\\"), Item.name.ilike(like, escape="\\")]
    key = query_key(q)
    if key:
        matches.append(Item.search_pinyin.like(f"%{key}%"))
    return stmt.where(or_(*matches))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_items(q: str | None = None, category: str | None = None):
    stmt = _matching(select(Item).order_by(Item.category, Item.sku), q)
    if category:
        stmt = stmt.where(Item.category == category)
    return stmt


def sellable_items(store, on: date, q: str | None = None, limit: int = 300) -> list[Item]:
    """The items a till at this store can sell today (active, within their dates, sold here),
    by category then SKU, optionally matching a search (`_matching`)."""
    stmt = _matching(select(Item).where(Item.active.is_(True)).order_by(Item.category, Item.sku), q)
    return [item for item in db.session.scalars(stmt) if _sellable(item, store, on)][:limit]


def find_sku(text: str) -> str | None:
    """The SKU if `text` is exactly one (any case), else None."""
    text = (text or "").strip().upper()
    if not text or len(text) > 32:
        return None
    return db.session.scalar(select(Item.sku).where(Item.sku == text))


def items_for_bill(skus, store, on: date) -> dict:
    """{sku: PriceItem} for a bill at this store on this (local) date; 422 for any SKU that
    does not exist, is inactive, outside its validity dates or not sold at this store."""
    wanted = {s.strip().upper() for s in skus}
    batch = []  # the dishes not cached yet are read together, once

    def load(sku):
        if not batch:
            batch.append(_sale_entries(wanted))
        return batch[0].get(sku)
    found = {}
    for sku in sorted(wanted):  # each dish kept per worker until the catalogue changes (core/refcache.py)
        entry = refcache.get("catalogue", sku, lambda sku=sku: load(sku))
        if entry is not None:
            found[sku] = entry
    unknown = sorted(wanted - set(found))
    if unknown:
        raise Invalid(_("Unknown SKU: %(skus)s.", skus=", ".join(unknown)), code="unknown_sku", field="items",
                      skus=unknown)
    unavailable = sorted(sku for sku, entry in found.items() if not entry.sellable(store.id, on))
    if unavailable:
        raise Invalid(_("Not on sale here today: %(skus)s.", skus=", ".join(unavailable)),
                      code="item_unavailable", field="items", skus=unavailable)
    return {sku: entry.price for sku, entry in found.items()}


def _sellable(item: Item, store, on: date) -> bool:
    return (item.active and (item.valid_from is None or item.valid_from <= on)
            and (item.valid_to is None or on <= item.valid_to)
            and (not item.stores or any(s.id == store.id for s in item.stores)))


@dataclass(frozen=True)
class _SaleEntry:
    """What a bill needs of a dish: its prices and where and when it is on sale."""
    price: PriceItem
    active: bool
    valid_from: date | None
    valid_to: date | None
    store_ids: frozenset  # empty: every store

    def sellable(self, store_id: int, on: date) -> bool:
        return (self.active and (self.valid_from is None or self.valid_from <= on)
                and (self.valid_to is None or on <= self.valid_to)
                and (not self.store_ids or store_id in self.store_ids))


def _sale_entries(skus) -> dict:
    """{sku: _SaleEntry} of the dishes that exist among these SKUs, in one query (+ selectin)."""
    return {i.sku: _SaleEntry(
        PriceItem(sku=i.sku, name=i.name, category=i.category, list_price=i.list_price, member_price=i.member_price,
                  level_prices={lp.level.code: lp.price for lp in i.level_prices}),
        i.active, i.valid_from, i.valid_to, frozenset(s.id for s in i.stores))
        for i in db.session.scalars(select(Item).where(Item.sku.in_(skus)))}


# Promotions ---------------------------------------------------------------------------

def _rate_bp(data: dict) -> dict:
    """The API speaks percent paid ("77.00" = 7.7折); the table keeps basis points."""
    if "rate_pct" in data:
        data["rate_bp"] = percent_to_bp(data.pop("rate_pct"))
    return data


def create_promotion(actor: Actor, data: dict) -> Promotion:
    data = _rate_bp(dict(data))
    code = data["code"].strip().upper()
    if db.session.scalar(select(Promotion.id).where(Promotion.code == code)):
        raise Conflict(_("A promotion with that code exists."), code="promotion_code_taken", field="code")
    if data["starts_on"] > data["ends_on"]:
        raise Invalid(_("The promotion ends before it starts."), code="invalid_dates", field="ends_on")
    store_code = data.pop("store_code", None)
    promo = Promotion(code=code, **{k: v for k, v in data.items() if k != "code"})
    promo.store = stores.get_by_code(store_code) if store_code else None
    db.session.add(promo)
    db.session.flush()
    audit.record(actor, "promotion.create", entity=promo, code=code)
    return promo


def update_promotion(actor: Actor, code: str, data: dict) -> Promotion:
    promo = get_promotion(code)
    data = _rate_bp(dict(data))
    if "store_code" in data:
        store_code = data.pop("store_code")
        promo.store = stores.get_by_code(store_code) if store_code else None
    for field, value in data.items():
        setattr(promo, field, value)
    if promo.starts_on > promo.ends_on:
        raise Invalid(_("The promotion ends before it starts."), code="invalid_dates", field="ends_on")
    audit.record(actor, "promotion.update", entity=promo, code=promo.code, fields=sorted(data))
    return promo


def get_promotion(code: str) -> Promotion:
    return _by_code(Promotion, Promotion.code, code, _("No such promotion."), "promotion_not_found")


def list_promotions():
    return db.session.scalars(select(Promotion).order_by(Promotion.starts_on.desc(), Promotion.code)).all()


def promotions_for_bill(store, on: date, codes=()) -> list[PromoRule]:
    """Automatic promotions running today at this store, plus those the cashier named.
    A named code that is unknown, expired, not yet running or for another store is a 422."""
    named = {c.strip().upper() for c in codes or ()}
    # Every promotion, kept per worker until one changes (core/refcache.py).
    every = refcache.get("promotions", "all", lambda: {p.code: _PromoEntry(
        p.code, p.rate_bp, frozenset(p.categories or ()), p.members_only, p.auto_apply, p.starts_on, p.ends_on,
        p.store_id) for p in db.session.scalars(select(Promotion))})
    rows = [p for p in every.values() if p.auto_apply or p.code in named]
    by_code = {p.code: p for p in rows}
    for code in sorted(named):
        promo = by_code.get(code)
        if promo is None:
            raise Invalid(_("Unknown promotion %(code)s.", code=code), code="unknown_promotion", promotion=code)
        if not _running(promo, store, on):
            raise Invalid(_("Promotion %(code)s is not valid today.", code=code), code="promotion_expired",
                          promotion=code, starts_on=promo.starts_on.isoformat(), ends_on=promo.ends_on.isoformat())
    return [PromoRule(p.code, p.rate_bp, frozenset(p.categories or ()), p.members_only)
            for p in rows if _running(p, store, on)]


@dataclass(frozen=True)
class _PromoEntry:
    code: str
    rate_bp: int
    categories: frozenset
    members_only: bool
    auto_apply: bool
    starts_on: date
    ends_on: date
    store_id: int | None


def _running(promo, store, on: date) -> bool:
    return promo.starts_on <= on <= promo.ends_on and (promo.store_id is None or promo.store_id == store.id)
