"""Coupons: definitions, issuing (with stock), applying at checkout, top-up gifts, the draw."""
import secrets
from datetime import date, timedelta
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from ..core import audit, locks
from ..core.actor import Actor
from ..core.lookup import get_or_404
from ..core.money import format_fen, percent_to_bp, round_fen
from ..core.rows import insert_rows
from ..core.timeutil import utcnow
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..members import merge_models as merged
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
    if source == "manual":  # not to a merged duplicate (campaigns never pick one: their audiences leave tombstones out)
        locks.lock_member(member_id)  # a merge under way is waited for: the check then sees the tombstone
        merged.refuse_if_merged(member_id)
        from ..members import pipl
        pipl.refuse_if_anonymised(member_id)
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
    left, result, units = member_total, [], _units_by_sku(lines)
    for coupon in sorted((found[c] for c in codes), key=lambda c: _ORDER[c.definition.kind]):
        d = coupon.definition
        if d.kind == "item":
            discount = min(d.face_value, _take_unit(units, coupon))
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


def _units_by_sku(lines) -> dict:
    """{sku: [[unit price, units not yet paid by a coupon], …]}, dearest first."""
    units = {}
    for line in sorted(lines, key=lambda ln: -ln.unit_price):
        units.setdefault(line.sku, []).append([line.unit_price, line.qty])
    return units


def _take_unit(units: dict, coupon) -> int:
    """An item coupon pays for one unit of its item: take the dearest unit no other coupon
    has taken and return its price. Two lobster coupons need two lobsters on the bill."""
    sku = coupon.definition.sku
    if sku not in units:
        raise Invalid(_("Coupon %(code)s is for %(sku)s, which is not on the bill.", code=coupon.code, sku=sku),
                      code="coupon_item_missing", field="coupon_codes")
    free = next((slot for slot in units[sku] if slot[1] > 0), None)
    if free is None:
        raise Invalid(_("Coupon %(code)s has no %(sku)s left to pay for: each item coupon pays for one unit.",
                        code=coupon.code, sku=sku), code="too_many_item_coupons", field="coupon_codes", sku=sku)
    free[1] -= 1
    return free[0]


def redeem(coupons, checkout_id: int):
    """Use the coupons on a checkout; a coupon used at another till a moment ago is a 409."""
    for coupon in coupons:
        used = db.session.execute(update(Coupon).where(Coupon.id == coupon.id, Coupon.status == "issued").values(
            status="redeemed", redeemed_at=utcnow(), checkout_id=checkout_id)).rowcount
        if used != 1:
            raise Conflict(_("Coupon %(code)s has already been used.", code=coupon.code), code="coupon_used",
                           field="coupon_codes")


def restore_for_checkout(checkout_id: int, member_id: int | None = None) -> int:
    """A void gives the checkout's coupons back, as they were, to the bill's member (`member_id`:
    the survivor, when the bill was a merged duplicate's, members/merge.py)."""
    to = {"member_id": member_id} if member_id is not None else {}
    return db.session.execute(update(Coupon).where(Coupon.checkout_id == checkout_id, Coupon.status == "redeemed")
                              .values(status="issued", redeemed_at=None, checkout_id=None, **to)).rowcount


def cancel_unused(coupon_id: int) -> bool:
    """Cancel an issued coupon nobody has used yet (a reward taken back); False if it was used."""
    return db.session.execute(update(Coupon).where(Coupon.id == coupon_id, Coupon.status == "issued")
                              .values(status="cancelled")).rowcount == 1


# Top-up gifts ----------------------------------------------------------------------------

def _type_unavailable(definition: CouponDefinition) -> str | None:
    """Why coupons of this type cannot be given now ("coupon_type_inactive", "out_of_stock"), or None."""
    if not definition.active:
        return "coupon_type_inactive"
    if definition.stock_total is not None and definition.stock_left < 1:
        return "out_of_stock"
    return None


def _update_stocked(actor: Actor, row, data: dict, fields, event: str):
    """Set a gift rule's or prize's editable fields, add any stock, and audit the change."""
    for field in fields:
        if field in data:
            setattr(row, field, data[field])
    _add_stock(type(row), row, data.get("add_stock"))
    audit.record(actor, event, entity=row, fields=sorted(data), add_stock=data.get("add_stock"), active=row.active)
    return row


