"""Coupons: definitions, issuing (with stock), applying at checkout, top-up gifts, the draw."""
import secrets
from datetime import date, timedelta
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import func, select, update
from sqlalchemy.orm.attributes import set_committed_value

from ..core import audit
from ..core.actor import Actor
from ..core.money import format_fen, percent_to_bp, round_fen
from ..core.timeutil import utcnow
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from .models import Coupon, CouponDefinition, DrawPrize, DrawTicket, GiftRule

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at a counter
_RANDOM = secrets.SystemRandom()


class OutOfStock(Conflict):
    code = "out_of_stock"


def _take_one(model, row_id) -> bool:
    """Take one unit of stock if there is any; never below zero, whoever else is taking."""
    return db.session.execute(update(model).where(model.id == row_id, model.stock_left >= 1)
                              .values(stock_left=model.stock_left - 1)).rowcount == 1


# Definitions -----------------------------------------------------------------------------

def create_definition(actor: Actor, data: dict) -> CouponDefinition:
    data = dict(data)
    rate_pct = data.pop("rate_pct", None)
    if rate_pct is not None:
        data["rate_bp"] = percent_to_bp(rate_pct)
    code = data["code"].strip().upper()
    if db.session.scalar(select(CouponDefinition.id).where(CouponDefinition.code == code)):
        raise Conflict(_("A coupon type with that code exists."), code="coupon_code_taken", field="code")
    kind = data["kind"]
    if kind == "percent" and not data.get("rate_bp"):
        raise Invalid(_("A percentage coupon needs its rate."), code="rate_required", field="rate")
    if kind == "item" and not data.get("sku"):
        raise Invalid(_("An item coupon needs the item's SKU."), code="sku_required", field="sku")
    if kind in ("cash", "item") and not data.get("face_value"):
        raise Invalid(_("This coupon needs a face value."), code="face_value_required", field="face_value")
    definition = CouponDefinition(**{**data, "code": code, "sku": (data.get("sku") or "").upper() or None,
                                     "stock_left": data.get("stock_total")})
    db.session.add(definition)
    db.session.flush()
    audit.record(actor, "coupon_type.create", entity=definition, code=code, stock=definition.stock_total)
    return definition


def update_definition(actor: Actor, code: str, data: dict) -> CouponDefinition:
    definition = get_definition(code)
    for field in ("name", "valid_days", "valid_to", "active", "min_spend"):
        if field in data:
            setattr(definition, field, data[field])
    if "add_stock" in data and data["add_stock"]:  # stock only grows by explicit additions
        if definition.stock_total is None:
            raise Invalid(_("This coupon type has unlimited stock."), code="unlimited_stock", field="add_stock")
        db.session.execute(update(CouponDefinition).where(CouponDefinition.id == definition.id).values(
            stock_total=CouponDefinition.stock_total + data["add_stock"],
            stock_left=CouponDefinition.stock_left + data["add_stock"]))
        db.session.refresh(definition)
    audit.record(actor, "coupon_type.update", entity=definition, fields=sorted(data))
    return definition


def get_definition(code: str) -> CouponDefinition:
    definition = db.session.scalar(select(CouponDefinition).where(CouponDefinition.code == code.strip().upper()))
    if definition is None:
        raise NotFound(_("No such coupon type."), code="coupon_type_not_found")
    return definition


def list_definitions():
    return db.session.scalars(select(CouponDefinition).order_by(CouponDefinition.code)).all()


# Issuing ---------------------------------------------------------------------------------

def _new_code() -> str:
    return "Q" + "".join(_RANDOM.choice(_CODE_ALPHABET) for _ in range(11))


def issue(actor: Actor, member_id: int, definition: CouponDefinition, *, source: str, today: date,
          source_ref: str = "", valid_until: date | None = None) -> Coupon:
    """Issue one coupon to a member, taking one from the type's stock if it is limited."""
    if not definition.active:
        raise Invalid(_("This coupon type is no longer issued."), code="coupon_type_inactive")
    if definition.stock_total is not None and not _take_one(CouponDefinition, definition.id):
        raise OutOfStock(_("No %(name)s left in stock.", name=definition.name), definition=definition.code)
    until = valid_until or today + timedelta(days=max(definition.valid_days, 1) - 1)
    if definition.valid_to is not None:
        until = min(until, definition.valid_to)
    coupon = Coupon(code=_new_code(), definition=definition, member_id=member_id, source=source,
                    source_ref=source_ref, valid_from=today, valid_until=until, issued_by=actor.staff_id)
    db.session.add(coupon)
    db.session.flush()
    audit.record(actor, "coupon.issue", entity=coupon, member_id=member_id, type=definition.code, source=source)
    return coupon


