"""Member levels (tiers): the entry level every new member starts on, and their rules.

Levels go up at once — on a checkout when rolling spend reaches a level's `upgrade_spend`,
on a top-up when the principal topped up over the same window (the programme rule
`level_window_months`) reaches its `upgrade_topup` — and down only at the yearly review
(`review_levels`: `crm review-levels`, and the scheduler on 1 January). Every change
writes a `member_level_changes` row saying why and with which figures.
"""
from datetime import datetime, timedelta
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError

from ..campaigns.messages import TITLES
from ..campaigns.models import Delivery
from ..checkout.models import Checkout
from ..core import audit, locks, refcache
from ..core.actor import Actor
from ..core.timeutil import utcnow, zone
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..notifications import service as notifications
from ..programme import service as programme
from ..wallet.models import WalletTopup
from .models import LevelReview, Member, MemberLevel, MemberLevelChange

ENTRY_LEVEL = {"code": "standard", "name": "普通会员", "rank": 0, "points_multiplier": Decimal("1.00")}


def entry_level() -> MemberLevel:
    """The rank-0 level new members start on; created with the demo programme's defaults
    the first time it is needed (even if an admin added higher tiers first)."""
    level = db.session.scalar(select(MemberLevel).where(MemberLevel.rank == 0))
    if level is None:
        level = MemberLevel(**ENTRY_LEVEL)
        db.session.add(level)
        db.session.flush()
    return level


def list_levels():
    entry_level()
    return db.session.scalars(select(MemberLevel).order_by(MemberLevel.rank)).all()


def get_by_code(code: str, *, as_404=False) -> MemberLevel:
    level = db.session.scalar(select(MemberLevel).where(MemberLevel.code == code))
    if level is None:
        if as_404:
            raise NotFound(_("No such level."))
        raise Invalid(_("Unknown level %(code)s.", code=code), code="unknown_level", field="level_code")
    return level


def _check(rank, multiplier, ignore_id=None):
    if multiplier is not None and multiplier <= 0:
        raise Invalid(_("The points multiplier must be above zero."), code="invalid_multiplier",
                      field="points_multiplier")
    if rank is not None:
        clash = db.session.scalar(select(MemberLevel.id).where(MemberLevel.rank == rank))
        if clash and clash != ignore_id:
            raise Conflict(_("Another level has that rank."), code="rank_taken", field="rank")


def create_level(actor: Actor, *, code, name, rank, points_multiplier=Decimal("1.00"),
                 upgrade_spend=None, upgrade_topup=None) -> MemberLevel:
    """Add a tier; rank orders tiers (0 is where members start)."""
    if db.session.scalar(select(MemberLevel.id).where(MemberLevel.code == code)):
        raise Conflict(_("A level with that code exists."), code="level_code_taken", field="code")
    _check(rank, points_multiplier)
    level = MemberLevel(code=code, name=name, rank=rank, points_multiplier=points_multiplier,
                        upgrade_spend=upgrade_spend, upgrade_topup=upgrade_topup)
    db.session.add(level)
    db.session.flush()
    audit.record(actor, "level.create", entity=level, code=code)
    return level


def update_level(actor: Actor, code: str, **changes) -> MemberLevel:
    level = get_by_code(code, as_404=True)
    if level.rank == 0 and changes.get("rank") not in (None, 0):
        # New members start on the rank-0 level; moving it would leave them without one.
        raise Invalid(_("The entry level keeps rank 0: new members start on it."), code="entry_level_rank",
                      field="rank")
    _check(changes.get("rank"), changes.get("points_multiplier"), ignore_id=level.id)
    for field, value in changes.items():
        setattr(level, field, value)
    audit.record(actor, "level.update", entity=level, fields=sorted(changes))
    return level


def levels_above(member) -> list[MemberLevel]:
    """Higher levels a member could still reach, highest first (the levels are kept per
    worker until an admin changes one: core/refcache.py)."""
    every = refcache.get("levels", "all", lambda: [refcache.columns_of(level) for level in db.session.scalars(
        select(MemberLevel).order_by(MemberLevel.rank.desc()))])
    rank = member.level.rank
    return [refcache.attach(MemberLevel, columns) for columns in every if columns["rank"] > rank]


# Rolling figures --------------------------------------------------------------------------

def window_start(now: datetime, months: int) -> datetime:
    """Where a rolling window of `months` ending at `now` begins (as checkout.rolling_spend counts it)."""
    return now - timedelta(days=round(months * 365.25 / 12))