def _add_stock(model, row, amount: int | None):
    """Grow a gift rule's or prize's stock by an explicit amount, in one UPDATE of both counters."""
    if not amount:
        return
    db.session.execute(update(model).where(model.id == row.id).values(
        stock_total=model.stock_total + amount, stock_left=model.stock_left + amount))
    db.session.refresh(row)


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


def get_gift_rule(rule_id: int) -> GiftRule:
    return get_or_404(GiftRule, rule_id, _("No such gift rule."), code="gift_rule_not_found")


def update_gift_rule(actor: Actor, rule_id: int, data: dict) -> GiftRule:
    """Rename, change the threshold or dates, stop / resume, or add stock (never set it)."""
    rule = get_gift_rule(rule_id)
    if data.get("starts_on", rule.starts_on) > data.get("ends_on", rule.ends_on):
        raise Invalid(_("The rule ends before it starts."), code="invalid_dates", field="ends_on")
    return _update_stocked(actor, rule, data, ("name", "min_topup", "starts_on", "ends_on", "active"),
                           "gift_rule.update")


def list_gift_rules():
    return db.session.scalars(select(GiftRule).order_by(GiftRule.starts_on.desc(), GiftRule.id)).all()


def _running_rules(amount: int, on: date):
    """The active gift rules a top-up of this amount reaches on this day."""
    return db.session.scalars(select(GiftRule).where(
        GiftRule.active.is_(True), GiftRule.min_topup <= amount, GiftRule.starts_on <= on,
        GiftRule.ends_on >= on).order_by(GiftRule.id)).all()


def gifts_for_topup(actor: Actor, member_id: int, amount: int, today: date, topup_id: int):
    """Issue the gift of every running rule this top-up reaches, while its stock lasts.
    Returns (coupons issued, [{"rule", "reason"}] for gifts not given: "out_of_stock" when
    the rule or its coupon type ran out, "coupon_type_inactive" when the type was retired).

    Locks as core/locks.py orders them: every rule's unit first (rules in id order), then the
    coupon types (in id order), so two top-ups whose rules share a type never wait on each
    other crosswise. A rule whose type ran out a moment ago gets its unit back."""
    taken, missed = [], []
    for rule in _running_rules(amount, today):
        reason = _type_unavailable(rule.definition) or (None if _take_one(GiftRule, rule.id) else "out_of_stock")
        if reason:
            missed.append({"rule": rule.name, "reason": reason})
        else:
            taken.append(rule)
    issued = {}
    for rule in sorted(taken, key=lambda r: (r.definition_id, r.id)):
        try:
            with db.session.begin_nested():
                issued[rule.id] = issue(actor, member_id, rule.definition, source="topup", today=today,
                                        source_ref=f"gift-rule:{rule.id}:topup:{topup_id}")
        except OutOfStock:
            db.session.execute(update(GiftRule).where(GiftRule.id == rule.id)
                               .values(stock_left=GiftRule.stock_left + 1))
            missed.append({"rule": rule.name, "reason": "out_of_stock"})
    return [issued[rule_id] for rule_id in sorted(issued)], missed


# The lucky draw --------------------------------------------------------------------------

def create_prize(actor: Actor, data: dict) -> DrawPrize:
    prize = DrawPrize(name=data["name"], weight=data["weight"], stock_total=data["stock"], stock_left=data["stock"],
                      definition=get_definition(data["coupon_type"]))
    db.session.add(prize)
    db.session.flush()
    audit.record(actor, "draw_prize.create", entity=prize, weight=prize.weight, stock=prize.stock_total)
    return prize


def update_prize(actor: Actor, prize_id: int, data: dict) -> DrawPrize:
    """Rename, reweight, stop / resume, or add stock (never set it)."""
    return _update_stocked(actor, get_prize(prize_id), data, ("name", "weight", "active"), "draw_prize.update")


def list_prizes():
    return db.session.scalars(select(DrawPrize).order_by(DrawPrize.id)).all()


