"""Checkout: quote a bill, close it (redeem, earn, level up), void it.

One transaction per checkout: the bill, its lines, the points entries and any level
change commit together or not at all.
"""
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

from flask_babel import gettext as _
from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.orm.attributes import set_committed_value

from ..cards import service as cards
from ..catalog import service as catalog
from ..catalog.pricing import PricedBill, price_bill
from ..core import audit, locks, reasons, rows, states
from ..core.actor import Actor
from ..core.lookup import get_or_404
from ..core.money import format_fen
from ..core.timeutil import local_today, utcnow, zone
from ..corporate import service as corporate
from ..coupons import service as coupons
from ..errors import Conflict, Invalid
from ..extensions import db
from ..members import levels, referrals
from ..members import service as members
from ..points import service as points
from ..programme import service as programme
from ..stores import service as stores
from ..wallet import service as wallet
from . import tenders as tendering
from .models import Checkout, CheckoutLine, CheckoutTender

# action -> (states it may start from, state it leads to)
TRANSITIONS = {"void": ({"closed"}, "voided")}


@dataclass
class Quote:
    store: object
    member: object | None
    card: object | None
    bill: PricedBill
    points_redeemed: int
    points_value: int
    due: int
    points_earned: int
    points_available: int | None
    coupon_discount: int = 0
    wallet_paid: int = 0
    wallet_principal: int = 0
    wallet_bonus: int = 0
    coupons: list = field(default_factory=list)  # [(coupon, discount)]
    tenders: list = field(default_factory=list)  # [tenders.Tender], adding up to due + wallet_paid

    # The bill's figures, so a quote reads like a checkout.
    lines = property(lambda self: self.bill.lines)
    list_total = property(lambda self: self.bill.list_total)
    member_total = property(lambda self: self.bill.member_total)
    savings = property(lambda self: self.bill.savings)


def _member_and_card(data, *, lock=False):
    """The bill's member and card. With `lock`, the member is read under the member lock
    (core/locks.py, step 1) and the card checked again as the lock leaves it: the bill is
    then priced with the level, the card's state and the balances as they are now that no
    other operation of this member runs."""
    card = None
    if data.get("card_id"):  # the till's signed reference to the card it priced with (views.py)
        card = cards.active_card(data["card_id"], field="card_code")
    elif data.get("card_code") and data.get("member_id"):
        raise Invalid(_("Send either a card code or a member id, not both."), code="ambiguous_member")
    elif data.get("card_code"):
        card = cards.scan(data["card_code"], field="card_code")
    member_id = card.member_id if card is not None else data.get("member_id")
    if not member_id:
        return None, None
    member = members.find_member_with_card(member_id, lock=lock)
    if member is None:
        raise Invalid(_("No such member."), code="unknown_member", field="member_id")
    if member.merged_into_id is not None:  # a merged duplicate (members/merge.py)
        if card is None:  # named by id: the till must choose the survivor, nothing lands on a tombstone
            raise Conflict(_("This member was merged into member %(id)d.", id=member.merged_into_id),
                           code="member_merged", field="member_id", survivor_id=member.merged_into_id)
        # The duplicate's card (kept live when the survivor had one) keeps working: for the survivor,
        # locked after the tombstone (a tombstone is locked only on its way to its survivor).
        member = members.find_member_with_card(member.merged_into_id, lock=lock)
    if card is None:
        card = member.live_card
        if card is not None and card.status == "frozen":
            raise Conflict(_("This member's card is frozen."), code="card_not_active", status="frozen")
    elif lock and (member.live_card is not card or card.status != "active"):  # changed since the scan
        db.session.refresh(card)
        cards.active_card(card.id, field="card_code")
    return member, card