def _topups(member_ids, since: datetime, until: datetime) -> dict[int, int]:
    """{member id: principal topped up in [since, until]} (the bonus does not count)."""
    rows = db.session.execute(select(WalletTopup.member_id, func.sum(WalletTopup.amount)).where(
        WalletTopup.member_id.in_(member_ids), WalletTopup.created_at >= since, WalletTopup.created_at <= until)
        .group_by(WalletTopup.member_id)).all()
    return {member_id: int(total) for member_id, total in rows}


def _spends(member_ids, since: datetime, until: datetime) -> dict[int, int]:
    """{member id: spend in [since, until]}: closed bills as checkout.rolling_spend counts them
    (member total less coupons) plus hotel stays (`_stay_spends`)."""
    rows = db.session.execute(select(Checkout.member_id, func.sum(Checkout.member_total - Checkout.coupon_discount))
                              .where(Checkout.member_id.in_(member_ids), Checkout.status == "closed",
                                     Checkout.created_at >= since, Checkout.created_at <= until)
                              .group_by(Checkout.member_id)).all()
    spends = {member_id: int(total) for member_id, total in rows}
    for member_id, total in _stay_spends(member_ids, since, until).items():
        spends[member_id] = spends.get(member_id, 0) + total
    return spends


def _stay_spends(member_ids, since: datetime, until: datetime) -> dict[int, int]:
    """{member id: room + F&B revenue of their stays that departed in [since, until]} (dates in the
    chain's time zone), cancelled and complimentary stays left out (crm/stays/service.py)."""
    from ..reports.models import Stay
    tz = zone()
    rows = db.session.execute(select(Stay.member_id, func.sum(Stay.room_revenue + Stay.fb_revenue))
                              .where(Stay.member_id.in_(member_ids), Stay.cancelled.is_(False),
                                     Stay.complimentary.is_(False),
                                     Stay.departure >= since.astimezone(tz).date(),
                                     Stay.departure <= until.astimezone(tz).date())
                              .group_by(Stay.member_id)).all()
    return {member_id: int(total) for member_id, total in rows if total}


def rolling_spend(member_id: int, months: int, now: datetime | None = None) -> int:
    """A member's level spend over the `months` up to `now`: bills and hotel stays."""
    now = now or utcnow()
    return _spends([member_id], window_start(now, months), now).get(member_id, 0)


def rolling_topup(member_id: int, months: int, now: datetime | None = None) -> int:
    """Principal a member topped up in the `months` up to `now` (the top-up just made included)."""
    now = now or utcnow()
    return _topups([member_id], window_start(now, months), now).get(member_id, 0)


# Changes and upgrades ---------------------------------------------------------------------

def change_level(actor: Actor, member, level: MemberLevel, *, reason: str, figures: dict | None = None,
                 review_year: int | None = None, at: datetime | None = None) -> MemberLevelChange:
    """Move a member to `level` and write the history row; every level change goes through here."""
    change = MemberLevelChange(member_id=member.id, from_level_id=member.level.id, to_level_id=level.id,
                               reason=reason, figures=figures or {}, review_year=review_year,
                               staff_id=actor.staff_id, created_at=at or utcnow())
    old = member.level
    member.level = level
    db.session.add(change)
    notifications.level_changed(member, old, level, change)  # the member is told, up or down, with why
    return change


def level_history(member_id: int, limit: int = 20) -> list[MemberLevelChange]:
    """A member's level changes, newest first (the member page)."""
    return db.session.scalars(select(MemberLevelChange).where(MemberLevelChange.member_id == member_id)
                              .order_by(MemberLevelChange.created_at.desc(), MemberLevelChange.id.desc())
                              .limit(limit)).all()


def _measure(figure, needed: bool):
    """A figure for the upgrade check: a callable is evaluated only if some level needs it."""
    if callable(figure):
        return figure() if needed else None
    return figure


def _reached_by(level: MemberLevel, spend, topup) -> str | None:
    """'spend' or 'topup' if these figures reach the level's threshold of that kind, else None."""
    if level.upgrade_spend is not None and spend is not None and spend >= level.upgrade_spend:
        return "spend"
    if level.upgrade_topup is not None and topup is not None and topup >= level.upgrade_topup:
        return "topup"
    return None


