"""Referrals 老带新: codes, the referee → referrer link, the reward of a referee's first
qualifying bill, its reversal by a void, and the report.

The rules (docs/rules.md, programme rules `referral_*`):

- Every member has a referral code: 8 characters of A–Z and 2–9 without 0/O/1/I, random,
  unique (the unique index decides), given at registration; members who existed before
  migration 0018 got one from it. Typed codes are read case-insensitively, spaces and
  hyphens ignored. A new member registered with a code is linked to its owner
  (`members.referred_by_id`, audited); an unknown code is a 422 on `referral_code` and
  nothing is saved. A member cannot use their own code: a code names an existing member,
  and the link is set only at registration.
- The qualifying bill: the referee's first closed bill whose spend (after member prices and
  coupons, as for the lucky draw) reaches `referral_min_spend`, while the referee holds no
  granted reward. Its close rewards both sides once: points (an `earn` entry on that bill,
  with its own lot and expiry) or a coupon of an admin-set type, each side its own amount or
  type. One granted reward per referee is a partial unique index; two bills of one referee
  closing at once queue on the referee's member lock anyway.
- The referrer's yearly cap (`referral_yearly_cap`, 0 = none) counts the rewards granted in
  a calendar year of the bill's date in its store's time zone, less those reversed. It is a
  counter row per (referrer, year) taken with one conditional UPDATE (`rewarded < cap`),
  whose row count decides; a capped bill closes normally with no reward.
- A void of the qualifying bill takes the reward back: the points by reversal entries (the
  referee's are reversed by the void itself, being an `earn` of the bill; the referrer's by
  `points.reverse_checkout` on the referrer's account — points already spent are written
  off, as for any earning), the coupons cancelled if unused (a used coupon stays used and is
  named in the audit row). The cap slot is freed, and a later bill of the referee can
  qualify again.

Locks (core/locks.py). close() and void() hold the referee's member lock and the referee's
rows when they call in here. The referrer is another member whose member lock is NOT taken:
the reward touches only (a) the referrer's counter row, locked first by its conditional
UPDATE, (b) the referrer's unused reward coupon (void only), then (c) the referrer's points
account through the ledger's conditional moves, which need no member lock (nothing is
decided on the referrer's balance), and (d) new coupon rows plus the coupon type's stock
(step 6). A transaction therefore holds a referee's rows and waits only on rows of that
referee's referrer; a referrer registered before its referee, so has a smaller id, and every
chain of waits runs to strictly smaller member ids: no cycle, no deadlock. The referrer's own
operations take their rows in the usual order (coupons before points), as the void here does.
"""
import re
from datetime import datetime, time
from functools import cache

from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, case, func, literal, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ..core import audit, states
from ..core.actor import Actor
from ..core.timeutil import utcnow, zone
from ..coupons import service as coupons
from ..errors import Conflict, DomainError, Invalid
from ..extensions import db
from ..points import service as points
from ..points.models import PointsAccount, PointsEntry
from ..programme import service as programme
from ..stores import service as stores
from . import merge_models as merged
from .models import REFERRAL_ALPHABET, REFERRAL_CODE_LENGTH, Member, ReferralCount, ReferralReward

TRANSITIONS = {"reverse": ({"granted"}, "reversed")}
_TYPED = re.compile(rf"[{REFERRAL_ALPHABET}]{{{REFERRAL_CODE_LENGTH}}}")


# Codes -------------------------------------------------------------------------------------

def code_for(member) -> str:
    """The member's referral code, as shown on the member page and the self-service page."""
    return member.referral_code


def normalise_code(text: str | None) -> str:
    """A typed code as stored: upper case, without spaces or hyphens."""
    return re.sub(r"[\s\-]", "", text or "").upper()


def find_referrer(text: str, *, field: str = "referral_code") -> Member:
    """The member whose code was typed, or a 422 on `field`."""
    code = normalise_code(text)
    member = db.session.scalar(select(Member).where(Member.referral_code == code)) if _TYPED.fullmatch(code) else None
    if member is not None and member.merged_into_id is not None:  # a merged duplicate's code: its survivor
        member = db.session.get(Member, member.merged_into_id)
    if member is None or member.anonymised_at is not None:  # an erased member's code is nobody's
        raise Invalid(_("No member has the referral code %(code)s.", code=text.strip()[:20]),
                      code="unknown_referral_code", field=field)
    return member


