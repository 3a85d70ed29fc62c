"""Stored value: top-ups with bonus tiers, payments split between principal and bonus,
refunds, reversals and the payment PIN.

Concurrency: every operation first takes the member's lock (core/locks.py gives the
order), then both accounts (principal, then bonus) before any balance is read for a
decision, and every decrement is a conditional `UPDATE … WHERE balance >= :x`. PIN tries
are judged and counted under the member's lock too, so parallel wrong tries are counted
one after another and the fifth locks the wallet for every later one.
"""
import logging
from datetime import date, datetime
from decimal import Decimal
from functools import cache

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..core import audit, ledger, locks, reasons
from ..core.actor import Actor
from ..core.money import format_fen, round_fen
from ..core.rows import insert_rows, loaded
from ..core.timeutil import local_today, utcnow
from ..coupons import service as coupons
from ..errors import Conflict, DomainError, Invalid, NotFound
from ..extensions import db
from ..members import levels
from ..members import merge_models as merged
from ..members import service as members
from ..members.models import Member
from ..notifications import service as notifications
from ..programme import service as programme
from . import pins
from .models import BonusTier, WalletAccount, WalletEntry, WalletPin, WalletTopup

PIN_TRIES = 5
log = logging.getLogger(__name__)


class InsufficientWallet(Conflict):
    code = "insufficient_wallet"


class WrongPin(Invalid):
    code = "wrong_pin"


class WalletLocked(Conflict):
    code = "wallet_locked"


class PinUnverifiable(DomainError):
    """The PIN was hashed with a pepper this server lacks: a configuration fault, not a wrong
    try, so nothing is counted against the member."""
    status, code = 503, "pin_unverifiable"
    message = _l("The PIN cannot be checked right now (server configuration); ask a manager.")


# Accounts ------------------------------------------------------------------------------

def _accounts(member_id: int) -> tuple[WalletAccount, WalletAccount]:
    """(principal, bonus), created on first use and locked for this transaction: both rows in
    one statement once they exist (the member lock already serialises this member's wallet)."""
    found = {a.kind: a for a in ledger.lock_members_accounts(WalletAccount, member_id)}
    if len(found) == 2:
        return found["principal"], found["bonus"]
    for kind in ("principal", "bonus"):
        if kind not in found:
            try:
                with db.session.begin_nested():
                    found[kind] = WalletAccount(member_id=member_id, kind=kind, balance=0)
                    db.session.add(found[kind])
            except IntegrityError:  # a concurrent first top-up created it
                found[kind] = db.session.scalar(select(WalletAccount).where(
                    WalletAccount.member_id == member_id, WalletAccount.kind == kind))
    return ledger.lock(found["principal"]), ledger.lock(found["bonus"])  # always in this order


def _move(account: WalletAccount, delta: int):
    ledger.move(account, delta, lambda: InsufficientWallet(_("Not enough stored value."), field="wallet_amount"))


def _post(account, actor: Actor, kind: str, amount: int, **kw):
    """Move a balance and write its entry (nothing for a zero amount): two statements."""
    if not amount:
        return
    _move(account, amount)
    insert_rows(WalletEntry, [{"topup_id": None, "checkout_id": None, "reverses_id": None, "store_id": None,
                                      "reason": "", **kw, "account_id": account.id, "kind": kind, "amount": amount,
                                      "staff_id": actor.staff_id}], returning=False)


@cache
def _balances_statement():  # built once: every quote with stored value runs it (core/rows.py says why)
    return select(WalletAccount.kind, WalletAccount.balance).where(WalletAccount.member_id == bindparam("member"))


def balances(member_id: int) -> dict:
    rows = dict(db.session.execute(_balances_statement(), {"member": member_id}).all())
    principal, bonus = rows.get("principal", 0), rows.get("bonus", 0)
    return {"principal": principal, "bonus": bonus, "balance": principal + bonus}


