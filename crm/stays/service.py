"""Hotel stays in the loyalty programme: what a member's stay earns, and taking it back.

A stay reaches us from the PMS either in a CSV import (reports/imports.py, a chunk at a time)
or posted at check-out (`POST /api/v1/stays`, `post_stay`); both write the stay row first (an
upsert by store and stay number) and then call `settle` for it, the one place that decides
what the stay earns:

- a stay of a member earns points on its room revenue plus the F&B posted to the room, at the
  programme's rate for its segment (`stay_points_per_unit`: points per full `points_earn_unit`,
  by default the bills' `points_per_unit` for every segment but complimentary, house use and
  long stay, which earn 0) times the member's level multiplier, rounded down; a complimentary
  or cancelled stay earns nothing, nor does an anonymised member's (a merged member's goes to
  the survivor). The points are credited at posting as a `stay` entry with its own lot, usable
  at once (from the next bill or stay) and expiring as a bill's earning does;
- its revenue (room + F&B, unless cancelled or complimentary) counts toward level spend over the
  level window, by departure date (members/levels.py `_spends`), and posting it runs the same
  upgrade check a bill's close does, so crossing a threshold lifts the level at once;
- a later import or posting of the same stay is compared with what it earned (`StayEarning`):
  unchanged, nothing is written; otherwise (revenue, segment, member changed, or cancelled) the
  old earning is taken back by a `stay_undo` entry — what the member already spent is written
  off and reported as the shortfall, as a void does — and the stay earns anew.

Locks (core/locks.py): the stay rows first (the upsert holds them to commit, so two postings or
imports of one stay queue there and the second sees what the first earned), then the members
involved (the earner and the stay's member now), lowest id first, in one statement, then their
points accounts highest id first, as a bulk job locks a chunk. Only stays whose earning must
change take member locks.
"""
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm.attributes import set_committed_value

from ..core import audit, locks
from ..core.actor import Actor
from ..core.money import MAX_AMOUNT, format_fen
from ..core.phones import normalise_mobile
from ..core.segments import SEGMENT_KEYS
from ..core.timeutil import utcnow
from ..errors import Conflict, Invalid
from ..extensions import db
from ..members import levels
from ..members.models import Member, MemberLevel
from ..points import service as points
from ..programme import service as programme
from ..reports.models import Stay
from ..stores.models import Store
from .models import StayEarning

RATE_RULE = "stay_points_per_unit"
DEFAULT_RATES = {"complimentary": 0, "house_use": 0, "long_stay": 0}  # the other segments: points_per_unit


# Rates ------------------------------------------------------------------------------------

def rate_for(segment: str | None) -> int:
    """Points per full `points_earn_unit` of a stay of this segment (before the level multiplier)."""
    return programme.get(RATE_RULE).get(segment or "", programme.get("points_per_unit"))


def rates() -> dict:
    """Every segment's rate as it applies now: {segment: points per earn unit}."""
    return {segment: rate_for(segment) for segment in SEGMENT_KEYS}


def set_rates(actor: Actor, changes: dict) -> dict:
    """Change some segments' rates (the others keep theirs); validated as a programme rule."""
    programme.update(actor, {RATE_RULE: {**programme.get(RATE_RULE), **changes}})
    return rates()


def points_for_stay(eligible_fen: int, segment: str | None, multiplier) -> int:
    """Full earn units of the stay's revenue × the segment's rate × the level multiplier, rounded down:
    3 nights at 688.00 = 2064.00 is 206 units of 10.00, so 206 points at rate 1 and multiplier 1."""
    units = max(eligible_fen, 0) // programme.get("points_earn_unit")
    return int(units * rate_for(segment) * multiplier)


MAX_REVENUE_FEN = int(MAX_AMOUNT * 100) - 1  # room + F&B of one stay: what one amount may be (19,999,999.99)


def revenue_problem(room_fen: int | None, fb_fen: int | None) -> str | None:
    """Why room + F&B cannot be one stay's revenue (their sum is kept as one 32-bit figure), or None."""
    if room_fen is not None and fb_fen is not None and room_fen + fb_fen > MAX_REVENUE_FEN:
        return _("Room and F&B revenue together are more than %(max)s.", max=format_fen(MAX_REVENUE_FEN))
    return None


def earns_revenue(stay) -> int:
    """What of a stay counts (points and level spend): room + F&B posted to the room, unless the
    stay is cancelled or complimentary."""
    if stay.cancelled or stay.complimentary:
        return 0
    return stay.room_revenue + stay.fb_revenue