# The reward ---------------------------------------------------------------------------------

def on_bill_closed(actor: Actor, member, checkout) -> ReferralReward | None:
    """Called by checkout.close() under the referee's member lock, after the bill's own points.
    Rewards the referrer and the referee if this is the referee's qualifying bill. A bill of a
    member with no referrer sends no statement."""
    if member is None or member.referred_by_id is None:
        return None
    kind = programme.get("referral_reward")
    if kind == "none" or checkout.member_total - checkout.coupon_discount < programme.get("referral_min_spend"):
        return None
    if db.session.scalar(_granted_to(), {"referee": member.id}) is not None:
        return None
    # A referrer merged since (members/merge.py) is rewarded as its survivor, not on a tombstone
    # nobody sees; a member who had signed up with its own duplicate's code refers no one.
    referrer_id = _referrer_now(member.referred_by_id)
    if referrer_id == member.id:
        return None
    if db.session.scalar(select(Member.anonymised_at).where(Member.id == referrer_id)) is not None:
        return None  # an erased referrer: no reward on points nobody can use, for them or their referee
    store = checkout.store
    year = checkout.created_at.astimezone(zone(store.timezone)).year
    try:
        with db.session.begin_nested():
            if not _take_slot(referrer_id, year, programme.get("referral_yearly_cap")):
                return None
            reward = ReferralReward(referee_id=member.id, referrer_id=referrer_id, checkout_id=checkout.id, year=year,
                                    kind=kind, status="granted", referrer_points=0, referee_points=0, details={},
                                    created_at=utcnow())
            db.session.add(reward)
            db.session.flush()
    except IntegrityError:  # the referee was rewarded by a transaction that committed meanwhile
        return None
    if kind == "points":
        _grant_points(actor, reward, store, checkout, programme.get("referral_referrer_points"),
                      programme.get("referral_referee_points"))
    else:
        _grant_coupons(actor, reward, store, programme.get("referral_referrer_coupon"),
                       programme.get("referral_referee_coupon"))
    db.session.flush()
    audit.record(actor, "referral.reward", entity=reward, store_id=store.id, member_id=member.id,
                 referrer_id=referrer_id, checkout_id=checkout.id, year=year, kind=kind,
                 referrer_points=reward.referrer_points, referee_points=reward.referee_points,
                 referrer_coupon_id=reward.referrer_coupon_id, referee_coupon_id=reward.referee_coupon_id,
                 **reward.details)
    return reward


_SHARE_REFERRER = text("SELECT merged_into_id FROM members WHERE id = :id FOR SHARE")


def _referrer_now(referrer_id: int) -> int:
    """The live member to reward for this referrer. On PostgreSQL the referrer's row is read FOR
    SHARE: a merge of the referrer under way (it holds the row) is waited for, so its survivor is
    rewarded rather than the tombstone whose points account the reward would queue for. A
    referrer is older than its referee (core/locks.py): the wait runs from a larger id to a smaller."""
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        return merged.survivor_id(referrer_id)
    return connection.execute(_SHARE_REFERRER, {"id": referrer_id}).scalar() or referrer_id


@cache
def _granted_to():
    return select(ReferralReward.id).where(ReferralReward.referee_id == bindparam("referee"),
                                           ReferralReward.status == "granted")


def _take_slot(referrer_id: int, year: int, cap: int) -> bool:
    """One more reward for the referrer this year, if the cap allows: the counter row (created
    on first use) is moved by one conditional UPDATE; its row lock queues the referrer's
    other referees until this transaction ends."""
    connection = db.session.connection()
    connection.execute(_new_count(connection.dialect.name), {"referrer_id": referrer_id, "year": year, "rewarded": 0})
    taken = connection.execute(_count_up(bool(cap)), {"referrer": referrer_id, "of_year": year, "cap": cap})
    return taken.rowcount == 1