def upgrade_for(actor: Actor, member, *, spend=None, topup=None, candidates=None,
                at: datetime | None = None) -> MemberLevel | None:
    """Move a member up to the highest level whose spend or top-up threshold they reach.
    Levels only go up here; a downgrade happens only at the yearly review. `spend` and
    `topup` (fen over the level window; None = not considered) may be callables, evaluated
    only if some level has that kind of threshold. The change is recorded with its figures."""
    candidates = levels_above(member) if candidates is None else candidates
    spend = _measure(spend, any(level.upgrade_spend is not None for level in candidates))
    topup = _measure(topup, any(level.upgrade_topup is not None for level in candidates))
    for level in candidates:
        reason = _reached_by(level, spend, topup)
        if reason:
            previous = member.level.code
            change_level(actor, member, level, reason=reason, at=at, figures={
                "spend": spend, "topup": topup, "window": programme.get("level_window_months")})
            audit.record(actor, "member.level_up", entity=member, previous=previous, level=level.code,
                         spend=spend, topup=topup)
            return level
    return None


def _locked_member(member_id: int) -> Member:
    """The member under the member lock (core/locks.py; a no-op if the caller took it),
    re-read so a level another transaction just committed is the one we start from."""
    locks.lock_member(member_id)
    return db.session.execute(select(Member).where(Member.id == member_id)
                              .execution_options(populate_existing=True)).scalar_one()


def upgrade_on_topup(actor: Actor, member, *, at: datetime | None = None) -> MemberLevel | None:
    """After a top-up: move the member up if the principal they topped up over the level
    window, this top-up included, reaches a higher level's `upgrade_topup`. The sum is
    read only when some higher level has a top-up threshold. `member` was read under the
    member lock this transaction holds, so their level is the one to start from."""
    member_id = member.id
    candidates = levels_above(member)
    if not any(level.upgrade_topup is not None for level in candidates):
        return None
    months = programme.get("level_window_months")
    return upgrade_for(actor, member, topup=lambda: rolling_topup(member_id, months, now=at),
                       candidates=candidates, at=at)


# The yearly review ------------------------------------------------------------------------

NOTICE_SUBJECT = "会员等级调整通知"
NOTICE_BODY = ("{name}{title}，您好！根据{year}年度会员等级评定，您的会员等级已由{old}调整为{new}。"
               "感谢您的支持，期待您的再次光临。")


def qualifying_level(ladder: list[MemberLevel], spend: int, topup: int) -> MemberLevel:
    """The highest level (of `ladder`, lowest rank first) whose spend or top-up threshold
    these figures reach; the entry level if none."""
    for level in reversed(ladder):
        if level.rank <= 0 or _reached_by(level, spend, topup):
            return level
    return entry_level()


def review_year_of(now: datetime) -> int:
    """The review year a moment belongs to: its calendar year in the chain's time zone."""
    return now.astimezone(zone()).year


def review_finished(year: int) -> bool:
    """Whether the year's review has looked at every member (a run that stopped half-way has not)."""
    review = db.session.get(LevelReview, year)
    return review is not None and review.finished_at is not None


def _claim_review(year: int, now: datetime) -> LevelReview:
    """The year's review row: its first run fixes the as-of time and window; later runs reuse them.
    Only the current year can be started (a past year's figures are gone by now)."""
    review = db.session.get(LevelReview, year)
    if review is not None:
        return review
    if year != review_year_of(now):
        raise Invalid(_("Only this year's level review can be started (%(year)d).", year=review_year_of(now)),
                      code="invalid_year", field="year")
    try:
        with db.session.begin_nested():
            review = LevelReview(year=year, as_of=now, window_months=programme.get("level_window_months"),
                                 started_at=now)
            db.session.add(review)
    except IntegrityError:  # another process started it a moment ago
        review = db.session.get(LevelReview, year)
    return review


def _members_above_entry(after: int, limit: int) -> dict[int, int]:
    """The next members above the entry level after a member id, in id order: {id: their level's rank}."""
    return dict(db.session.execute(select(Member.id, MemberLevel.rank)
                                   .join(MemberLevel, MemberLevel.id == Member.level_id)
                                   .where(MemberLevel.rank > 0, Member.id > after)
                                   .order_by(Member.id).limit(limit)).all())