# Top-ups ---------------------------------------------------------------------------------

def tier_for(amount: int, on: date) -> BonusTier | None:
    """The highest active tier this amount reaches on this date."""
    return db.session.scalar(select(BonusTier).where(
        BonusTier.active.is_(True), BonusTier.min_amount <= amount,
        or_(BonusTier.valid_from.is_(None), BonusTier.valid_from <= on),
        or_(BonusTier.valid_to.is_(None), BonusTier.valid_to >= on)).order_by(BonusTier.min_amount.desc()).limit(1))


def top_up(actor: Actor, member_id: int, *, store, amount: int, payment_method: str,
           at: datetime | None = None) -> tuple[WalletTopup, dict]:
    """Add money to a member's wallet, plus the bonus of the highest tier it reaches (once)."""
    if amount <= 0:
        raise Invalid(_("Top up an amount above zero."), code="invalid_amount", field="amount")
    member = members.find_member_with_card(member_id, lock=True)  # the member lock, then the member read once
    if member is None:
        raise NotFound(_("No such member."), code="member_not_found")
    if member.merged_into_id is not None:  # merged meanwhile: the money goes nowhere rather than to a tombstone
        raise Conflict(_("This member was merged into member %(id)d; top up the survivor.", id=member.merged_into_id),
                       code="member_merged", survivor_id=member.merged_into_id)
    tier = tier_for(amount, at.date() if at else local_today(store.timezone))
    bonus = tier.bonus if tier else 0
    when = at or utcnow()
    row = {"member_id": member_id, "store_id": store.id, "amount": amount, "bonus": bonus,
           "tier_id": tier.id if tier else None, "payment_method": payment_method, "staff_id": actor.staff_id,
           "created_at": when}
    [row["id"]] = insert_rows(WalletTopup, [row])  # a statement, not a unit-of-work flush
    topup = loaded(WalletTopup, row)
    principal, bonus_account = _accounts(member_id)
    _post(principal, actor, "topup", amount, topup_id=topup.id, store_id=store.id, created_at=when)
    _post(bonus_account, actor, "topup", bonus, topup_id=topup.id, store_id=store.id, created_at=when)
    gifts, missed = coupons.gifts_for_topup(actor, member_id, amount, at.date() if at else local_today(store.timezone),
                                            topup.id)
    audit.record(actor, "wallet.top_up", entity=topup, store_id=store.id, member_id=member_id,
                 amount=format_fen(amount), bonus=format_fen(bonus), gifts=[c.code for c in gifts])
    notifications.topped_up(member, topup, store, principal.balance + bonus_account.balance)  # the receipt, once
    levels.upgrade_on_topup(actor, member, at=at)
    return topup, {"principal": principal.balance, "bonus": bonus_account.balance, "gifts": gifts,
                   "gifts_unavailable": missed}


# Payments --------------------------------------------------------------------------------

def split(amount: int, principal: int, bonus: int, mode: str) -> tuple[int, int]:
    """(principal part, bonus part) of a payment; the two always add up to `amount`.

    proportional: bonus part = amount × bonus / (principal + bonus), rounded half-up to
    the fen, then capped by what each balance holds; principal_first: principal, then bonus."""
    if amount > principal + bonus:
        raise InsufficientWallet(_("Not enough stored value: %(balance)s available.",
                                   balance=format_fen(principal + bonus)),
                                 field="wallet_amount", balance=format_fen(principal + bonus))
    if mode == "principal_first":
        from_principal = min(amount, principal)
        return from_principal, amount - from_principal
    from_bonus = min(bonus, round_fen(Decimal(amount) * bonus / (principal + bonus))) if amount else 0
    from_principal = amount - from_bonus
    if from_principal > principal:  # rounding pushed past the principal: take the rest from bonus
        from_principal, from_bonus = principal, amount - principal
    return from_principal, from_bonus