@cache
def _new_count(dialect_name: str):
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    return insert(ReferralCount.__table__).on_conflict_do_nothing(index_elements=["referrer_id", "year"])


@cache
def _count_up(capped: bool):
    table = ReferralCount.__table__
    stmt = update(table).where(table.c.referrer_id == bindparam("referrer"), table.c.year == bindparam("of_year"))
    if capped:
        stmt = stmt.where(table.c.rewarded < bindparam("cap"))
    return stmt.values(rewarded=table.c.rewarded + 1)


def _grant_points(actor, reward, store, checkout, referrer_points: int, referee_points: int):
    """Each side's points as an `earn` entry of the qualifying bill, on their own account (the
    referrer first: its counter row is already held, and its points account is next)."""
    for side, member_id, amount in (("referrer", reward.referrer_id, referrer_points),
                                    ("referee", reward.referee_id, referee_points)):
        if amount:
            points.settle_checkout(actor, member_id, redeem=0, earn=amount, store=store, checkout_id=checkout.id)
            setattr(reward, f"{side}_points", amount)
            setattr(reward, f"{side}_entry_id", db.session.scalar(_last_earning(), {
                "member": member_id, "bill": checkout.id}))


@cache
def _last_earning():
    return (select(func.max(PointsEntry.id)).join(PointsAccount, PointsAccount.id == PointsEntry.account_id)
            .where(PointsAccount.member_id == bindparam("member"), PointsEntry.checkout_id == bindparam("bill"),
                   PointsEntry.kind == "earn"))


def _grant_coupons(actor, reward, store, referrer_type: str, referee_type: str):
    """Each side's coupon; a type no longer issued or out of stock gives that side nothing,
    named in the reward's details (the bill is never refused for it)."""
    today = utcnow().astimezone(zone(store.timezone)).date()
    details = {}
    for side, member_id, type_code in (("referrer", reward.referrer_id, referrer_type),
                                       ("referee", reward.referee_id, referee_type)):
        if not type_code:
            continue
        try:
            coupon = coupons.issue(actor, member_id, coupons.get_definition(type_code), source="manual",
                                   source_ref=f"referral:{reward.id}", today=today)
        except DomainError as exc:  # refused before anything was written
            details[f"{side}_coupon_refused"] = exc.code
            continue
        setattr(reward, f"{side}_coupon_id", coupon.id)
    reward.details = details


def on_bill_voided(actor: Actor, checkout, reason: str) -> dict | None:
    """Called by checkout.void() after the bill's own reversals: if the bill was a referee's
    qualifying bill, take both rewards back and free the referrer's cap slot."""
    reward = db.session.scalar(select(ReferralReward).where(ReferralReward.checkout_id == checkout.id,
                                                            ReferralReward.status == "granted"))
    if reward is None:
        return None
    states.change(reward, TRANSITIONS, "reverse", reversed_at=utcnow(), reversed_by=actor.staff_id,
                  conflict=lambda found: Conflict(_("This referral reward was already taken back."),
                                                  code="already_reversed", status=found))
    table = ReferralCount.__table__
    db.session.execute(update(table).where(table.c.referrer_id == reward.referrer_id, table.c.year == reward.year,
                                           table.c.rewarded > 0).values(rewarded=table.c.rewarded - 1))
    result = {"referrer_id": reward.referrer_id, "referee_id": reward.referee_id}
    for side in ("referrer", "referee"):  # coupons before points, as every operation takes them
        coupon_id = getattr(reward, f"{side}_coupon_id")
        if coupon_id is not None:
            result[f"{side}_coupon"] = "cancelled" if coupons.cancel_unused(coupon_id) else "kept_used"
    if reward.referrer_entry_id is not None:
        back = points.reverse_checkout(actor, reward.referrer_id, checkout.id, store=checkout.store, reason=reason)
        result["referrer_points_reclaimed"] = back["reclaimed"]
        result["referrer_points_written_off"] = back["written_off"]
    if reward.referee_entry_id is not None:  # reversed by the void with the bill's own earning
        result["referee_points_reclaimed"] = -(_reversed_points(reward.referee_entry_id) or 0)
    audit.record(actor, "referral.reverse", entity=reward, store_id=checkout.store_id, checkout_id=checkout.id,
                 reason=reason, **result)
    return result


