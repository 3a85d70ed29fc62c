"""Points: earn, redeem, expire, adjust, reverse — every change an immutable entry.

Concurrency: operations of a member run under the member's lock (core/locks.py gives the
order: member, checkout, coupons, wallet, points). Each then locks the account row (an
UPDATE, which PostgreSQL holds until commit; SQLite writers are already serialised by
BEGIN IMMEDIATE), so lots are read and consumed by one transaction at a time. Balances are
then taken with a conditional `UPDATE … WHERE balance >= :x`, so even a bug elsewhere
could not overdraw one.
"""
from datetime import datetime, timezone
from functools import cache

from flask_babel import gettext as _
from sqlalchemy import bindparam, case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from ..core import audit, ledger, locks, reasons
from ..core.actor import Actor
from ..core.rows import insert_rows
from ..core.timeutil import utcnow, zone
from ..errors import Conflict, Invalid
from ..extensions import db
from ..members import merge_models as merged
from ..members.models import Member
from ..notifications import service as notifications
from ..programme import service as programme
from .models import PointsAccount, PointsEntry, PointsLot, PointsLotUse


class InsufficientPoints(Conflict):
    code = "insufficient_points"


def expiry_for(earned_at: datetime, tz_name: str | None = None) -> datetime | None:
    """End of the Nth month after the month of earning (default 12), in the store's time
    zone: points earned any day of March 2026 expire when April 2027 begins there."""
    months = programme.get("points_expiry_months")
    if not months:
        return None
    tz = zone(tz_name)
    local = earned_at.astimezone(tz)
    after = local.year * 12 + (local.month - 1) + months + 1  # the month after the last valid one
    return datetime(after // 12, after % 12 + 1, 1, tzinfo=tz).astimezone(timezone.utc)


def points_for_spend(eligible_fen: int, multiplier) -> int:
    """1 point per full earn unit (default 10 yuan) × points per unit × level multiplier, rounded down."""
    units = max(eligible_fen, 0) // programme.get("points_earn_unit")
    return int(units * programme.get("points_per_unit") * multiplier)


def _account(member_id: int, *, add: int = 0) -> PointsAccount:
    """The member's account, created on first use, and locked for this transaction; `add`
    (not negative) is credited by the same statement when the account exists."""
    found = ledger.lock_members_accounts(PointsAccount, member_id, add=add)
    if found:
        return found[0]
    if add:
        account = _account(member_id)
        ledger.move(account, add, lambda: None)
        return account
    try:
        with db.session.begin_nested():
            account = PointsAccount(member_id=member_id, balance=0)
            db.session.add(account)
    except IntegrityError:  # created by a concurrent transaction a moment ago
        account = db.session.scalar(select(PointsAccount).where(PointsAccount.member_id == member_id))
    return ledger.lock(account)


def _move(account: PointsAccount, delta: int):
    ledger.move(account, delta, lambda: InsufficientPoints(
        _("Not enough points: %(balance)d available.", balance=account.balance),
        balance=account.balance, requested=-delta))


def _entry(account, actor: Actor, kind, points, *, store_id=None, checkout_id=None, reverses_id=None,
           reason="", created_at=None, **details) -> PointsEntry:
    entry = PointsEntry(account_id=account.id, kind=kind, points=points, store_id=store_id,
                        checkout_id=checkout_id, reverses_id=reverses_id, staff_id=actor.staff_id,
                        reason=reason, details=details, created_at=created_at or utcnow())
    db.session.add(entry)
    db.session.flush()
    return entry


def _use(entry_id: int, lot, points):
    lot.remaining += points
    db.session.add(PointsLotUse(entry_id=entry_id, lot_id=lot.id, points=points))


def _open_lots(account) -> list:
    """Lots with points left, oldest expiry first (never-expiring last)."""
    return db.session.scalars(select(PointsLot).where(PointsLot.account_id == account.id, PointsLot.remaining > 0)
                              .order_by(PointsLot.expires_at.is_(None), PointsLot.expires_at, PointsLot.id)).all()


def _take_fifo(account, entry_id: int, points, *, lots=None, first_lot_id=None):
    """Take points from lots, oldest expiry first (a given lot first, for reversals of an earning)."""
    lots = sorted(lots if lots is not None else _open_lots(account), key=lambda lot: lot.id != first_lot_id)
    for lot in lots:
        if points == 0:
            break
        take = min(lot.remaining, points)
        if take:
            _use(entry_id, lot, -take)
            points -= take
    if points:  # balance and lots disagree: refuse rather than write a ledger that cannot balance
        raise Conflict(_("The points ledger is inconsistent; run `crm audit`."), code="ledger_inconsistent")


def _credit(account, actor, kind, points, *, store, earned_at=None, **kw) -> PointsEntry:
    _move(account, points)
    earned_at = earned_at or utcnow()
    entry = _entry(account, actor, kind, points, store_id=store.id if store else None, created_at=earned_at, **kw)
    db.session.add(PointsLot(account_id=account.id, entry_id=entry.id, points=points, remaining=points,
                             earned_at=earned_at, expires_at=expiry_for(earned_at, store.timezone if store else None)))
    return entry


def _expire_due(account, actor: Actor, now: datetime, lots=None) -> int:
    """Expire the account's lots that are due; returns the points expired."""
    if lots is None:
        lots = _open_lots(account)
    total = 0
    for lot in lots:
        if lot.remaining and lot.expires_at is not None and lot.expires_at <= now:
            amount = lot.remaining
            _move(account, -amount)
            entry = _entry(account, actor, "expire", -amount, lot_id=lot.id)
            _use(entry.id, lot, -amount)
            total += amount
    return total


def _lots_to_spend(account, now: datetime, points: int) -> tuple[list, list]:
    """(lots due to expire by now, the live lots that cover `points` oldest expiry first), in
    one query: a running total of the live points before each lot stops the read as soon as
    `points` are covered (every lot holds at least one point, so at most `points` live lots)."""
    lots = db.session.scalars(_lots_to_spend_statement(), {"account": account.id, "now": now, "points": points}).all()
    due = [x for x in lots if x.expires_at is not None and x.expires_at <= now]
    return due, [x for x in lots if x not in due]


@cache
def _lots_to_spend_statement():  # built once: every redeeming bill runs it (core/rows.py says why)
    order = (PointsLot.expires_at.is_(None), PointsLot.expires_at, PointsLot.id)
    live = lambda lot: lot.expires_at.is_(None) | (lot.expires_at > bindparam("now"))  # noqa: E731
    before = func.sum(case((live(PointsLot), PointsLot.remaining), else_=0)).over(order_by=order, rows=(None, -1))
    ranked = (select(PointsLot, func.coalesce(before, 0).label("live_before"))
              .where(PointsLot.account_id == bindparam("account"), PointsLot.remaining > 0).subquery())
    lot = aliased(PointsLot, ranked)
    return (select(lot).where(~live(lot) | (ranked.c.live_before < bindparam("points")))
            .order_by(lot.expires_at.is_(None), lot.expires_at, lot.id))


def _spend(account, actor, kind, points, **kw) -> PointsEntry:
    """Expire what is due, then take points oldest first; 409 `insufficient_points` if short."""
    now = utcnow()
    due, live = _lots_to_spend(account, now, points)
    _expire_due(account, actor, now, due)
    _move(account, -points)
    entry = _entry(account, actor, kind, -points, **kw)
    _take_fifo(account, entry.id, points, lots=live)
    return entry


def settle_checkout(actor: Actor, member_id: int, *, redeem: int, earn: int, store, checkout_id,
                    at: datetime | None = None) -> int:
    """A checkout's points in one lock: spend `redeem` (oldest first), then credit `earn`,
    which is usable from the next checkout on. Returns the balance after."""
    if redeem < 0 or earn < 0:
        raise Invalid(_("Redeem a whole number of points above zero."), code="invalid_points", field="redeem_points")
    # Earning only (most bills): the account is locked and credited by one statement.
    account = _account(member_id, add=0 if redeem else earn)
    if not redeem and not earn:
        return account.balance
    now = utcnow()
    due, live = _lots_to_spend(account, now, redeem) if redeem else ([], [])
    _expire_due(account, actor, now, due)
    if redeem:  # the balance moves once, by the net, on the condition that it holds what is redeemed
        ledger.move(account, earn - redeem, lambda: InsufficientPoints(
            _("Not enough points: %(balance)d available.", balance=account.balance),
            balance=account.balance, requested=redeem), need=redeem)
    earned_at = at or now
    entry = {"account_id": account.id, "store_id": store.id, "checkout_id": checkout_id, "reverses_id": None,
             "staff_id": actor.staff_id, "reason": "", "details": {}}
    entries = ([{**entry, "kind": "redeem", "points": -redeem, "created_at": now}] if redeem else []) + \
              ([{**entry, "kind": "earn", "points": earn, "created_at": earned_at}] if earn else [])
    # Statements, not unit-of-work objects: both entries in one INSERT … RETURNING, then the lot.
    ids = insert_rows(PointsEntry, entries)
    if redeem:
        _take_fifo(account, ids[0], redeem, lots=live)
    if earn:
        insert_rows(PointsLot, [{"account_id": account.id, "entry_id": ids[-1], "points": earn, "remaining": earn,
                                 "earned_at": earned_at, "expires_at": expiry_for(earned_at, store.timezone)}],
                    returning=False)
        notifications.points_earned(member_id, earn, account.balance, store, checkout_id)  # off by default
    return account.balance


def adjust(actor: Actor, member_id: int, points: int, reason: str, *, store=None) -> PointsEntry:
    """A manager's correction, with a reason; never below zero."""
    reason = reasons.required(reason, _("Give a reason for the adjustment."))
    if points == 0:
        raise Invalid(_("Adjust by a whole number of points other than zero."), code="invalid_points", field="points")
    locks.lock_member(member_id)
    merged.refuse_if_merged(member_id)
    from ..members import pipl
    pipl.refuse_if_anonymised(member_id)
    account = _account(member_id)
    if points > 0:
        entry = _credit(account, actor, "adjust", points, store=store, reason=reason)
    else:
        entry = _spend(account, actor, "adjust", -points, store_id=store.id if store else None, reason=reason)
    audit.record(actor, "points.adjust", entity=entry, store_id=store.id if store else None, member_id=member_id,
                 points=points, reason=reason, balance=account.balance)
    return entry


def grant(actor: Actor, member_id: int, points: int, reason: str, *, expires_at: datetime | None = None,
          **details) -> int:
    """Credit points as an `adjust` entry with its own lot, expiring at `expires_at` (the
    programme's rule if None); for bulk grants, which audit per job. The caller holds the
    member's lock (core/locks.py). Statements, not objects (a job makes thousands): the account
    is locked and credited by one, the entry and its lot written by one each. Returns the entry's id."""
    account = _account(member_id, add=points)
    now = utcnow()
    entry_id = insert_rows(PointsEntry, [{
        "account_id": account.id, "kind": "adjust", "points": points, "store_id": None, "checkout_id": None,
        "reverses_id": None, "staff_id": actor.staff_id, "reason": reason, "details": details, "created_at": now}])[0]
    expires_at = expires_at if expires_at is not None else expiry_for(now)
    insert_rows(PointsLot, [{"account_id": account.id, "entry_id": entry_id, "points": points, "remaining": points,
                             "earned_at": now, "expires_at": expires_at}], returning=False)
    return entry_id


def take_back(actor: Actor, entry_id: int, reason: str, **details) -> tuple[PointsEntry | None, int]:
    """Take a credited entry's points back as a negative `adjust` (the entry's own lot first),
    as a void takes back earned points: what the member already spent is not taken and is
    returned as the shortfall. (entry or None if nothing was left, shortfall). The caller holds
    the member's lock."""
    granted = db.session.get(PointsEntry, entry_id)
    account = _account(db.session.get(PointsAccount, granted.account_id).member_id)
    take = min(granted.points, account.balance)
    shortfall = granted.points - take
    if not take:
        return None, shortfall
    _move(account, -take)
    entry = _entry(account, actor, "adjust", -take, reason=reason, takes_back=entry_id, written_off=shortfall,
                   **details)
    lot_id = db.session.scalar(select(PointsLot.id).where(PointsLot.entry_id == entry_id))
    _take_fifo(account, entry.id, take, first_lot_id=lot_id)
    return entry, shortfall


def earn_stay(actor: Actor, member_id: int, points: int, *, store, **details) -> int:
    """Credit a hotel stay's points (crm/stays) as a `stay` entry with its own lot, usable at
    once and expiring as a bill's earning does. The caller holds the member's lock. Returns the
    entry's id."""
    entry = _credit(_account(member_id), actor, "stay", points, store=store, **details)
    return entry.id


def undo_stay(actor: Actor, holder_id: int, entry_id: int, *, store, **details) -> tuple[int, int, int | None]:
    """Take a stay's `stay` entry back from `holder_id`'s account (the earner, or the survivor a
    merge moved its points to) as a `stay_undo` entry, its own lot first: what the member has
    already spent is not taken but written off (`written_off`), as a void does with earned points.
    The caller holds the holder's lock. Returns (taken, written off, the undo entry's id or None)."""
    earned = db.session.get(PointsEntry, entry_id)
    account = _account(holder_id)
    take = min(earned.points, account.balance)
    if not take:
        return 0, earned.points, None
    _move(account, -take)
    entry = _entry(account, actor, "stay_undo", -take, store_id=store.id if store else None, undoes=entry_id,
                   written_off=earned.points - take, **details)
    lot_id = db.session.scalar(select(PointsLot.id).where(PointsLot.entry_id == entry_id,
                                                          PointsLot.account_id == account.id))
    _take_fifo(account, entry.id, take, first_lot_id=lot_id)
    return take, earned.points - take, entry.id


def forfeit(actor: Actor, member_id: int, reason: str) -> int:
    """Write off every point the member holds (a PIPL erasure): one `adjust` entry taking all
    open lots, so balance == Σ entries still holds. The caller holds the member lock.
    Returns the points forfeited (0: nothing written)."""
    account = _account(member_id)
    amount = account.balance
    if not amount:
        return 0
    _move(account, -amount)
    entry = _entry(account, actor, "adjust", -amount, reason=reason, forfeit=True)
    _take_fifo(account, entry.id, amount)
    audit.record(actor, "points.forfeit", entity=entry, member_id=member_id, points=-amount, reason=reason)
    return amount


def reverse_checkout(actor: Actor, member_id: int, checkout_id: int, *, store, reason: str) -> dict:
    """Undo a checkout's points with new entries.

    Redeemed points go back into the lots they came from. Earned points are taken back
    from the member's balance (the earning's own lot first); if the member has already
    spent them, only what the balance holds is taken and the rest is written off and
    recorded as `written_off`: a member's balance never goes below zero."""
    # A merged member's bill (members/merge.py): its entries stay on the tombstone's account, but
    # the value now lives with the survivor, who is given back and taken from. Entries already
    # reversed (the referee's bill void reversed a referrer merged into the referee) are skipped.
    holder = merged.survivor_id(member_id)
    rev = aliased(PointsEntry)
    entries = db.session.scalars(select(PointsEntry).join(PointsAccount)
                                 .where(PointsEntry.checkout_id == checkout_id,
                                        PointsAccount.member_id.in_(merged.account_owners(holder)),
                                        PointsEntry.kind.in_(("earn", "redeem")),
                                        ~select(rev.id).where(rev.reverses_id == PointsEntry.id).exists())).all()
    result = {"restored": 0, "reclaimed": 0, "written_off": 0}
    if not entries:
        return result
    account = _account(holder)
    for entry in sorted(entries, key=lambda e: e.kind != "redeem"):  # restore before reclaiming
        if entry.kind == "redeem":
            # Back into the lots it came from (on the tombstone's account if the bill was a duplicate's,
            # whose restored lots then move on to the survivor with their expiry).
            own = account if entry.account_id == account.id else ledger.lock(db.session.get(PointsAccount,
                                                                                            entry.account_id))
            _move(own, -entry.points)
            reversal = _entry(own, actor, "reversal", -entry.points, store_id=store.id, checkout_id=checkout_id,
                              reverses_id=entry.id, reason=reason)
            uses = db.session.scalars(select(PointsLotUse).where(PointsLotUse.entry_id == entry.id)).all()
            lots = [db.session.get(PointsLot, use.lot_id) for use in uses]
            for use, lot in zip(uses, lots, strict=True):
                _use(reversal.id, lot, -use.points)
            if own is not account:
                _transfer(actor, own, account, lots, reason=reason, for_checkout=checkout_id)
            result["restored"] += -entry.points
        else:
            take = min(entry.points, account.balance)
            if take:
                _move(account, -take)
                reversal = _entry(account, actor, "reversal", -take, store_id=store.id, checkout_id=checkout_id,
                                  reverses_id=entry.id, reason=reason, written_off=entry.points - take)
                lot_id = db.session.scalar(select(PointsLot.id).where(PointsLot.entry_id == entry.id))
                _take_fifo(account, reversal.id, take, first_lot_id=lot_id)
            result["reclaimed"] += take
            result["written_off"] += entry.points - take
    # Points given back to an anonymised member could never be used again: forfeited, as the
    # erasure forfeited the rest.
    if account.balance > 0 and db.session.scalar(select(Member.anonymised_at).where(Member.id == holder)):
        forfeit(actor, holder, reason)
    return result


def _transfer(actor: Actor, giver, taker, lots, **kw) -> dict:
    """Move what is left of `lots` from one account to another as `transfer` entries, lot by
    lot: −remaining on the giver's lot, + the same on a new lot of the taker with the same
    earning date and expiry (nothing expires sooner or later for having moved)."""
    moved = {"points": 0, "lots": {}}
    for lot in lots:
        amount = lot.remaining
        if not amount:
            continue
        _move(giver, -amount)
        out = _entry(giver, actor, "transfer", -amount, lot_id=lot.id, to_member_id=taker.member_id, **kw)
        _use(out.id, lot, -amount)
        _move(taker, amount)
        into = _entry(taker, actor, "transfer", amount, from_lot_id=lot.id, from_member_id=giver.member_id, **kw)
        new = PointsLot(account_id=taker.id, entry_id=into.id, points=amount, remaining=amount,
                        earned_at=lot.earned_at, expires_at=lot.expires_at)
        db.session.add(new)
        db.session.flush()
        moved["points"] += amount
        moved["lots"][str(lot.id)] = new.id
    return moved


def transfer_all(actor: Actor, from_member_id: int, to_member_id: int, *, reason: str) -> dict:
    """A merge (members/merge.py; the caller holds both members' locks): every lot of one
    member with points left moves to the other. The two accounts are locked highest id first,
    as the nightly expiry locks accounts, so the two cannot wait on each other in a cycle.
    Returns {"points": total moved, "lots": {giver's lot id: taker's new lot id}}."""
    ids = dict(db.session.execute(select(PointsAccount.member_id, PointsAccount.id).where(
        PointsAccount.member_id.in_((from_member_id, to_member_id)))).all())
    if from_member_id not in ids:
        return {"points": 0, "lots": {}}
    # An account still to be created gets the newest (highest) id: it comes first.
    order = sorted((from_member_id, to_member_id), key=lambda m: -ids.get(m, 1 << 62))
    accounts = {m: _account(m) for m in order}
    giver, taker = accounts[from_member_id], accounts[to_member_id]
    return _transfer(actor, giver, taker, _open_lots(giver), reason=reason)


def balance(member_id: int) -> int:
    return db.session.scalar(select(PointsAccount.balance).where(PointsAccount.member_id == member_id)) or 0


def available(member_id: int, now: datetime | None = None) -> int:
    """Balance less lots that are past expiry but not yet expired by the job (one query)."""
    return db.session.scalar(_available_statement(), {"member": member_id, "now": now or utcnow()}) or 0


@cache
def _available_statement():  # built once: every quote of a member runs it (core/rows.py says why)
    due = (select(func.coalesce(func.sum(PointsLot.remaining), 0)).where(
        PointsLot.account_id == PointsAccount.id, PointsLot.expires_at <= bindparam("now")).scalar_subquery())
    return select(PointsAccount.balance - due).where(PointsAccount.member_id == bindparam("member"))


def open_lots(member_id: int):
    return db.session.scalars(select(PointsLot).join(PointsAccount).where(
        PointsAccount.member_id == member_id, PointsLot.remaining > 0)
        .order_by(PointsLot.expires_at.is_(None), PointsLot.expires_at, PointsLot.id)).all()


def entries_of(member_id: int):
    return (select(PointsEntry).join(PointsAccount).where(PointsAccount.member_id == member_id)
            .order_by(PointsEntry.id.desc()))


def expire_all(actor: Actor, now: datetime | None = None, batch: int = 200) -> tuple[int, int]:
    """Expire every due lot (the `crm expire-points` job); committing per batch of accounts.
    Running it again expires nothing more. Returns (accounts touched, points expired)."""
    now = now or utcnow()
    touched = expired = 0
    while True:
        # Highest account first: a referral reward waits from a referee's account towards its
        # (older, smaller) referrer's, so locking downwards never closes a cycle with one (core/locks.py).
        ids = db.session.scalars(select(PointsLot.account_id).where(
            PointsLot.remaining > 0, PointsLot.expires_at <= now).distinct()
            .order_by(PointsLot.account_id.desc()).limit(batch)).all()
        if not ids:
            return touched, expired
        for account_id in ids:
            account = _account(db.session.get(PointsAccount, account_id).member_id)
            expired += _expire_due(account, actor, now)
            touched += 1
        db.session.commit()


def audit_mismatches() -> list[str]:
    """Every account whose balance differs from its entries or its lots, and every lot whose
    remaining differs from its points plus uses. Aggregated in SQL."""
    entries = (select(PointsEntry.account_id, func.sum(PointsEntry.points).label("total"))
               .group_by(PointsEntry.account_id).subquery())
    lots = (select(PointsLot.account_id, func.sum(PointsLot.remaining).label("total"))
            .group_by(PointsLot.account_id).subquery())
    rows = db.session.execute(
        select(PointsAccount.member_id, PointsAccount.balance, func.coalesce(entries.c.total, 0),
               func.coalesce(lots.c.total, 0))
        .outerjoin(entries, entries.c.account_id == PointsAccount.id)
        .outerjoin(lots, lots.c.account_id == PointsAccount.id)
        .where((PointsAccount.balance != func.coalesce(entries.c.total, 0))
               | (PointsAccount.balance != func.coalesce(lots.c.total, 0)))).all()
    problems = [f"points account of member {m}: balance {b}, entries sum {e}, lots remaining {lr}"
                for m, b, e, lr in rows]
    uses = select(PointsLotUse.lot_id, func.sum(PointsLotUse.points).label("total")).group_by(
        PointsLotUse.lot_id).subquery()
    bad_lots = db.session.execute(
        select(PointsLot.id, PointsLot.points, PointsLot.remaining, func.coalesce(uses.c.total, 0))
        .outerjoin(uses, uses.c.lot_id == PointsLot.id)
        .where(PointsLot.remaining != PointsLot.points + func.coalesce(uses.c.total, 0))).all()
    problems += [f"points lot {i}: {p} earned, uses {u}, but {r} remaining" for i, p, r, u in bad_lots]
    return problems


def reversal_mismatches(voided_checkouts) -> list[str]:
    """Reversals that break the void rules, given a select of the voided checkouts' ids: a
    reversal that names no entry, an entry reversed twice, a reversal of a bill that is
    not voided or of the wrong size, a voided bill whose redeemed points were not given back."""
    return ledger.reversal_mismatches(PointsEntry, PointsEntry.points, "points", voided_checkouts,
                                      must_reverse="redeem", may_shrink="earn")


def outstanding() -> int:
    """All points members hold (a liability at the redemption value)."""
    return db.session.scalar(select(func.coalesce(func.sum(PointsAccount.balance), 0))) or 0


def balance_column(member_id):
    """A member's points balance as a correlated subquery, for queries over many members."""
    return (select(func.coalesce(func.max(PointsAccount.balance), 0)).where(PointsAccount.member_id == member_id)
            .scalar_subquery())


def report_figures(start: datetime, end: datetime, member_ids=None) -> dict:
    """Points earned, redeemed and expired in [start, end) and outstanding at `end`, for the
    members a subquery selects (all members if None). One aggregate query."""
    in_period = (PointsEntry.created_at >= start) & (PointsEntry.created_at < end)
    # Points earned: by bills and by hotel stays (crm/stays); takings back are not netted, as voids' are not.
    stmt = (select(*(func.coalesce(func.sum(case((in_period & PointsEntry.kind.in_(kinds), PointsEntry.points),
                                                  else_=0)), 0)
                     for kinds in (("earn", "stay"), ("redeem",), ("expire",))),
                   func.coalesce(func.sum(case((PointsEntry.created_at < end, PointsEntry.points), else_=0)), 0))
            .select_from(PointsEntry).join(PointsAccount, PointsAccount.id == PointsEntry.account_id))
    if member_ids is not None:
        stmt = stmt.where(PointsAccount.member_id.in_(member_ids))
    earned, redeemed, expired, outstanding = db.session.execute(stmt).one()
    return {"points_earned": int(earned), "points_redeemed": -int(redeemed), "points_expired": -int(expired),
            "points_outstanding": int(outstanding)}