def preview(member_id: int, amount: int) -> tuple[int, int]:
    """The split a payment would have now (for a quote; the payment re-splits under its lock)."""
    b = balances(member_id)
    return split(amount, b["principal"], b["bonus"], programme.get("wallet_spend_mode"))


def authorize_payment(member_id: int, amount: int, pin: str | None):
    """May this member pay `amount` from the wallet now? A locked PIN blocks every payment;
    above the PIN threshold a member who has set a PIN must give it. Call it under the
    member's lock and before the transaction writes anything: a wrong try is committed as
    the request's only effect."""
    if amount <= 0:
        return
    check_pin(member_id, pin, required=amount > programme.get("wallet_pin_threshold"), payment=True)


def pay(actor: Actor, member_id: int, amount: int, *, store, checkout_id: int) -> tuple[int, int]:
    """Pay from the wallet (after `authorize_payment`); returns (principal part, bonus part)."""
    if amount <= 0:
        return 0, 0
    principal, bonus = _accounts(member_id)
    from_principal, from_bonus = split(amount, principal.balance, bonus.balance, programme.get("wallet_spend_mode"))
    _post(principal, actor, "spend", -from_principal, checkout_id=checkout_id, store_id=store.id)
    _post(bonus, actor, "spend", -from_bonus, checkout_id=checkout_id, store_id=store.id)
    notifications.paid(member_id, amount, principal.balance + bonus.balance, store, checkout_id)  # the alert
    return from_principal, from_bonus


def reverse_checkout(actor: Actor, member_id: int, checkout_id: int, *, store, reason: str) -> int:
    """Give back what a checkout took from the wallet, as new entries; returns the amount."""
    # A bill a merged duplicate paid (members/merge.py): its spend entries are on the tombstone's
    # accounts, the money goes back to the survivor's account of the same kind.
    holder = merged.survivor_id(member_id)
    spent = db.session.scalars(select(WalletEntry).join(WalletAccount).where(
        WalletEntry.checkout_id == checkout_id, WalletEntry.kind == "spend",
        WalletAccount.member_id.in_(merged.account_owners(holder)))).all()
    if not spent:
        return 0
    principal, bonus = _accounts(holder)
    by_kind = {"principal": principal, "bonus": bonus}
    for entry in spent:
        _post(by_kind[entry.account.kind], actor, "reversal", -entry.amount, checkout_id=checkout_id,
              reverses_id=entry.id, store_id=store.id, reason=reason)
    return -sum(e.amount for e in spent)


def pay_back_if_anonymised(actor: Actor, member_id: int, *, store, reason: str) -> int:
    """Stored value a void gave back to an anonymised member (PIPL erasure) could never be spent:
    the principal is paid back to the guest at once and the bonus forfeited, as an erasure's
    refund does (`refund` entries, so `crm audit` balances). The caller holds the member lock.
    Returns the principal to hand back (0: not anonymised, or nothing came back)."""
    holder = merged.survivor_id(member_id)
    if not db.session.scalar(select(Member.anonymised_at).where(Member.id == holder)):
        return 0
    principal, bonus = _accounts(holder)
    paid, forfeited = principal.balance, bonus.balance
    _post(principal, actor, "refund", -paid, store_id=store.id, reason=reason)
    _post(bonus, actor, "refund", -forfeited, store_id=store.id, reason=reason)
    if paid or forfeited:
        audit.record(actor, "wallet.refund", entity_type="member", entity_id=holder, store_id=store.id,
                     refunded=format_fen(paid), forfeited=format_fen(forfeited), reason=reason, anonymised=True)
    return paid