def coupons_of(member_id: int, *, usable_on: date | None = None):
    stmt = select(Coupon).where(Coupon.member_id == member_id).order_by(Coupon.status, Coupon.valid_until, Coupon.id)
    if usable_on is not None:
        stmt = stmt.where(Coupon.status == "issued", Coupon.valid_until >= usable_on)
    return db.session.scalars(stmt).all()


def get_coupon(code: str) -> Coupon:
    coupon = db.session.scalar(select(Coupon).where(Coupon.code == code.strip().upper()))
    if coupon is None:
        raise NotFound(_("No such coupon."), code="coupon_not_found")
    return coupon


# At checkout -----------------------------------------------------------------------------

_ORDER = {"item": 0, "cash": 1, "percent": 2, "gift": 3}


def discounts_for(member_id: int | None, codes, lines, member_total: int, on: date) -> list[tuple[Coupon, int]]:
    """[(coupon, discount in fen)] for the codes on a bill, or a 422/409 naming the problem.

    Item coupons pay for one unit of their item (up to face value), cash coupons take face
    value off a bill of at least their minimum spend, percent coupons take their share of
    what is left; the total never exceeds the bill."""
    codes = [c.strip().upper() for c in codes or () if c and c.strip()]
    if not codes:
        return []
    if member_id is None:
        raise Invalid(_("Only members can use coupons."), code="coupon_needs_member", field="coupon_codes")
    if len(set(codes)) != len(codes):
        raise Invalid(_("The same coupon was entered twice."), code="duplicate_coupon", field="coupon_codes")
    found = {c.code: c for c in db.session.scalars(select(Coupon).where(Coupon.code.in_(codes)))}
    for code in codes:
        coupon = found.get(code)
        if coupon is None:
            raise Invalid(_("Unknown coupon %(code)s.", code=code), code="unknown_coupon", field="coupon_codes")
        if coupon.member_id != member_id:
            raise Invalid(_("Coupon %(code)s belongs to another member.", code=code), code="coupon_not_yours",
                          field="coupon_codes")
        if coupon.status != "issued":
            raise Conflict(_("Coupon %(code)s has already been used.", code=code), code="coupon_used",
                           field="coupon_codes")
        if not coupon.valid_from <= on <= coupon.valid_until:
            raise Invalid(_("Coupon %(code)s is not valid today (valid %(start)s to %(end)s).", code=code,
                            start=coupon.valid_from.isoformat(), end=coupon.valid_until.isoformat()),
                          code="coupon_expired", field="coupon_codes")
        if member_total < coupon.definition.min_spend:
            raise Invalid(_("Coupon %(code)s needs a bill of at least %(min)s.", code=code,
                            min=format_fen(coupon.definition.min_spend)), code="coupon_min_spend",
                          field="coupon_codes", min_spend=format_fen(coupon.definition.min_spend))
    left, result = member_total, []
    for coupon in sorted((found[c] for c in codes), key=lambda c: _ORDER[c.definition.kind]):
        d = coupon.definition
        if d.kind == "item":
            line = next((ln for ln in lines if ln.sku == d.sku), None)
            if line is None:
                raise Invalid(_("Coupon %(code)s is for %(sku)s, which is not on the bill.", code=coupon.code,
                                sku=d.sku), code="coupon_item_missing", field="coupon_codes")
            discount = min(d.face_value, line.unit_price)
        elif d.kind == "cash":
            discount = d.face_value
        elif d.kind == "percent":
            discount = left - round_fen(Decimal(left) * d.rate_bp / 10000)
        else:
            discount = 0
        discount = min(discount, left)
        left -= discount
        result.append((coupon, discount))
    return result


