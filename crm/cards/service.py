"""Cards: issue with the card fee, state changes through one transition table, scanning."""
import calendar
from functools import cache

from flask_babel import gettext as _
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from ..core import audit, locks, states
from ..core.actor import Actor
from ..core.money import format_fen
from ..core.timeutil import local_today, utcnow
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..members import merge_models as merged
from ..members import service as members
from ..notifications import service as notifications
from ..programme import service as programme
from ..stores import service as stores
from . import codes
from .models import LIVE, PAYMENT_METHODS, STATUS_LABELS, Card, CardFee

# action -> (states it may start from, state it leads to)
TRANSITIONS = {
    "freeze": ({"active"}, "frozen"),
    "unfreeze": ({"frozen"}, "active"),
    "lost": ({"active", "frozen"}, "lost"),
    "cancel": ({"active", "frozen", "lost"}, "cancelled"),
    "replace": ({"active", "frozen", "lost"}, "replaced"),
}

looks_like_card_no = codes.looks_like_card_no
mistyped_card_no = codes.mistyped_card_no


def check_digit_message() -> str:
    return _("Check digit wrong — mistyped? Check the card number and type it again.")


def card_no_from_code(code: str) -> str | None:
    """The card number a printed card's code, a typed number, a phone code or a legacy
    card's exact number stands for."""
    card_id = codes.dynamic_card_id(code)
    if card_id is not None:
        return db.session.scalar(select(Card.card_no).where(Card.id == card_id))
    return codes.card_no_from_code(code) or legacy_card_no(code)


def legacy_card_no(code: str) -> str | None:
    """The number of the imported legacy card typed or scanned as `code`, exactly as stored;
    None if there is none. Only cards marked legacy answer: a number of our shape with a wrong
    check digit is still a typo unless a legacy system printed exactly that number."""
    number = codes.legacy_card_no(code)
    if number is None:
        return None
    return db.session.scalar(_legacy_statement(), {"value": number})


@cache
def _legacy_statement():  # built once: a scan of a code that is not ours runs it
    return select(Card.card_no).where(Card.card_no == bindparam("value"), Card.legacy.is_(True))
qr_payload = codes.qr_payload


def member_id_for_card_no(card_no: str) -> int | None:
    """The card's member, or the survivor if that member was merged (a tombstone's card keeps working)."""
    from ..members.merge_models import survivor_id
    member_id = db.session.scalar(select(Card.member_id).where(Card.card_no == card_no))
    return survivor_id(member_id) if member_id is not None else None


def get_card(card_no: str) -> Card:
    card = db.session.scalar(select(Card).where(Card.card_no == card_no))
    if card is None:
        raise NotFound(_("No such card."), code="card_not_found")
    return card


def cards_of(member_id: int):
    return db.session.scalars(select(Card).where(Card.member_id == member_id)
                              .order_by(Card.issued_at.desc(), Card.id.desc())).all()


def live_card(member_id: int) -> Card | None:
    return db.session.scalar(select(Card).where(Card.member_id == member_id, Card.status.in_(LIVE)))


def _check_fee(expected: int, fee_paid: int, payment_method: str):
    if fee_paid != expected:
        raise Invalid(_("The fee is %(expected)s; %(paid)s was entered.",
                        expected=format_fen(expected), paid=format_fen(fee_paid)),
                      code="card_fee_mismatch", field="fee_paid", expected=format_fen(expected))
    if not payment_method:
        raise Invalid(_("Choose how the fee was paid."), code="invalid_payment_method", field="payment_method")
    if payment_method not in PAYMENT_METHODS:
        raise Invalid(_("Unknown payment method."), code="invalid_payment_method", field="payment_method")


def _new_card(actor: Actor, member_id: int, store_id: int, replaces: Card | None = None) -> Card:
    card = Card(member_id=member_id, issued_store_id=store_id, issued_by=actor.staff_id,
                replaces=replaces)
    for _attempt in range(5):  # 10^13 numbers: a clash is near impossible, but never a 500
        card.card_no = codes.new_card_no()
        if member_id_for_card_no(card.card_no) is None:
            break
    db.session.add(card)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:  # another desk issued a card to this member at the same moment
        raise Conflict(_("This member already has an active card."), code="card_exists") from None
    return card


def _take_fee(actor, card, store, amount, payment_method, kind):
    db.session.add(CardFee(card_id=card.id, member_id=card.member_id, store_id=store.id,
                           amount=amount, kind=kind, payment_method=payment_method,
                           staff_id=actor.staff_id))


def issue(actor: Actor, member_id: int, *, store_code: str, fee_paid: int, payment_method: str) -> Card:
    """Issue a member's card; the card fee becomes revenue of the issuing store."""
    member = members.get_member(member_id)
    store = stores.get_by_code(store_code, active_only=True)
    locks.lock_member(member.id)
    from ..members import pipl
    pipl.refuse_if_anonymised(member.id)  # an erased member gets no new card
    merged.refuse_if_merged(member.id)  # nor a merged duplicate: its guest's card is the survivor's
    existing = live_card(member.id)
    if existing is not None:
        raise Conflict(_("This member already has an active card; report it lost or replace it."),
                       code="card_exists", card_no=existing.card_no, status=existing.status)
    fee = programme.get("card_fee")
    if fee == 0 and not payment_method:  # nothing taken, nothing to ask (the fee row still records the issue)
        payment_method = "other"
    _check_fee(fee, fee_paid, payment_method)
    card = _new_card(actor, member.id, store.id)
    _take_fee(actor, card, store, fee, payment_method, "issue")
    audit.record(actor, "card.issue", entity=card, store_id=store.id, card_no=card.card_no,
                 member_id=member.id, fee=format_fen(fee))
    notifications.card_issued(member, card, store)  # the welcome message, in this transaction
    return card