def refund(actor: Actor, member_id: int, *, store, reason: str) -> dict:
    """Pay back the unspent principal and forfeit the bonus (manager). The wallet stays open
    at zero, so the member can top up again later."""
    reason = reasons.required(reason, _("Give a reason for the refund."))
    locks.lock_member(member_id)
    principal, bonus = _accounts(member_id)
    if principal.balance == 0 and bonus.balance == 0:
        raise Conflict(_("The wallet is empty; there is nothing to refund."), code="wallet_empty")
    refunded, forfeited = principal.balance, bonus.balance
    _post(principal, actor, "refund", -refunded, store_id=store.id, reason=reason)
    _post(bonus, actor, "refund", -forfeited, store_id=store.id, reason=reason)
    audit.record(actor, "wallet.refund", entity_type="member", entity_id=member_id, store_id=store.id,
                 refunded=format_fen(refunded), forfeited=format_fen(forfeited), reason=reason)
    return {"refunded_principal": refunded, "forfeited_bonus": forfeited}


def forfeit(actor: Actor, member_id: int, *, store, reason: str) -> dict:
    """Write off the whole balance, principal and bonus, without paying anything back (a PIPL
    erasure whose member gave up the money): `refund` entries, the kind a refund's forfeited
    bonus already is, so the liability falls and `crm audit` balances. The caller holds the
    member lock; an empty wallet writes nothing."""
    principal, bonus = _accounts(member_id)
    amounts = {"forfeited_principal": principal.balance, "forfeited_bonus": bonus.balance}
    _post(principal, actor, "refund", -principal.balance, store_id=store.id, reason=reason)
    _post(bonus, actor, "refund", -bonus.balance, store_id=store.id, reason=reason)
    if any(amounts.values()):
        audit.record(actor, "wallet.forfeit", entity_type="member", entity_id=member_id, store_id=store.id,
                     **{k: format_fen(v) for k, v in amounts.items()}, reason=reason)
    return amounts


def transfer_all(actor: Actor, from_member_id: int, to_member_id: int, *, reason: str) -> dict:
    """A merge (members/merge.py; the caller holds both members' locks): the principal and the
    bonus move to the other member's accounts of the same kind as `transfer` entries."""
    if not any(balances(from_member_id)[k] for k in ("principal", "bonus")):
        return {"principal": 0, "bonus": 0}
    giver, taker = _accounts(from_member_id), _accounts(to_member_id)
    moved = {}
    for out, into in zip(giver, taker, strict=True):
        moved[out.kind] = amount = out.balance
        _post(out, actor, "transfer", -amount, reason=reason)
        _post(into, actor, "transfer", amount, reason=reason)
    return moved


def entries_of(member_id: int):
    return (select(WalletEntry).join(WalletEntry.account)
            .where(WalletAccount.member_id == member_id).order_by(WalletEntry.id.desc()))


# PIN -------------------------------------------------------------------------------------

def _pin(member_id: int) -> WalletPin | None:
    return db.session.get(WalletPin, member_id)


def set_pin(actor: Actor, member_id: int, pin: str, current_pin: str | None = None):
    """Set or change the 6-digit payment PIN; changing it needs the current one."""
    # ASCII only: a full-width "１２３４５６" from an IME would never match what a POS keypad sends.
    if not (isinstance(pin, str) and len(pin) == 6 and pin.isascii() and pin.isdigit()):
        raise Invalid(_("The PIN is 6 digits."), code="invalid_pin", field="pin")
    locks.lock_member(member_id)
    from ..members import pipl
    pipl.refuse_if_anonymised(member_id)  # the erasure removed the PIN; none comes back
    row = _pin(member_id)
    if row is not None:
        check_pin(member_id, current_pin, required=True, field="current_pin")
        row.pin_hash, row.failures, row.updated_at = pins.hash_pin(pin), 0, utcnow()
    else:
        db.session.add(WalletPin(member_id=member_id, pin_hash=pins.hash_pin(pin)))
    audit.record(actor, "wallet.pin_set", entity_type="member", entity_id=member_id)