# Settling ---------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What settling one stay did."""
    member_id: int | None = None  # who holds the stay's points now (None: nobody)
    earned: int = 0
    reversed: int = 0
    shortfall: int = 0
    changed: bool = False

    def as_json(self) -> dict:
        return {"earned": self.earned, "reversed": self.reversed, "shortfall": self.shortfall,
                "changed": self.changed}


@dataclass
class _Who:
    survivor: int
    anonymised: bool
    multiplier: object


def _members(ids) -> dict[int, _Who]:
    """{member id: who}: its survivor (itself unless merged), whether erased, and the survivor's multiplier."""
    ids = {i for i in ids if i is not None}
    found = _member_rows(ids) if ids else {}
    survivors = {into for into, _erased, _mult in found.values() if into and into not in found}
    if survivors:
        found.update(_member_rows(survivors))
    out = {}
    for member_id, (into, erased, mult) in found.items():
        if into:
            erased, mult = found[into][1], found[into][2]
        out[member_id] = _Who(into or member_id, erased is not None, mult)
    return out


def _member_rows(ids) -> dict:
    """{id: (merged into, anonymised at, level multiplier)}, as committed now (read after any lock)."""
    return {i: (into, erased, mult) for i, into, erased, mult in db.session.execute(
        select(Member.id, Member.merged_into_id, Member.anonymised_at, MemberLevel.points_multiplier)
        .join(MemberLevel, MemberLevel.id == Member.level_id).where(Member.id.in_(ids)))}


def _target(stay, who: dict) -> tuple[int | None, int, str | None]:
    """(member who should hold the stay's points, eligible fen, segment) as the stay is now."""
    found = who.get(stay.member_id)
    eligible = earns_revenue(stay) if found is not None and not found.anonymised else 0
    # Nobody earns: the segment is beside the point (a guest's stay re-sent with another segment
    # is no change to settle).
    return (found.survivor, eligible, stay.segment) if eligible else (None, 0, None)


def _basis(earning, who: dict) -> tuple[int | None, int, str | None] | None:
    """What the stay earned on last time, its earner as their survivor now; None if never settled."""
    if earning is None:
        return None
    found = who.get(earning.member_id)
    if found is None or not earning.eligible:
        return None, 0, None
    return found.survivor, earning.eligible, earning.segment


def _involved(pairs, who) -> set[int]:
    ids = set()
    for stay, earning in pairs:
        for member_id in (stay.member_id, earning.member_id if earning else None):
            if member_id in who:
                ids.add(member_id)
                ids.add(who[member_id].survivor)
    return ids


def _lock(member_ids):
    """The members' locks, lowest id first, then their points accounts highest id first: as a bulk
    job locks a chunk (crm/bulk/service.py), so neither a merge nor the nightly expiry (accounts
    only, highest first) can wait on this in a cycle."""
    locks.lock_members(member_ids, points_accounts=True)


def _pairs(where) -> list:
    return db.session.execute(select(Stay, StayEarning).outerjoin(StayEarning, StayEarning.stay_id == Stay.id)
                              .where(where).order_by(Stay.id).execution_options(populate_existing=True)).all()


def settle(actor: Actor, stay_ids) -> dict[int, Outcome]:
    """Bring what these stays (written in this transaction, so their rows are locked) have earned
    in line with the stays as they are now: {stay id: outcome}. Stays whose earning stands are
    read and left alone (one query for all of them)."""
    stay_ids = list(stay_ids)
    out, pending, involved = {}, [], set()
    for part in range(0, len(stay_ids), 1000):
        pairs = _pairs(Stay.id.in_(stay_ids[part:part + 1000]))
        who = _members({s.member_id for s, _e in pairs} | {e.member_id for _s, e in pairs if e})
        _to_survivors(pairs, who)
        for stay, earning in pairs:
            target, basis = _target(stay, who), _basis(earning, who)
            if basis == target or (basis is None and target[0] is None):
                out[stay.id] = Outcome(member_id=target[0])
            else:
                pending.append((stay, earning))
                involved |= _involved([(stay, earning)], who)
    if not pending:
        return out
    _lock(involved)
    # Under the members' locks: their merges, erasures and levels as they are now.
    who = _members({s.member_id for s, _e in pending} | {e.member_id for _s, e in pending if e})
    lifted = set()
    for stay, earning in pending:
        outcome = out[stay.id] = _settle_one(actor, stay, earning, who)
        if outcome.member_id and _target(stay, who)[1]:
            lifted.add(outcome.member_id)
    for member_id in sorted(lifted):
        upgrade(actor, member_id)
    return out