def _left_alone(member_ids, review: LevelReview) -> set[int]:
    """Members this year's review already moved, whose level changed after its as-of time, or
    who brought their level from a legacy system inside the window: they have had no whole
    window here to earn it, so their first review is the one after."""
    return set(db.session.scalars(select(MemberLevelChange.member_id).where(
        MemberLevelChange.member_id.in_(member_ids),
        or_(MemberLevelChange.review_year == review.year, MemberLevelChange.created_at > review.as_of,
            and_(MemberLevelChange.reason == "import",
                 MemberLevelChange.created_at > window_start(review.as_of, review.window_months))))))


def _queue_notice(member: Member, old: MemberLevel, new: MemberLevel, year: int, now: datetime) -> Delivery:
    """A service message (no campaign, no consent needed) telling the member their new level.
    It goes to the outbox, where the front desk sees it on the member page."""
    body = NOTICE_BODY.format(name=member.name, title=TITLES.get(member.gender, ""), year=year,
                              old=old.name, new=new.name)
    delivery = Delivery(campaign_id=None, occurrence=f"level-review-{year}", member_id=member.id, channel="outbox",
                        address=member.mobile, subject=NOTICE_SUBJECT, body=body, tz=member.store.timezone,
                        marketing=False, status="sent", sent_at=now, created_at=now)
    db.session.add(delivery)
    return delivery


def _move_down(actor: Actor, review: LevelReview, member_id: int, ladder, figures: dict, now: datetime) -> bool:
    """Lock the member, check again, and move them down to the level their figures still reach.
    Under the lock the figures are read again up to this moment: a top-up or bill made since
    the as-of time (even while this review runs) can only keep a member up, never push them down."""
    member = _locked_member(member_id)
    if _left_alone([member_id], review):
        return False
    since, until = window_start(review.as_of, review.window_months), max(now, utcnow())
    figures = {**figures, "spend": _spends([member_id], since, until).get(member_id, 0),
               "topup": _topups([member_id], since, until).get(member_id, 0)}
    target = qualifying_level(ladder, figures["spend"], figures["topup"])
    old = member.level
    if target.rank >= old.rank:
        return False
    change_level(actor, member, target, reason="review", figures=figures, review_year=review.year, at=now)
    _queue_notice(member, old, target, review.year, now)
    audit.record(actor, "member.level_review", entity=member, year=review.year, previous=old.code,
                 level=target.code, spend=figures["spend"], topup=figures["topup"])
    return True


def _review_batch(actor: Actor, review: LevelReview, ranks: dict[int, int], ladder, now: datetime) -> tuple[int, int]:
    """Review one batch of members ({id: current rank}); returns (members reviewed, moved down)."""
    since, ids = window_start(review.as_of, review.window_months), list(ranks)
    spends, topups = _spends(ids, since, review.as_of), _topups(ids, since, review.as_of)
    skip = _left_alone(ids, review)
    reviewed = moved = 0
    for member_id in ids:
        if member_id in skip:
            continue
        reviewed += 1
        figures = {"spend": spends.get(member_id, 0), "topup": topups.get(member_id, 0),
                   "window": review.window_months}
        if qualifying_level(ladder, figures["spend"], figures["topup"]).rank < ranks[member_id]:
            moved += _move_down(actor, review, member_id, ladder, figures, now)
    return reviewed, moved


def review_levels(actor: Actor, year: int | None = None, *, now: datetime | None = None,
                  batch: int = 200) -> dict:
    """The yearly review: each member above the entry level whose spend or top-ups over the
    window (as of the review's time) no longer reach their level moves down to the highest
    level they do reach — one level or several — with a history row and a notice in the
    outbox. Commits per batch of members. Idempotent per year: the first run fixes the as-of
    time, a member is moved at most once a year, and members whose level changed after the
    as-of time are left alone. Returns {"year", "as_of", "reviewed", "moved_down"}."""
    now = now or utcnow()
    review = _claim_review(review_year_of(now) if year is None else year, now)
    db.session.commit()
    ladder = list_levels()
    after = reviewed = moved = 0
    while ranks := _members_above_entry(after, batch):
        counts = _review_batch(actor, review, ranks, ladder, now)
        db.session.commit()
        reviewed, moved, after = reviewed + counts[0], moved + counts[1], max(ranks)
    if review.finished_at is None:
        review.finished_at = now
        audit.record(actor, "level.review", entity_type="level_review", entity_id=review.year,
                     as_of=review.as_of.isoformat(), reviewed=reviewed, moved_down=moved)
    db.session.commit()
    return {"year": review.year, "as_of": review.as_of, "reviewed": reviewed, "moved_down": moved}