def check_pin(member_id: int, pin: str | None, *, required: bool, field="pin", payment=False):
    """Raise unless the PIN is right (or not needed); the caller holds the member's lock.
    A wrong try is counted in this transaction and kept (the error commits it, nothing else
    having been written); the fifth locks the wallet until a manager unlocks it. A locked
    wallet refuses every payment, PIN or not."""
    # Read afresh (not from this session's memory): the count as the previous try under this lock left it.
    row = db.session.get(WalletPin, member_id, populate_existing=True)
    if row is None:
        return
    if row.locked_at is not None and (required or payment):
        raise WalletLocked(_("Wallet payments are locked after too many wrong PINs; a manager must unlock."),
                           field=field)
    if not required:
        return
    if not pin:
        raise Invalid(_("This payment needs the member's PIN."), code="pin_required", field=field)
    try:
        right, rehash = pins.verify(row.pin_hash, pin)
    except pins.UnknownPepper:
        log.error("PIN of member %s cannot be checked: its pepper is not configured", member_id)
        raise PinUnverifiable(field=field) from None
    if not right:
        left = _count_failure(member_id)
        if left == 0:
            raise WrongPin(_("Wrong PIN. Wallet payments are now locked; a manager must unlock them."),
                           field=field, tries_left=0, locked=True, keep_work=True)
        raise WrongPin(_("Wrong PIN; %(left)d tries left.", left=left), field=field, tries_left=left,
                       keep_work=True)
    if row.failures:
        row.failures = 0
    if rehash:  # made with an old pepper or the former slow hash: moved to the current pepper now
        row.pin_hash, row.updated_at = pins.hash_pin(pin), utcnow()


def _count_failure(member_id: int) -> int:
    """One more wrong try, counted by the database; returns the tries left (0: now locked)."""
    failures = db.session.execute(update(WalletPin).where(WalletPin.member_id == member_id)
                                  .values(failures=WalletPin.failures + 1).returning(WalletPin.failures)).scalar_one()
    if failures >= PIN_TRIES:
        locked = db.session.execute(update(WalletPin).where(WalletPin.member_id == member_id,
                                                            WalletPin.locked_at.is_(None))
                                    .values(locked_at=utcnow())).rowcount
        if locked:
            audit.record(Actor.system("pin"), "wallet.pin_locked", entity_type="member", entity_id=member_id)
    return max(PIN_TRIES - failures, 0)


def unlock_pin(actor: Actor, member_id: int):
    locks.lock_member(member_id)
    row = _pin(member_id)
    if row is None:
        raise NotFound(_("This member has no PIN."), code="no_pin")
    row.failures, row.locked_at = 0, None
    audit.record(actor, "wallet.pin_unlocked", entity_type="member", entity_id=member_id)


def pins_pending_rehash() -> int:
    """PINs stored under an old pepper or the former slow hash (see pins.py, rotation)."""
    return db.session.scalar(select(func.count()).select_from(WalletPin).where(
        WalletPin.pin_hash.not_like(pins.current_prefix() + "%"))) or 0


def pin_state(member_id: int) -> dict:
    row = _pin(member_id)
    return {"pin_set": row is not None, "pin_locked": bool(row and row.locked_at)}


# Tiers, audit, liability -----------------------------------------------------------------

def list_tiers():
    return db.session.scalars(select(BonusTier).order_by(BonusTier.min_amount)).all()


def create_tier(actor: Actor, data: dict) -> BonusTier:
    if data.get("valid_from") and data.get("valid_to") and data["valid_from"] > data["valid_to"]:
        raise Invalid(_("The tier ends before it starts."), code="invalid_dates", field="valid_to")
    tier = BonusTier(**data)
    db.session.add(tier)
    db.session.flush()
    audit.record(actor, "wallet.tier_create", entity=tier, min_amount=tier.min_amount, bonus=tier.bonus)
    return tier


def update_tier(actor: Actor, tier_id: int, data: dict) -> BonusTier:
    tier = db.session.get(BonusTier, tier_id)
    if tier is None:
        raise NotFound(_("No such bonus tier."))
    for field, value in data.items():
        setattr(tier, field, value)
    audit.record(actor, "wallet.tier_update", entity=tier, fields=sorted(data))
    return tier