def _to_survivors(pairs, who):
    """Stays written naming a member merged meanwhile (an import job reads each mobile once per
    file; a posting names its member before it writes) are the survivor's, as a merge moves them:
    else the survivor's level spend, stay count and member page never see them. The rows are
    this transaction's (locked); a merge is final, so no member lock is needed to read it."""
    moved = {}
    for stay, _earning in pairs:
        found = who.get(stay.member_id)
        if found is not None and found.survivor != stay.member_id:
            moved.setdefault(found.survivor, []).append(stay)
    for survivor, stays in moved.items():
        db.session.execute(update(Stay).where(Stay.id.in_([s.id for s in stays])).values(member_id=survivor)
                           .execution_options(synchronize_session=False))
        for stay in stays:
            set_committed_value(stay, "member_id", survivor)


def _settle_one(actor: Actor, stay, earning, who) -> Outcome:
    target_member, eligible, segment = _target(stay, who)
    if _basis(earning, who) == (target_member, eligible, segment):
        return Outcome(member_id=target_member)
    store = db.session.get(Store, stay.store_id)
    outcome = Outcome(member_id=target_member, changed=True)
    details = {"stay_id": stay.id, "stay_no": stay.stay_no, "store_code": store.code}
    if earning is not None and earning.entry_id is not None:
        # The database decides who takes it back: the earning row still naming this entry.
        taken = db.session.execute(update(StayEarning).where(
            StayEarning.id == earning.id, StayEarning.entry_id == earning.entry_id)
            .values(entry_id=None, points=0).execution_options(synchronize_session=False))
        if taken.rowcount != 1:
            raise Conflict(_("This stay was settled by another import a moment ago; try again."),
                           code="concurrent_change")
        holder = who[earning.member_id].survivor if earning.member_id in who else earning.member_id
        outcome.reversed, outcome.shortfall, _undo_id = points.undo_stay(actor, holder, earning.entry_id,
                                                                        store=store, **details)
    multiplier = who[stay.member_id].multiplier if target_member else 1
    earn = points_for_stay(eligible, segment, multiplier) if target_member else 0
    entry_id = points.earn_stay(actor, target_member, earn, store=store, **details) if earn else None
    outcome.earned = earn
    values = {"member_id": target_member, "eligible": eligible, "segment": segment, "points": earn,
              "entry_id": entry_id, "updated_at": utcnow()}
    if earning is None:
        db.session.add(StayEarning(stay_id=stay.id, **values))
        db.session.flush()
    else:
        db.session.execute(update(StayEarning).where(StayEarning.id == earning.id).values(**values)
                           .execution_options(synchronize_session=False))
    audit.record(actor, "stay.points", entity_type="stays", entity_id=stay.id, store_id=stay.store_id,
                 member_id=target_member, stay_no=stay.stay_no, eligible=eligible, earned=earn,
                 reversed=outcome.reversed, shortfall=outcome.shortfall)
    return outcome


def upgrade(actor: Actor, member_id: int):
    """The upgrade check a bill's close runs, with the stays' spend counted (the caller holds the lock)."""
    member = levels._locked_member(member_id)
    months = programme.get("level_window_months")
    return levels.upgrade_for(actor, member, spend=lambda: levels.rolling_spend(member_id, months))


def settle_keys(actor: Actor, keys) -> dict[int, Outcome]:
    """`settle` the stays of these (store id, stay no) keys (an import chunk just written)."""
    by_store = {}
    for store_id, no in keys:
        by_store.setdefault(store_id, []).append(no)
    ids = []
    for store_id, numbers in by_store.items():
        for part in range(0, len(numbers), 1000):
            ids += db.session.scalars(select(Stay.id).where(Stay.store_id == store_id,
                                                            Stay.stay_no.in_(numbers[part:part + 1000])))
    return settle(actor, ids)


# One stay posted by the PMS ---------------------------------------------------------------

def _upsert(values: dict) -> tuple[int, bool]:
    """Insert or update the stay by (store, stay no): (id, whether it was new). The row stays
    locked to commit, which is what orders two postings of one stay (module docstring)."""
    table = Stay.__table__
    params = {**values, "imported_at": utcnow()}
    changes = {c: v for c, v in params.items() if c not in ("store_id", "stay_no")}
    if db.session.get_bind().dialect.name == "postgresql":
        stmt = postgresql.insert(table).values(params)
        stmt = stmt.on_conflict_do_update(index_elements=["store_id", "stay_no"], set_=changes).returning(
            table.c.id, literal_column("(xmax = 0)"))
        stay_id, new = db.session.execute(stmt).one()
        return stay_id, bool(new)
    existing = db.session.scalar(select(Stay.id).where(Stay.store_id == values["store_id"],
                                                       Stay.stay_no == values["stay_no"]))
    stmt = sqlite.insert(table).values(params)
    stay_id = db.session.execute(stmt.on_conflict_do_update(index_elements=["store_id", "stay_no"], set_=changes)
                                 .returning(table.c.id)).scalar_one()
    return stay_id, existing is None


