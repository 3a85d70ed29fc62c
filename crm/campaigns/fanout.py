"""Turning a due occurrence into deliveries, a batch of members at a time.

The caller (jobs.py) commits after each batch. A batch writes its deliveries, and the
coupons they carry, in one transaction; if another scheduler already wrote a delivery
for one of its members, the unique key fails the insert and the whole batch, coupons
included, rolls back, so a member never gets two messages or two coupons.

Holdout: with a campaign's holdout_percent above 0, the first batch of an occurrence (of a
run: per birthday zone) also decides who is held out — the members of the audience who
could be reached on the channel, ranked by a hash of (campaign, occurrence, member), the
first round(n × percent / 100) of them — and records each as a `held_out` delivery in the
same transaction. The hash makes the choice reproducible (holdout() computes it again from
the same audience, on either database) and independent of the order members are read in;
the delivery key keeps a held-out member from ever being queued for that occurrence, so
they get neither the message nor its coupon, and a resumed or taken-over run cannot decide
again once the first batch has committed.
"""
import calendar
import hashlib
from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..core.actor import Actor
from ..coupons import service as coupons
from ..errors import DomainError
from ..extensions import db
from ..members import levels
from ..members import service as members
from ..points import service as points
from ..stores import service as stores
from ..wallet import service as wallet
from . import audiences, messages
from .models import MAX_HOLDOUT_PERCENT, Campaign, CampaignRun, Delivery
from .schedule import Occurrence, birthdays_greeted_on

# A run fanned out outside the scheduler lease (tick() called directly, no generation) and
# not finished after this is taken over by the next tick. Under the lease a run belongs to
# the leader's generation: the next leader takes it over at once.
LEASE = timedelta(minutes=10)


class TakenOver(Exception):
    """Another scheduler has taken this run over: the batch in hand is not committed."""


def _same_generation(generation: int | None):
    return CampaignRun.lease_generation.is_(None) if generation is None else \
        CampaignRun.lease_generation == generation


def claim_run(campaign: Campaign, occurrence: Occurrence, now: datetime,
              generation: int | None = None) -> CampaignRun | None:
    """The run for this occurrence if this process may fan it out now; None if it is done
    or another scheduler holds it. `generation`: the caller's scheduler lease generation."""
    key = dict(campaign_id=campaign.id, occurrence=occurrence.key, scope=occurrence.scope)
    run = db.session.scalar(select(CampaignRun).filter_by(**key))
    if run is None:
        try:
            with db.session.begin_nested():
                run = CampaignRun(**key, claimed_at=now, lease_generation=generation)
                db.session.add(run)
            return run
        except IntegrityError:  # another scheduler inserted it a moment ago
            return None
    if run.status == "done":
        return None
    held_by = run.lease_generation
    if generation is not None and (held_by is None or held_by <= generation):
        free = True  # its leader was us, or has lost the lease (a later generation leads): no waiting
    else:
        free = run.claimed_at < now - LEASE
    if not free:
        return None
    taken = db.session.execute(update(CampaignRun).where(
        CampaignRun.id == run.id, CampaignRun.status == "running", CampaignRun.claimed_at == run.claimed_at,
        _same_generation(held_by)).values(claimed_at=now, lease_generation=generation))
    if taken.rowcount != 1:
        return None
    db.session.refresh(run)
    return run


def finish_run(run: CampaignRun, now: datetime):
    run.status, run.finished_at = "done", now


def record_batch(run: CampaignRun, last_member_id: int, queued: int, skipped: int, lease_until: datetime):
    """Progress of a run, committed with its batch, only while the run is still this
    scheduler's (same generation and lease time); raises TakenOver otherwise."""
    moved = db.session.execute(update(CampaignRun).where(
        CampaignRun.id == run.id, CampaignRun.claimed_at == run.claimed_at,
        _same_generation(run.lease_generation)).values(
        after_member_id=last_member_id, claimed_at=lease_until, queued=run.queued + queued,
        skipped=run.skipped + skipped).execution_options(synchronize_session=False)).rowcount
    if moved != 1:
        raise TakenOver(run.id)
    db.session.refresh(run)


def _audience_where(campaign: Campaign, occurrence: Occurrence) -> list:
    """The occurrence's audience as conditions on members (joined to their store)."""
    M, S = members.Member, stores.Store
    where = [M.merged_into_id.is_(None)]  # a merged duplicate is a tombstone (members/merge.py)
    where.append(M.anonymised_at.is_(None))  # nor an erased member, even in a filter on spend (members/pipl.py)
    if campaign.audience is not None:
        where += audiences.conditions(campaign.audience.filters)
    if occurrence.birthday is not None:
        where.append(S.timezone == occurrence.scope)
        where.append(or_(*(and_(M.birthday_month == m, M.birthday_day == d)
                           for m, d in birthdays_greeted_on(occurrence.birthday))))
    return where