def audit_mismatches() -> list[str]:
    sums = select(WalletEntry.account_id, func.sum(WalletEntry.amount).label("total")).group_by(
        WalletEntry.account_id).subquery()
    rows = db.session.execute(
        select(WalletAccount.member_id, WalletAccount.kind, WalletAccount.balance, func.coalesce(sums.c.total, 0))
        .outerjoin(sums, sums.c.account_id == WalletAccount.id)
        .where(WalletAccount.balance != func.coalesce(sums.c.total, 0))).all()
    return [f"wallet {kind} of member {m}: balance {b}, entries sum {e}" for m, kind, b, e in rows]


def reversal_mismatches(voided_checkouts) -> list[str]:
    """As for points: every spend of a voided bill is given back exactly once, in full, and
    nothing else is reversed."""
    return ledger.reversal_mismatches(WalletEntry, WalletEntry.amount, "wallet", voided_checkouts,
                                      must_reverse="spend")


def liability() -> dict:
    """Stored value the business owes its guests."""
    rows = dict(db.session.execute(select(WalletAccount.kind, func.coalesce(func.sum(WalletAccount.balance), 0))
                                   .group_by(WalletAccount.kind)).all())
    return {"principal": rows.get("principal", 0), "bonus": rows.get("bonus", 0)}


DEFAULT_TIERS = ((500_000, 60_000), (1_000_000, 150_000))  # docs/rules.md: 5,000 → +600; 10,000 → +1,500


def ensure_default_tiers():
    """A fresh database starts with the default tiers (docs/rules.md) (the migration adds them too)."""
    if db.session.scalar(select(BonusTier.id).limit(1)) is None:
        db.session.add_all(BonusTier(min_amount=m, bonus=b) for m, b in DEFAULT_TIERS)
        db.session.flush()


def top_up_preview(amount: int, on: date) -> dict:
    """What a top-up of this amount would bring today (shown before the cashier confirms)."""
    tier = tier_for(amount, on)
    return {"bonus": tier.bonus if tier else 0, "gifts": coupons.gift_preview(amount, on)}


def balance_column(member_id):
    """A member's stored value (principal plus bonus) as a correlated subquery, for queries over many members."""
    return (select(func.coalesce(func.sum(WalletAccount.balance), 0)).where(WalletAccount.member_id == member_id)
            .scalar_subquery())


def report_figures(start: datetime, end: datetime, before_start: datetime, store_id=None, member_ids=None) -> dict:
    """Top-ups (principal, bonus) in [start, end) and in [before_start, start) at a store (or
    all), and stored value outstanding at `end` for the members a subquery selects."""
    def topups(a, b):
        stmt = select(func.coalesce(func.sum(WalletTopup.amount), 0), func.coalesce(func.sum(WalletTopup.bonus), 0)
                      ).where(WalletTopup.created_at >= a, WalletTopup.created_at < b)
        if store_id is not None:
            stmt = stmt.where(WalletTopup.store_id == store_id)
        return db.session.execute(stmt).one()
    principal, bonus = topups(start, end)
    previous, _bonus = topups(before_start, start)
    owed = (select(WalletAccount.kind, func.coalesce(func.sum(WalletEntry.amount), 0))
            .join(WalletEntry, WalletEntry.account_id == WalletAccount.id)
            .where(WalletEntry.created_at < end).group_by(WalletAccount.kind))
    if member_ids is not None:
        owed = owed.where(WalletAccount.member_id.in_(member_ids))
    outstanding = dict(db.session.execute(owed).all())
    return {"topup_principal": int(principal), "topup_bonus": int(bonus), "topup_principal_before": int(previous),
            "wallet_outstanding_principal": int(outstanding.get("principal", 0)),
            "wallet_outstanding_bonus": int(outstanding.get("bonus", 0))}