def _member_of(data) -> int | None:
    """The member a posting names by id, mobile or card (at most one way): merged → the
    survivor; erased → 409 `member_anonymised` (the stay would earn nothing it could ever use)."""
    from ..cards import service as cards
    from ..members import pipl
    from ..members import service as members
    given = [k for k in ("member_id", "member_mobile", "card_code") if data.get(k) not in (None, "")]
    if len(given) > 1:
        raise Invalid(_("Name the member one way: member_id, member_mobile or card_code."),
                      code="ambiguous_member", field=given[1])
    if not given:
        return None
    if given[0] == "member_mobile":
        try:
            mobile = normalise_mobile(data["member_mobile"])
        except ValueError as exc:
            raise Invalid(f"member_mobile: {exc}", code="unknown_member", field="member_mobile") from None
        member_id = members.id_for_guest_mobile(mobile)
        if member_id is None:
            raise Invalid(_("No member has the mobile %(mobile)s.", mobile=mobile), code="unknown_member",
                          field="member_mobile")
    elif given[0] == "card_code":
        member_id = cards.scan(data["card_code"], field="card_code").member_id
    else:
        member_id = data["member_id"]
    member = db.session.get(Member, member_id)
    if member is None:
        raise Invalid(_("No such member."), code="unknown_member", field=given[0])
    if member.merged_into_id is not None:
        member = db.session.get(Member, member.merged_into_id)
    pipl.refuse_if_anonymised(member.id)
    return member.id


def post_stay(actor: Actor, data: dict) -> tuple[Stay, Outcome, bool]:
    """One stay posted by the PMS at check-out: upserted by (store, stay no) and settled as an
    import's stays are. (stay, outcome, whether it was new)."""
    from ..members import companies
    from ..stores import service as stores
    store = stores.get_by_code(data["store_code"])
    if store.kind != "hotel":
        raise Invalid(_("%(code)s is not a hotel.", code=store.code), code="not_a_hotel", field="store_code")
    arrival, departure = data["arrival"], data["departure"]
    if departure < arrival:
        raise Invalid(_("departure is before arrival."), code="invalid_dates", field="departure")
    day_use = bool(data.get("day_use")) or departure == arrival
    if day_use and departure != arrival:
        raise Invalid(_("A day-use stay arrives and departs on the same day."), code="invalid_dates",
                      field="day_use")
    if problem := revenue_problem(data["room_revenue"], data.get("fb_revenue") or 0):
        raise Invalid(problem, code="revenue_too_large", field="fb_revenue")
    company = (data.get("company") or "").strip()
    values = {"store_id": store.id, "stay_no": data["stay_no"].strip(), "arrival": arrival, "departure": departure,
              "rooms": data.get("rooms", 1), "room_revenue": data["room_revenue"],
              "fb_revenue": data.get("fb_revenue") or 0, "segment": data["segment"],
              "member_id": _member_of(data), "company_name": company,
              "company_id": found.id if company and (found := companies.find_by_name(company)) else None,
              "sales_rep": (data.get("sales_rep") or "")[:64],
              "complimentary": bool(data.get("complimentary")) or data["segment"] == "complimentary",
              "day_use": day_use, "cancelled": bool(data.get("cancelled"))}
    if not values["stay_no"]:
        raise Invalid(_("stay_no is empty."), code="invalid_stay_no", field="stay_no")
    stay_id, new = _upsert(values)
    outcome = settle(actor, [stay_id])[stay_id]
    stay = db.session.execute(select(Stay).where(Stay.id == stay_id)
                              .execution_options(populate_existing=True)).scalar_one()
    return stay, outcome, new


# Reading ----------------------------------------------------------------------------------

def earning_of(stay_id: int) -> StayEarning | None:
    return db.session.scalar(select(StayEarning).where(StayEarning.stay_id == stay_id))


def audit_mismatches() -> list[str]:
    """Every stay earning whose entry is not a `stay` entry of the points it records (part of
    `crm audit`)."""
    from ..points.models import PointsEntry
    return [f"stay {s}: earning names entry {e} ({k} {p}) for {ep} points"
            for s, e, k, p, ep in db.session.execute(
                select(StayEarning.stay_id, StayEarning.entry_id, PointsEntry.kind, PointsEntry.points,
                       StayEarning.points).join(PointsEntry, PointsEntry.id == StayEarning.entry_id)
                .where((PointsEntry.kind != "stay") | (PointsEntry.points != StayEarning.points)))]