def _reversed_points(entry_id: int) -> int | None:
    return db.session.scalar(select(PointsEntry.points).where(PointsEntry.reverses_id == entry_id))


# Reading -------------------------------------------------------------------------------------

def referrer_of(member) -> Member | None:
    return db.session.get(Member, member.referred_by_id) if member.referred_by_id else None


def referees_of(member_id: int) -> list[dict]:
    """The members registered with this member's code, newest first, each with their latest
    reward (status, points, coupons) if any."""
    latest = (select(ReferralReward.referee_id, func.max(ReferralReward.id).label("reward_id"))
              .group_by(ReferralReward.referee_id).subquery())
    rows = db.session.execute(
        select(Member, ReferralReward).outerjoin(latest, latest.c.referee_id == Member.id)
        .outerjoin(ReferralReward, ReferralReward.id == latest.c.reward_id)
        .where(Member.referred_by_id == member_id).order_by(Member.created_at.desc(), Member.id.desc())).all()
    return [{"member": m, "reward": r} for m, r in rows]


def summary(member) -> dict:
    """What the member page and GET /members/{id}/referrals show."""
    year = utcnow().astimezone(zone(member.store.timezone)).year
    return {"referral_code": code_for(member), "referred_by": referrer_of(member), "referees": referees_of(member.id),
            "year": year, "rewarded_this_year": counted(member.id, year),
            "yearly_cap": programme.get("referral_yearly_cap")}


def history_notes(events) -> set:
    """Of a page of the member history (history.Event), the points entries and coupons that are
    referral rewards or their reversals: {("points", id), ("coupon", id)}, so the page can say so."""
    entries = {e.obj.id for e in events if e.kind == "points"} | {
        e.obj.reverses_id for e in events if e.kind == "points" and e.obj.reverses_id}
    coupon_ids = {e.obj.id for e in events if e.kind == "coupon"}
    if not entries and not coupon_ids:
        return set()
    r = ReferralReward
    found = db.session.execute(select(r.referrer_entry_id, r.referee_entry_id, r.referrer_coupon_id,
                                      r.referee_coupon_id).where(
        r.referrer_entry_id.in_(entries) | r.referee_entry_id.in_(entries) | r.referrer_coupon_id.in_(coupon_ids)
        | r.referee_coupon_id.in_(coupon_ids))).all()
    reward_entries = {x for row in found for x in row[:2] if x}
    reward_coupons = {x for row in found for x in row[2:] if x}
    notes = {("coupon", e.obj.id) for e in events if e.kind == "coupon" and e.obj.id in reward_coupons}
    return notes | {("points", e.obj.id) for e in events if e.kind == "points" and (
        e.obj.id in reward_entries or e.obj.reverses_id in reward_entries)}


def counted(referrer_id: int, year: int) -> int:
    """Rewards of the referrer counted against the cap of `year`."""
    return db.session.scalar(select(ReferralCount.rewarded).where(ReferralCount.referrer_id == referrer_id,
                                                                 ReferralCount.year == year)) or 0