def _member_rows(campaign: Campaign, occurrence: Occurrence, after: int, limit: int):
    """The next audience members after a member id, in id order, with what a template can show
    (members held out of this occurrence are not among them)."""
    M, S, L = members.Member, stores.Store, levels.MemberLevel
    held_out = select(Delivery.id).where(Delivery.campaign_id == campaign.id, Delivery.occurrence == occurrence.key,
                                         Delivery.member_id == M.id, Delivery.status == "held_out")
    where = [M.id > after, ~held_out.exists(), *_audience_where(campaign, occurrence)]
    stmt = (select(M.id, M.name, M.gender, M.mobile, M.email, M.sms_consent, M.email_consent, M.birthday_month,
                   L.name.label("level"), S.name.label("store"), S.timezone,
                   points.balance_column(M.id).label("points"), wallet.balance_column(M.id).label("wallet"))
            .join(S, S.id == M.store_id).join(L, L.id == M.level_id)
            .where(*where).order_by(M.id).limit(limit))
    return db.session.execute(stmt).all()


def holdout_rank(campaign_id: int, occurrence_key: str, member_id: int) -> bytes:
    """A member's place in the draw for an occurrence's holdout: a hash, the same on every
    process and database, unrelated to member ids or the order members are read in."""
    return hashlib.blake2b(f"{campaign_id}:{occurrence_key}:{member_id}".encode(), digest_size=16).digest()


def holdout_size(reachable: int, percent: int) -> int:
    """round(reachable × percent / 100), halves up, in whole numbers."""
    return (reachable * percent + 50) // 100


def holdout(campaign: Campaign, occurrence: Occurrence, percent: int | None = None) -> tuple[int, list[int]]:
    """(members who could be reached, ids held out, sorted) for an occurrence, from its audience
    as it is now: the first holdout_size of the reachable members by holdout_rank."""
    percent = campaign.holdout_percent if percent is None else percent
    if not 0 <= percent <= MAX_HOLDOUT_PERCENT:
        raise ValueError(f"holdout percent {percent} out of range")
    M, S = members.Member, stores.Store
    rows = db.session.execute(select(M.id, M.mobile, M.email, M.sms_consent, M.email_consent)
                              .join(S, S.id == M.store_id).where(*_audience_where(campaign, occurrence))).all()
    reachable = [row.id for row in rows if _why_not(campaign, row) is None]
    if not percent:
        return len(reachable), []
    ranked = sorted(reachable, key=lambda member_id: holdout_rank(campaign.id, occurrence.key, member_id))
    return len(reachable), sorted(ranked[:holdout_size(len(reachable), percent)])


def _record_holdout(campaign: Campaign, occurrence: Occurrence, now: datetime) -> int:
    """Decide the occurrence's holdout and write it as held_out deliveries (with the first batch)."""
    if not campaign.holdout_percent:
        return 0
    _reachable, held = holdout(campaign, occurrence)
    done = set(db.session.scalars(select(Delivery.member_id).where(
        Delivery.campaign_id == campaign.id, Delivery.occurrence == occurrence.key,
        Delivery.member_id.is_not(None))))  # e.g. another birthday zone's: never twice
    rows = [dict(campaign_id=campaign.id, occurrence=occurrence.key, member_id=member_id, channel=campaign.channel,
                 marketing=campaign.marketing, status="held_out", arm="holdout", created_at=now)
            for member_id in held if member_id not in done]
    if rows:
        db.session.execute(insert(Delivery), rows)
    return len(rows)


def _why_not(campaign: Campaign, row) -> str | None:
    """Why a member is skipped on this channel, or None if the message may go."""
    address = _address(campaign.channel, row)
    if campaign.channel == "email" and not address:
        return "no_email"
    if campaign.channel == "sms" and not address:
        return "no_mobile"
    if not campaign.marketing:
        return None
    consented = {"sms": row.sms_consent, "email": row.email_consent,
                 "outbox": row.sms_consent or row.email_consent}[campaign.channel]
    return None if consented else "no_consent"


def _address(channel, row) -> str:
    return (row.email or "") if channel == "email" else row.mobile


def coupon_dates(definition, send_day: date, birthday: date | None = None) -> tuple[date, date]:
    """(valid from, valid until) of the coupon a message sent on `send_day` carries: for a
    birthday greeting the birthday's month, else from the send day for the type's days;
    never past the type's last day. The send and every preview use this one rule."""
    if birthday is None:
        start, until = send_day, send_day + timedelta(days=max(definition.valid_days, 1) - 1)
    else:
        start = date(birthday.year, birthday.month, 1)
        until = date(birthday.year, birthday.month, calendar.monthrange(birthday.year, birthday.month)[1])
    if definition.valid_to is not None:
        until = min(until, definition.valid_to)
    return start, until