def redeem(coupons, checkout_id: int):
    """Use the coupons on a checkout; a coupon used at another till a moment ago is a 409."""
    for coupon in coupons:
        used = db.session.execute(update(Coupon).where(Coupon.id == coupon.id, Coupon.status == "issued").values(
            status="redeemed", redeemed_at=utcnow(), checkout_id=checkout_id)).rowcount
        if used != 1:
            raise Conflict(_("Coupon %(code)s has already been used.", code=coupon.code), code="coupon_used",
                           field="coupon_codes")


def restore_for_checkout(checkout_id: int) -> int:
    """A void gives the checkout's coupons back, as they were."""
    return db.session.execute(update(Coupon).where(Coupon.checkout_id == checkout_id, Coupon.status == "redeemed")
                              .values(status="issued", redeemed_at=None, checkout_id=None)).rowcount


# Top-up gifts ----------------------------------------------------------------------------

def create_gift_rule(actor: Actor, data: dict) -> GiftRule:
    if data["starts_on"] > data["ends_on"]:
        raise Invalid(_("The rule ends before it starts."), code="invalid_dates", field="ends_on")
    rule = GiftRule(name=data["name"], min_topup=data["min_topup"], starts_on=data["starts_on"],
                    ends_on=data["ends_on"], stock_total=data["stock"], stock_left=data["stock"],
                    definition=get_definition(data["coupon_type"]))
    db.session.add(rule)
    db.session.flush()
    audit.record(actor, "gift_rule.create", entity=rule, stock=rule.stock_total)
    return rule


def list_gift_rules():
    return db.session.scalars(select(GiftRule).order_by(GiftRule.starts_on.desc(), GiftRule.id)).all()


def gifts_for_topup(actor: Actor, member_id: int, amount: int, today: date, topup_id: int):
    """Issue the gift of every running rule this top-up reaches, while its stock lasts.
    Returns (coupons issued, [{"rule", "reason"}] for gifts that ran out)."""
    rules = db.session.scalars(select(GiftRule).where(
        GiftRule.active.is_(True), GiftRule.min_topup <= amount, GiftRule.starts_on <= today,
        GiftRule.ends_on >= today).order_by(GiftRule.id)).all()
    issued, missed = [], []
    for rule in rules:
        if not _take_one(GiftRule, rule.id):
            missed.append({"rule": rule.name, "reason": "out_of_stock"})
            continue
        try:
            with db.session.begin_nested():
                issued.append(issue(actor, member_id, rule.definition, source="topup", today=today,
                                    source_ref=f"gift-rule:{rule.id}:topup:{topup_id}"))
        except OutOfStock:  # the coupon type itself ran out: give the rule's unit back
            db.session.execute(update(GiftRule).where(GiftRule.id == rule.id)
                               .values(stock_left=GiftRule.stock_left + 1))
            missed.append({"rule": rule.name, "reason": "out_of_stock"})
    return issued, missed


# The lucky draw --------------------------------------------------------------------------

def create_prize(actor: Actor, data: dict) -> DrawPrize:
    prize = DrawPrize(name=data["name"], weight=data["weight"], stock_total=data["stock"], stock_left=data["stock"],
                      definition=get_definition(data["coupon_type"]))
    db.session.add(prize)
    db.session.flush()
    audit.record(actor, "draw_prize.create", entity=prize, weight=prize.weight, stock=prize.stock_total)
    return prize


def list_prizes():
    return db.session.scalars(select(DrawPrize).order_by(DrawPrize.id)).all()


def grant_ticket(member_id: int, checkout_id: int):
    db.session.add(DrawTicket(member_id=member_id, checkout_id=checkout_id))


def tickets_left(member_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(DrawTicket).where(
        DrawTicket.member_id == member_id, DrawTicket.status == "unused"))


def cancel_ticket(checkout_id: int) -> bool:
    """A voided checkout's draw, if not yet drawn, is withdrawn (a drawn prize stays issued)."""
    return db.session.execute(update(DrawTicket).where(DrawTicket.checkout_id == checkout_id,
                                                       DrawTicket.status == "unused")
                              .values(status="cancelled")).rowcount == 1