def price(data: dict, *, at: datetime | None = None, member_and_card=None, closing=False) -> Quote:
    """Price a bill and its points; writes nothing. Raises the same errors a checkout would.
    Prices, validity and promotions are those of the store's local date (of `at` if given)."""
    store = stores.get_by_code(data["store_code"], active_only=True)
    member, card = member_and_card or _member_and_card(data)
    today = at.astimezone(zone(store.timezone)).date() if at else local_today(store.timezone)
    items = catalog.items_for_bill([line["sku"] for line in data["items"]], store, today)
    promos = catalog.promotions_for_bill(store, today, data.get("promotion_codes") or ())
    bill = price_bill([(items[line["sku"].strip().upper()], line["qty"]) for line in data["items"]],
                      level=member.level.code if member else None, promotions=promos,
                      company_discount_bp=corporate.company_discount_bp(member))
    applied = coupons.discounts_for(member.id if member else None, data.get("coupon_codes"), bill.lines,
                                    bill.member_total, today)
    coupon_discount = sum(discount for _coupon, discount in applied)
    payable = bill.member_total - coupon_discount
    redeem = data.get("redeem_points") or 0
    # A bill being closed reads the points only to redeem them (the quote shows them always).
    available = points.available(member.id) if member and (redeem or not closing) else None
    if redeem and member is None:
        raise Invalid(_("Only members can redeem points."), code="redeem_needs_member", field="redeem_points")
    value = redeem * programme.get("point_value")
    if value > payable:
        raise Invalid(_("At most %(max)d points can be redeemed on this bill.",
                        max=payable // programme.get("point_value")),
                      code="redeem_exceeds_bill", field="redeem_points",
                      max_points=payable // programme.get("point_value"))
    if member is not None and redeem and redeem > available:
        raise points.InsufficientPoints(_("Not enough points: %(balance)d available.", balance=available),
                                        field="redeem_points", balance=available, requested=redeem)
    wallet_amount = tendering.wallet_amount(data)
    if wallet_amount and member is None:
        raise Invalid(_("Only members can pay from stored value."), code="wallet_needs_member", field="wallet_amount")
    if wallet_amount > payable - value:
        raise Invalid(_("The stored-value payment is more than the bill: at most %(max)s can be paid "
                        "from stored value.", max=format_fen(payable - value)), code="wallet_exceeds_bill",
                      field="wallet_amount", max=format_fen(payable - value))
    from_principal, from_bonus = wallet.preview(member.id, wallet_amount) if wallet_amount else (0, 0)
    due = payable - value - wallet_amount
    earned = _points_earned(member, due, from_principal, from_bonus)
    settled = tendering.settle(data.get("tenders"), wallet_amount, due)
    if tendering.company_amount(settled):
        corporate.check_signer(member)  # a signer of an active account (the limit is decided at close)
    return Quote(store, member, card, bill, redeem, value, due, earned, available, coupon_discount=coupon_discount,
                 wallet_paid=wallet_amount, wallet_principal=from_principal, wallet_bonus=from_bonus,
                 coupons=applied, tenders=settled)


def _points_earned(member, due, from_principal, from_bonus) -> int:
    """Points are earned on money actually paid: other means plus the wallet's principal
    (and its bonus part only if the programme says so)."""
    if member is None:
        return 0
    eligible = due + from_principal + (from_bonus if programme.get("points_on_wallet_bonus") else 0)
    return points.points_for_spend(eligible, member.level.points_multiplier)


def _joined_at_visit(member, store) -> bool:
    """A member who signed up today at this store and has no bill yet joined at this visit."""
    if member is None or member.store_id != store.id:
        return False
    tz = zone(store.timezone)
    if member.created_at.astimezone(tz).date() != utcnow().astimezone(tz).date():
        return False
    return not db.session.scalar(select(Checkout.id).where(Checkout.member_id == member.id).limit(1))


def rolling_spend(member_id: int, months: int, now: datetime | None = None) -> int:
    """A member's level spend: bills and hotel stays (members/levels.py), so a bill that takes
    bills + stays over a threshold lifts the level as a stay posting would."""
    return levels.rolling_spend(member_id, months, now)


def close(actor: Actor, data: dict, *, at: datetime | None = None) -> Checkout:
    """Close a bill: save it, redeem points (oldest first), earn points on what was paid,
    and move the member up a level if their rolling spend now reaches one.
    `at` backdates the bill (demo history and imports); the API never sets it.

    Locks (core/locks.py): the member first, then the PIN check before anything is written
    (a wrong try is kept even though the bill is not), then coupons, wallet and points."""
    q = price(data, at=at, member_and_card=_member_and_card(data, lock=True), closing=True)
    if q.member is not None:
        if q.wallet_paid:
            wallet.authorize_payment(q.member.id, q.wallet_paid, data.get("pin"))
    checkout = _insert_bill(actor, q, data, at or utcnow())
    signed = tendering.company_amount(q.tenders)
    if signed:  # the company account row: after the member, PIN and checkout rows, before coupons and wallet
        corporate.charge(actor, q.member, signed, checkout_id=checkout.id, store_id=q.store.id,
                         at=checkout.created_at)  # the bill's time: a month end never falls between them
    coupons.redeem([coupon for coupon, _discount in q.coupons], checkout.id)
    final = {}
    if q.wallet_paid:  # split again under the wallet's lock: the balances may have moved since the quote
        final["wallet_principal"], final["wallet_bonus"] = wallet.pay(
            actor, q.member.id, q.wallet_paid, store=q.store, checkout_id=checkout.id)
        final["points_earned"] = _points_earned(q.member, q.due, *final.values())
    if q.member is not None:
        final["points_balance_after"] = points.settle_checkout(
            actor, q.member.id, redeem=q.points_redeemed, earn=final.get("points_earned", q.points_earned),
            store=q.store, checkout_id=checkout.id, at=at)
        _settle_figures(checkout, final)
        draw_from = programme.get("draw_min_spend")
        if draw_from and q.bill.member_total - q.coupon_discount >= draw_from:
            coupons.grant_ticket(q.member.id, checkout.id)
        # The rolling-spend SUM runs only when some higher level has a spend threshold.
        levels.upgrade_for(actor, q.member, spend=lambda: rolling_spend(
            q.member.id, programme.get("level_window_months"), now=at), at=at)
        referrals.on_bill_closed(actor, q.member, checkout)  # the referee's first qualifying bill rewards both
    audit.record(actor, "checkout.close", entity=checkout, store_id=q.store.id, member_id=checkout.member_id,
                 due=checkout.due, points_redeemed=checkout.points_redeemed, points_earned=checkout.points_earned,
                 tenders={t.method: format_fen(t.amount) for t in q.tenders})
    return checkout


def _insert_bill(actor: Actor, q: Quote, data: dict, created_at: datetime) -> Checkout:
    """The bill, its lines and its tenders as three INSERTs (no unit-of-work flush), returned
    as a Checkout of this session exactly as a query would have loaded it."""
    bill = {"store_id": q.store.id, "member_id": q.member.id if q.member else None,
            "card_id": q.card.id if q.card else None, "member_level": q.member.level.code if q.member else None,
            "status": "closed", "covers": data.get("covers"), "segment": data.get("segment"),
            "joined_at_visit": _joined_at_visit(q.member, q.store), "list_total": q.bill.list_total,
            "member_total": q.bill.member_total, "coupon_discount": q.coupon_discount,
            "points_redeemed": q.points_redeemed, "points_value": q.points_value, "wallet_paid": q.wallet_paid,
            "wallet_principal": q.wallet_principal, "wallet_bonus": q.wallet_bonus, "due": q.due,
            "points_earned": q.points_earned, "points_balance_after": None, "staff_id": actor.staff_id,
            "created_at": created_at, "voided_at": None, "voided_by": None, "void_reason": None}
    [bill["id"]] = rows.insert_rows(Checkout, [bill])
    lines = [{"checkout_id": bill["id"], "line_no": i, "sku": line.sku, "name": line.name, "category": line.category,
              "qty": line.qty, "list_price": line.list_price, "unit_price": line.unit_price, "amount": line.amount,
              "promotion": line.promotion} for i, line in enumerate(q.bill.lines, 1)]
    tenders = [{"checkout_id": bill["id"], "method": t.method, "amount": t.amount} for t in q.tenders]
    line_ids = rows.insert_rows(CheckoutLine, lines)
    tender_ids = rows.insert_rows(CheckoutTender, tenders) if tenders else []
    return rows.loaded(
        Checkout, bill, store=q.store, member=q.member, card=q.card,
        lines=[rows.loaded(CheckoutLine, {**row, "id": i}) for row, i in zip(lines, line_ids, strict=True)],
        tenders=[rows.loaded(CheckoutTender, {**row, "id": i}) for row, i in zip(tenders, tender_ids, strict=True)])


def _settle_figures(checkout: Checkout, figures: dict):
    """Write the figures known only once the wallet and points have moved (one UPDATE)."""
    changed = {k: v for k, v in figures.items() if getattr(checkout, k) != v}
    if changed:
        db.session.connection().execute(_figures_statement(tuple(sorted(changed))),
                                        {"bill": checkout.id, **{f"new_{k}": v for k, v in changed.items()}})
        for name, value in changed.items():
            set_committed_value(checkout, name, value)


@cache
def _figures_statement(names: tuple):  # built once per set of figures (core/rows.py says why)
    table = Checkout.__table__
    return (update(table).where(table.c.id == bindparam("bill"))
            .values({name: bindparam(f"new_{name}") for name in names}))


def void(actor: Actor, checkout_id: int, reason: str) -> tuple[Checkout, dict]:
    """Reverse everything a checkout did, with new entries. The status change is one
    conditional UPDATE taken after the member's lock: of two voids at once, one wins and
    the other is 409 `already_voided`, so nothing is given back twice."""
    reason = reasons.required(reason, _("Give a reason for the void."))
    checkout = get_checkout(checkout_id)
    locks.lock_member(checkout.member_id)
    if checkout.member_id is not None and db.session.get_bind().dialect.name == "postgresql":
        # A merge that committed while this waited moved the bill to the survivor: lock that one too.
        before = checkout.member_id
        db.session.refresh(checkout, ["member_id"])
        if checkout.member_id != before:
            locks.lock_member(checkout.member_id)
    states.change(checkout, TRANSITIONS, "void", voided_at=utcnow(), voided_by=actor.staff_id,
                  void_reason=reason,
                  conflict=lambda found: Conflict(_("This checkout is already voided."), code="already_voided",
                                                  status=found))
    result = {"restored": 0, "reclaimed": 0, "written_off": 0, "wallet_restored": 0, "wallet_paid_back": 0,
              "coupons_restored": 0}
    # A bill signed to a company account: the charge goes back (the account row, before coupons and wallet).
    result["company_reversed"] = corporate.reverse_checkout(actor, checkout, reason)
    if checkout.member_id is not None:  # in the lock order of core/locks.py, as close() takes them
        result["coupons_restored"] = coupons.restore_for_checkout(checkout.id, checkout.member_id)
        coupons.cancel_ticket(checkout.id)
        result["wallet_restored"] = wallet.reverse_checkout(actor, checkout.member_id, checkout.id,
                                                            store=checkout.store, reason=reason)
        if result["wallet_restored"]:
            result["wallet_paid_back"] = wallet.pay_back_if_anonymised(actor, checkout.member_id,
                                                                       store=checkout.store, reason=reason)
        result.update(points.reverse_checkout(actor, checkout.member_id, checkout.id, store=checkout.store,
                                              reason=reason))
        referrals.on_bill_voided(actor, checkout, reason)  # a referral reward of this bill is taken back
    audit.record(actor, "checkout.void", entity=checkout, store_id=checkout.store_id, reason=reason,
                 **result)
    return checkout, result


def get_checkout(checkout_id: int) -> Checkout:
    return get_or_404(Checkout, checkout_id, _("No such checkout."), code="checkout_not_found")


def list_checkouts(store_code=None, member_id=None):
    stmt = select(Checkout).order_by(Checkout.id.desc())
    if store_code:
        stmt = stmt.where(Checkout.store_id == stores.get_by_code(store_code).id)
    if member_id:
        stmt = stmt.where(Checkout.member_id == member_id)
    return stmt


def member_visits(since: datetime | None = None):
    """Per member with closed bills: last visit and spend (after coupons) since a time, as a
    subquery (member_id, last_visit, spend) for audience filters."""
    spend = Checkout.member_total - Checkout.coupon_discount
    if since is not None:
        spend = case((Checkout.created_at >= since, spend), else_=0)
    stmt = (select(Checkout.member_id, func.max(Checkout.created_at).label("last_visit"),
                   func.sum(spend).label("spend"))
            .where(Checkout.member_id.is_not(None), Checkout.status == "closed").group_by(Checkout.member_id))
    return stmt.subquery("visits")


def bill_facts():
    """Closed checkouts as report facts: (store_id, at, amount, covers, member_id, joined_at_visit),
    amount being the bill after member prices and coupons (points and stored value are ways to pay)."""
    return select(Checkout.store_id, Checkout.created_at.label("at"),
                  (Checkout.member_total - Checkout.coupon_discount).label("amount"),
                  func.coalesce(Checkout.covers, 0).label("covers"), Checkout.member_id,
                  Checkout.joined_at_visit).where(Checkout.status == "closed")


def audit_mismatches() -> list[str]:
    """Every voided bill has exactly one set of reversals in the points and wallet ledgers,
    and no bill that is not voided has any; every bill's tenders add up to what was paid;
    company accounts balance and match their bills (part of `crm audit`)."""
    voided = select(Checkout.id).where(Checkout.status == "voided")
    return (points.reversal_mismatches(voided) + wallet.reversal_mismatches(voided) + tender_mismatches()
            + corporate.audit_mismatches())  # company accounts: owed = Σ entries; charge = tender, reversed on void


def tender_mismatches() -> list[str]:
    """Bills whose tenders do not add up to due + wallet_paid, or whose stored-value tender
    is not the wallet payment."""
    tendered = (select(CheckoutTender.checkout_id, func.sum(CheckoutTender.amount).label("total"),
                       func.sum(case((CheckoutTender.method == "stored_value", CheckoutTender.amount), else_=0))
                       .label("wallet"))
                .group_by(CheckoutTender.checkout_id).subquery())
    total, from_wallet = func.coalesce(tendered.c.total, 0), func.coalesce(tendered.c.wallet, 0)
    found = db.session.execute(
        select(Checkout.id, Checkout.due + Checkout.wallet_paid, total, Checkout.wallet_paid, from_wallet)
        .outerjoin(tendered, tendered.c.checkout_id == Checkout.id)
        .where((total != Checkout.due + Checkout.wallet_paid) | (from_wallet != Checkout.wallet_paid))
        .order_by(Checkout.id)).all()
    return [f"checkout {cid}: tenders {format_fen(got)} for {format_fen(paid)} paid "
            f"(stored value {format_fen(wallet_got)} for {format_fen(wallet_paid)})"
            for cid, paid, got, wallet_paid, wallet_got in found]