def report(p, store_id: int | None = None, tz_name: str | None = None) -> dict:
    """Referrals in a period (dates in `tz_name`, the stores' zone by default), per referrer and
    per store of the referee's registration: referees registered in the period; rewards granted
    in the period and still standing (`rewarded`) or taken back by a void (`reversed`); the
    points and coupons those standing rewards gave (both sides)."""
    tz = zone(tz_name)
    start, end = datetime.combine(p.start, time(), tz), datetime.combine(p.end_exclusive, time(), tz)
    referee = Member.__table__.alias("referee")
    in_period = lambda column: and_(column >= start, column < end)  # noqa: E731
    r = ReferralReward
    standing = r.status == "granted"

    def counts(key_of_referee):
        referees = (select(key_of_referee(referee).label("k"), func.count().label("referees"))
                    .where(referee.c.referred_by_id.is_not(None), in_period(referee.c.created_at))
                    .group_by(key_of_referee(referee)))
        rewards = (select(key_of_referee(referee).label("k"),
                          func.sum(case((standing, 1), else_=0)).label("rewarded"),
                          func.sum(case((standing, 0), else_=1)).label("reversed"),
                          func.sum(case((standing, r.referrer_points), else_=0)).label("referrer_points"),
                          func.sum(case((standing, r.referee_points), else_=0)).label("referee_points"),
                          func.sum(case((standing & r.referrer_coupon_id.is_not(None), 1), else_=0)
                                   + case((standing & r.referee_coupon_id.is_not(None), 1), else_=0)).label("coupons"))
                   .join(referee, referee.c.id == r.referee_id).where(in_period(r.created_at))
                   .group_by(key_of_referee(referee)))
        if store_id is not None:
            referees = referees.where(referee.c.store_id == store_id)
            rewards = rewards.where(referee.c.store_id == store_id)
        out = {}
        for key, n in db.session.execute(referees):
            out.setdefault(key, _zero())["referees"] = n
        for key, *figures in db.session.execute(rewards):
            row = out.setdefault(key, _zero())
            for name, value in zip(("rewarded", "reversed", "referrer_points", "referee_points", "coupons"), figures,
                                   strict=True):
                row[name] = int(value or 0)
        return out

    by_referrer = counts(lambda t: t.c.referred_by_id)
    by_store = counts(lambda t: t.c.store_id)
    referrers = {m.id: m for m in db.session.scalars(select(Member).where(Member.id.in_(by_referrer)))} \
        if by_referrer else {}
    store_rows = {s.id: s for s in stores.list_stores()}
    return {
        "from": p.start, "to": p.end,
        "referrers": sorted(({"member_id": mid, "name": referrers[mid].name,
                              "referral_code": referrers[mid].referral_code, **figures}
                             for mid, figures in by_referrer.items()),
                            key=lambda row: (-row["referees"], -row["rewarded"], row["member_id"])),
        "stores": sorted(({"store_code": store_rows[sid].code, "store_name": store_rows[sid].name, **figures}
                          for sid, figures in by_store.items()), key=lambda row: row["store_code"]),
        "totals": {name: sum(row[name] for row in by_store.values()) for name in _zero()},
    }


REPORT_COLUMNS = ("referees", "rewarded", "reversed", "referrer_points", "referee_points", "coupons")
EXPORT_HEADER = ("member_id", "name", "referral_code", *REPORT_COLUMNS)


def export_rows(figures: dict):
    """The per-referrer rows of a report, for a CSV or Excel file (EXPORT_HEADER)."""
    return ((row["member_id"], row["name"], row["referral_code"], *(row[c] for c in REPORT_COLUMNS))
            for row in figures["referrers"])


def _zero() -> dict:
    return dict.fromkeys(REPORT_COLUMNS, 0)


def audit_mismatches() -> list[str]:
    """Every referrer's yearly counter equals its standing rewards of that year."""
    granted = (select(ReferralReward.referrer_id, ReferralReward.year, func.count().label("n"))
               .where(ReferralReward.status == "granted").group_by(ReferralReward.referrer_id, ReferralReward.year)
               .subquery())
    c = ReferralCount
    rows = db.session.execute(
        select(c.referrer_id, c.year, c.rewarded, func.coalesce(granted.c.n, 0))
        .outerjoin(granted, and_(granted.c.referrer_id == c.referrer_id, granted.c.year == c.year))
        .where(c.rewarded != func.coalesce(granted.c.n, 0))).all()
    missing = db.session.execute(
        select(granted.c.referrer_id, granted.c.year, literal(0), granted.c.n)
        .outerjoin(c, and_(granted.c.referrer_id == c.referrer_id, granted.c.year == c.year))
        .where(c.referrer_id.is_(None))).all()
    return [f"referrer {m}, year {y}: counted {n} rewards, {g} granted" for m, y, n, g in [*rows, *missing]]