def queue_batch(campaign: Campaign, occurrence: Occurrence, *, after: int, limit: int, now: datetime,
                today: date) -> tuple[int | None, int, int]:
    """Write the next batch of deliveries. Returns (last member id or None when there are
    no more, messages queued, members skipped)."""
    if after == 0:  # the run's first batch (nothing of it committed yet): decide who is held out
        _record_holdout(campaign, occurrence, now)
    rows = _member_rows(campaign, occurrence, after, limit)
    if not rows:
        return None, 0, 0
    actor = Actor.system(f"campaign:{campaign.id}")
    source = "birthday" if campaign.schedule == "birthday" else "campaign"
    valid_from, valid_until = (coupon_dates(campaign.coupon_type, today, occurrence.birthday)
                               if campaign.coupon_type is not None else (today, None))
    outbox = campaign.channel == "outbox"
    batch, queued, skipped = [], 0, 0
    for row in rows:
        reason, coupon = _why_not(campaign, row), None
        arm = "treated" if reason is None else None  # reachable and not held out
        if reason is None and campaign.coupon_type is not None:
            try:
                with db.session.begin_nested():
                    coupon = coupons.issue(actor, row.id, campaign.coupon_type, source=source, today=valid_from,
                                           source_ref=f"campaign:{campaign.id}:{occurrence.key}",
                                           valid_until=valid_until)
            except coupons.OutOfStock:
                reason = "coupon_out_of_stock"  # the greeting still goes, without the coupon
            except DomainError:
                reason = "coupon_not_issued"  # e.g. the type was retired meanwhile: the greeting still goes
        sending = reason in (None, "coupon_out_of_stock", "coupon_not_issued")
        context = {"name": row.name, "title": messages.TITLES.get(row.gender, ""), "level": row.level,
                   "points": row.points, "wallet": f"{row.wallet / 100:.2f}", "store": row.store,
                   "coupon": None if coupon is None else {"name": coupon.definition.name, "code": coupon.code,
                                                          "valid_until": coupon.valid_until.isoformat()}}
        subject = body = ""
        if sending:
            try:  # bounded in time and size (messages.py): a costly template fails this delivery, not the run
                subject = messages.render(campaign.template.subject, context) if has_subject(campaign) else ""
                body = messages.render(campaign.template.body, context)
            except Exception as exc:  # noqa: BLE001 — one member's message must not stop everyone's
                sending, reason = False, f"{getattr(exc, 'code', 'template_invalid')}: {exc}"[:250]
        status = ("sent" if outbox else "queued") if sending else ("failed" if reason.startswith("template")
                                                                   else "skipped")
        queued, skipped = queued + sending, skipped + (not sending)
        batch.append(dict(campaign_id=campaign.id, occurrence=occurrence.key, member_id=row.id,
                          channel=campaign.channel, address=_address(campaign.channel, row) or "",
                          subject=subject[:200], body=body, tz=row.timezone, marketing=campaign.marketing,
                          coupon_id=coupon.id if coupon else None, status=status, reason=reason or "", arm=arm,
                          next_attempt_at=now if sending and not outbox else None,
                          sent_at=now if sending and outbox else None, created_at=now))
    db.session.execute(insert(Delivery), batch)
    return rows[-1].id, queued, skipped


def has_subject(campaign: Campaign) -> bool:
    """An SMS has no subject: only email (and the outbox, which lists it) carries the template's."""
    return campaign.channel != "sms" and bool(campaign.template.subject)


def delivery_counts(campaign_ids=None) -> dict:
    """{campaign id: {status: count}}, for lists and the campaign page."""
    stmt = (select(Delivery.campaign_id, Delivery.status, func.count()).where(Delivery.member_id.is_not(None))
            .group_by(Delivery.campaign_id, Delivery.status))  # test sends are not the campaign's messages
    if campaign_ids is not None:
        stmt = stmt.where(Delivery.campaign_id.in_(campaign_ids))
    out = {}
    for campaign_id, status, n in db.session.execute(stmt):
        out.setdefault(campaign_id, {})[status] = n
    return out


def pending(campaign_id: int) -> int:
    """Deliveries of a campaign still to be sent (queued or being sent)."""
    return db.session.scalar(select(func.count()).where(
        Delivery.campaign_id == campaign_id, Delivery.status.in_(("queued", "sending")))) or 0


def started(campaign_id: int) -> bool:
    """Whether an occurrence of the campaign has begun (a run was claimed): it was running."""
    return db.session.scalar(select(CampaignRun.id).where(CampaignRun.campaign_id == campaign_id).limit(1)) is not None