def _transition(actor: Actor, card: Card, action: str, reason: str = ""):
    """One conditional UPDATE (core/states.py): of two desks acting on one card at once, the
    second gets 409 `card_state` with the state the first left."""
    previous = card.status
    states.change(card, TRANSITIONS, action, status_changed_at=utcnow(), conflict=lambda found: Conflict(
        _("Not possible for a card that is %(status)s.", status=STATUS_LABELS[found]), code="card_state",
        status=found, action=action))
    audit.record(actor, f"card.{action}", entity=card, card_no=card.card_no,
                 member_id=card.member_id, previous=previous, reason=reason)


def change_state(actor: Actor, card_no: str, action: str, reason: str = "") -> Card:
    """freeze / unfreeze / lost / cancel."""
    if action not in TRANSITIONS or action == "replace":
        raise Invalid(_("Unknown card action."), code="invalid_action")
    card = get_card(card_no)
    locks.lock_member(card.member_id)  # a bill being closed with this card finishes first, or sees it lost
    db.session.refresh(card)  # the state as the lock found it, for the audit row
    _transition(actor, card, action, reason)
    return card


def replace(actor: Actor, card_no: str, *, store_code: str, fee_paid: int, payment_method: str,
            reason: str = "") -> Card:
    """Replace a card (lost, damaged): the old one stops working now; points, stored value and
    history stay on the member, so the new card carries everything."""
    old = get_card(card_no)
    store = stores.get_by_code(store_code, active_only=True)
    fee = programme.get("replacement_fee")
    _check_fee(fee, fee_paid, payment_method)
    locks.lock_member(old.member_id)
    db.session.refresh(old)
    # A merged duplicate's card kept live (its survivor has one) is reported lost, not replaced:
    # a new card on the tombstone would be a second live card of one guest.
    merged.refuse_if_merged(old.member_id)
    _transition(actor, old, "replace", reason)
    db.session.flush()  # the old card leaves the live set before the new one joins it
    card = _new_card(actor, old.member_id, store.id, replaces=old)
    _take_fee(actor, card, store, fee, payment_method, "replace")
    audit.record(actor, "card.issue", entity=card, store_id=store.id, card_no=card.card_no,
                 member_id=card.member_id, replaces=old.card_no, fee=format_fen(fee))
    return card


@cache
def _card_statement(column: str, with_member: bool):  # built once: every scan runs one (core/rows.py says why)
    stmt = select(Card).where(getattr(Card, column) == bindparam("value"))
    return stmt.options(joinedload(Card.member)) if with_member else stmt


def scan(code: str, *, field: str = "code", with_member: bool = False) -> Card:
    """The active card a scanned or typed code stands for (`with_member`: its member read in
    the same query, for a caller that shows them).

    Forged or mistyped codes are 422 `invalid_code`; a real card that is not active
    (frozen, lost, replaced) is 409 `card_not_active` so the cashier knows why. `field`
    names the input the code came from, for the error."""
    card_id = codes.dynamic_card_id(code)
    if card_id is not None and not with_member:
        card = db.session.get(Card, card_id)
    elif card_id is not None:
        card = db.session.scalar(_card_statement("id", True), {"value": card_id})
    else:
        card_no = codes.card_no_from_code(code) or legacy_card_no(code)
        card = db.session.scalar(_card_statement("card_no", with_member), {"value": card_no}) if card_no else None
    return _usable(card, field, code)


def holder(card: Card):
    """The member a card stands for: its own, or the survivor if that member was merged
    (members/merge.py: a duplicate's card kept live on the tombstone keeps working)."""
    member = card.member
    if member is not None and member.merged_into_id is not None:
        return members.get_member(member.merged_into_id)
    return member


def active_card(card_id: int, *, field: str = "code") -> Card:
    """The card with this id if it is still active (the till closes with the card it priced,
    even after a phone code has rotated); the same errors as `scan`."""
    return _usable(db.session.get(Card, card_id), field)


def _usable(card: Card | None, field: str, code: str = "") -> Card:
    if card is None and mistyped_card_no(code):  # a typo, not a stranger: say so
        raise Invalid(check_digit_message(), code="invalid_code", field=field, reason="check_digit")
    if card is None:
        raise Invalid(_("This code is not a valid member card."), code="invalid_code", field=field)
    if card.status != "active":
        raise Conflict(_("This card is %(status)s.", status=STATUS_LABELS[card.status]),
                       code="card_not_active", field=field, status=card.status)
    return card


def birthday_today(member, tz_name: str | None = None) -> bool:
    """True on the member's birthday in the store's time zone (29 Feb -> 28 Feb in common years)."""
    if member.birthday_month is None:
        return False
    today = local_today(tz_name)
    month, day = member.birthday_month, member.birthday_day
    if (month, day) == (2, 29) and not calendar.isleap(today.year):
        day = 28
    return (today.month, today.day) == (month, day)