def grant_ticket(member_id: int, checkout_id: int):
    insert_rows(DrawTicket, [{"member_id": member_id, "checkout_id": checkout_id}], returning=False)


def tickets_left(member_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(DrawTicket).where(
        DrawTicket.member_id == member_id, DrawTicket.status == "unused"))


def cancel_ticket(checkout_id: int) -> bool:
    """A voided checkout's draw, if not yet drawn, is withdrawn (a drawn prize stays issued)."""
    return db.session.execute(update(DrawTicket).where(DrawTicket.checkout_id == checkout_id,
                                                       DrawTicket.status == "unused")
                              .values(status="cancelled")).rowcount == 1


def _claim_ticket(member_id: int) -> DrawTicket:
    """Mark the member's oldest unused draw as used (a concurrent draw cannot take it too)."""
    for candidate in db.session.scalars(select(DrawTicket).where(
            DrawTicket.member_id == member_id, DrawTicket.status == "unused").order_by(DrawTicket.id).limit(5)):
        if db.session.execute(update(DrawTicket).where(DrawTicket.id == candidate.id, DrawTicket.status == "unused")
                              .values(status="used", drawn_at=utcnow())).rowcount == 1:
            set_committed_value(candidate, "status", "used")
            return candidate
    raise Conflict(_("This member has no draws left."), code="no_draws")


def _drawable_prizes() -> list[DrawPrize]:
    """Prizes a draw may choose: active and in stock, paid out as a coupon type still issued and in stock."""
    stmt = (select(DrawPrize).join(CouponDefinition, DrawPrize.definition_id == CouponDefinition.id)
            .where(DrawPrize.active.is_(True), DrawPrize.stock_left > 0, CouponDefinition.active.is_(True),
                   or_(CouponDefinition.stock_total.is_(None), CouponDefinition.stock_left > 0))
            .order_by(DrawPrize.id))
    return list(db.session.scalars(stmt))


def _pay_out(actor: Actor, prize: DrawPrize, member_id: int, today: date, ticket_id: int) -> Coupon | None:
    """Take one of the prize and issue its coupon; None (and the prize's unit kept) if either ran out."""
    try:
        with db.session.begin_nested():
            if not _take_one(DrawPrize, prize.id):
                return None
            return issue(actor, member_id, prize.definition, source="draw", today=today,
                         source_ref=f"draw:{ticket_id}")
    except OutOfStock:
        return None


def draw(actor: Actor, member_id: int, today: date) -> DrawTicket:
    """Use the member's oldest draw: a prize chosen by weight among those that can be paid
    out (secure randomness), issued as a coupon. With nothing left to win it is a 409 and,
    as the request rolls back, the member keeps the draw. Locks: the member, the ticket, then
    the prize's stock and its coupon type's (core/locks.py)."""
    locks.lock_member(member_id)
    from ..members import pipl
    pipl.refuse_if_anonymised(member_id)  # no prize's stock spent on a coupon nobody can use
    ticket = _claim_ticket(member_id)
    prizes = _drawable_prizes()
    while prizes:
        prize = _RANDOM.choices(prizes, weights=[p.weight for p in prizes])[0]
        prizes.remove(prize)
        coupon = _pay_out(actor, prize, member_id, today, ticket.id)
        if coupon is not None:
            ticket.prize_id, ticket.coupon_id = prize.id, coupon.id
            db.session.flush()
            audit.record(actor, "draw.draw", entity=ticket, member_id=member_id, prize=prize.name)
            return ticket
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
    return get_or_404(DrawPrize, prize_id, _("No such prize."), code="draw_prize_not_found")


def gift_preview(amount: int, on: date) -> list[dict]:
    """The gift rules a top-up of this amount would reach today, and whether each can be given
    ("in_stock"; if not, "reason" as in gifts_for_topup)."""
    previews = []
    for r in _running_rules(amount, on):
        reason = _type_unavailable(r.definition) or (None if r.stock_left > 0 else "out_of_stock")
        previews.append({"rule": r.name, "coupon": r.definition.name, "in_stock": reason is None, "reason": reason})
    return previews