def draw(actor: Actor, member_id: int, today: date) -> DrawTicket:
    """Use the member's oldest draw: a prize chosen by weight among those in stock (secure
    randomness), paid out as a coupon."""
    ticket = None
    for candidate in db.session.scalars(select(DrawTicket).where(
            DrawTicket.member_id == member_id, DrawTicket.status == "unused").order_by(DrawTicket.id).limit(5)):
        if db.session.execute(update(DrawTicket).where(DrawTicket.id == candidate.id, DrawTicket.status == "unused")
                              .values(status="used", drawn_at=utcnow())).rowcount == 1:
            ticket = candidate
            break
    if ticket is None:
        raise Conflict(_("This member has no draws left."), code="no_draws")
    prizes = [p for p in db.session.scalars(select(DrawPrize).where(DrawPrize.active.is_(True),
                                                                    DrawPrize.stock_left > 0))]
    while prizes:
        prize = _RANDOM.choices(prizes, weights=[p.weight for p in prizes])[0]
        if _take_one(DrawPrize, prize.id):
            coupon = issue(actor, member_id, prize.definition, source="draw", today=today,
                           source_ref=f"draw:{ticket.id}")
            set_committed_value(ticket, "status", "used")  # already claimed by the UPDATE above
            ticket.prize_id, ticket.coupon_id = prize.id, coupon.id
            db.session.flush()
            audit.record(actor, "draw.draw", entity=ticket, member_id=member_id, prize=prize.name)
            return ticket
        prizes.remove(prize)  # another draw took the last one a moment ago
    raise Conflict(_("All prizes have been given out."), code="no_prizes_left")


# Audit and liability ---------------------------------------------------------------------

def audit_mismatches() -> list[str]:
    problems = []
    issued = dict(db.session.execute(select(Coupon.definition_id, func.count()).group_by(Coupon.definition_id)).all())
    for d in db.session.scalars(select(CouponDefinition).where(CouponDefinition.stock_total.is_not(None))):
        if d.stock_total - d.stock_left != issued.get(d.id, 0):
            problems.append(f"coupon type {d.code}: stock {d.stock_total} − left {d.stock_left} "
                            f"≠ {issued.get(d.id, 0)} issued")
    for rule in db.session.scalars(select(GiftRule)):
        given = db.session.scalar(select(func.count()).select_from(Coupon).where(
            Coupon.source_ref.like(f"gift-rule:{rule.id}:%")))
        if rule.stock_total - rule.stock_left != given:
            problems.append(f"gift rule {rule.id} ({rule.name}): stock {rule.stock_total} − left {rule.stock_left} "
                            f"≠ {given} given")
    won = dict(db.session.execute(select(DrawTicket.prize_id, func.count()).where(DrawTicket.prize_id.is_not(None))
                                  .group_by(DrawTicket.prize_id)).all())
    for prize in db.session.scalars(select(DrawPrize)):
        if prize.stock_total - prize.stock_left != won.get(prize.id, 0):
            problems.append(f"draw prize {prize.id} ({prize.name}): stock {prize.stock_total} − left "
                            f"{prize.stock_left} ≠ {won.get(prize.id, 0)} won")
    return problems


def unused_face_value(on: date) -> int:
    """Face value of coupons issued and still usable: part of what the business owes."""
    return db.session.scalar(select(func.coalesce(func.sum(CouponDefinition.face_value), 0)).join(Coupon.definition)
                             .where(Coupon.status == "issued", Coupon.valid_until >= on)) or 0


def get_coupon_by_id(coupon_id: int) -> Coupon:
    return db.session.get(Coupon, coupon_id)


def get_prize(prize_id: int) -> DrawPrize:
    return db.session.get(DrawPrize, prize_id)


def gift_preview(amount: int, on: date) -> list[dict]:
    """The gift rules a top-up of this amount would reach today, and whether stock is left."""
    rules = db.session.scalars(select(GiftRule).where(
        GiftRule.active.is_(True), GiftRule.min_topup <= amount, GiftRule.starts_on <= on,
        GiftRule.ends_on >= on).order_by(GiftRule.id)).all()
    return [{"rule": r.name, "coupon": r.definition.name, "in_stock": r.stock_left > 0} for r in rules]
