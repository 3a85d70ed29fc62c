"""Sending queued email and SMS deliveries: quiet hours, throttle, retries with backoff.

Deliveries are claimed a batch at a time with a conditional update (queued -> sending, with
the leader's lease generation, fenced) committed before any message leaves the process, so
two schedulers never send the same one; each result is committed right after its send. A
leader that loses its lease mid-batch gives the unsent rest back. Every message
carries its delivery's stable send id as the channel's dedupe key (channels.py).

A delivery left `sending` was interrupted between the claim and the result. Results are
committed in id order, each before the next message leaves, so of a batch left behind only
the lowest id still `sending` may have reached the channel; the rest of it never left and
simply go back to the queue. That one the next beat (of a later generation, or of the same
leader after a database error: at once; otherwise after STALE) resends with the same id on
a channel that dedupes by it (the SMS gateway, unless SMS_GATEWAY_DEDUPE=0), so it arrives
once; on one that cannot (SMTP) it is marked `unknown`, never resent: a member may miss a
message, but never gets it twice.

The throttle counts a message when it leaves, not when its batch is claimed: a batch claims
no more than the window has room for, and each send takes its place in the window just
before it goes. Claims are also conditional on the campaign still being sendable, so a
campaign paused or cancelled mid-pass stops within one batch.
"""
import threading
import time as clock
from collections import Counter
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import or_, select, update

from ..core.timeutil import default_tz_name, utcnow
from ..extensions import db
from ..members.models import Member
from ..programme import service as programme
from .channels import ChannelError, dedupes, sender_for
from .leases import fence
from .models import Campaign, Delivery

STALE = timedelta(minutes=10)
CLAIM_BATCH = 20  # deliveries claimed per update; of an interrupted batch only the one in flight may have left
CLAIMED_COLUMNS = (Delivery.id, Delivery.channel, Delivery.address, Delivery.subject, Delivery.body, Delivery.send_id,
                   Delivery.attempts, Delivery.reason, Delivery.marketing, Delivery.member_id, Delivery.campaign_id)
SENT_WITH_NOTE = ("coupon_out_of_stock", "coupon_not_issued")
CONSENT_RECHECK_SECONDS = 1.0  # consent is asked per claimed batch, and again when a batch takes longer
SENDABLE = ("scheduled", "running", "done")  # a paused or draft campaign waits; a cancelled one is dropped


def _sendable():
    """Deliveries that may be claimed: of a sendable campaign, or service messages (no campaign:
    crm/notifications, written queued by the event itself)."""
    return or_(Delivery.campaign_id.is_(None),
               Delivery.campaign_id.in_(select(Campaign.id).where(Campaign.state.in_(SENDABLE))))
_limiter = MovingWindowRateLimiter(MemoryStorage())  # per process: only one scheduler is active
_running = {"count": 0, "lock": threading.Lock()}  # dispatches running in this process (ticks may overlap)


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def quiet_until(now: datetime, tz_name: str | None) -> datetime | None:
    """If `now` falls in the quiet hours where the member is, when they end; else None."""
    start, end = _clock(programme.get("quiet_hours_start")), _clock(programme.get("quiet_hours_end"))
    if start == end:
        return None
    zone = ZoneInfo(tz_name or default_tz_name())
    local = now.astimezone(zone)
    t = local.time()
    quiet = (start <= t or t < end) if start > end else (start <= t < end)
    if not quiet:
        return None
    day = local.date() + timedelta(days=1) if start > end and t >= start else local.date()
    return datetime.combine(day, end, zone)


MAX_BACKOFF = timedelta(days=1)


def _backoff(attempts: int) -> timedelta:
    """Doubling after each failure, at most a day (many attempts would overflow a date)."""
    seconds = current_app.config["DELIVERY_RETRY_SECONDS"] * 2 ** min(max(attempts - 1, 0), 32)
    return min(timedelta(seconds=seconds), MAX_BACKOFF)


def reconcile_interrupted(now: datetime, generation: int | None = None, *, own: bool = False) -> int:
    """Deliveries claimed by a process that never reported back: by an earlier leader (its
    lease is gone, so is it), with `own` by this leader in an earlier beat (it ended on a
    database error; only when no other dispatch runs in this process), or longer than STALE
    ago. Of each batch (leader, channel, claim time) only the lowest id may have left
    (results are committed in id order before the next send): it is resent with the same id
    where the channel dedupes by it, else `unknown`; the rest go back to the queue. Unfenced
    claims (no generation) may all have left. One interrupted again after such a resend is
    `unknown`: its send may be what kills the beat, and resent first every time it would
    hold up every message behind it."""
    config = current_app.config
    interrupted = Delivery.claimed_at < now - STALE
    if generation is not None:
        interrupted = interrupted | (Delivery.claimed_generation < generation)
        if own:
            interrupted = interrupted | (Delivery.claimed_generation == generation)
    rows = db.session.execute(select(Delivery.id, Delivery.channel, Delivery.claimed_generation, Delivery.reason,
                                     Delivery.claimed_at).where(Delivery.status == "sending", interrupted)).all()
    first = {}
    for row in rows:
        if row.claimed_generation is not None:
            key = (row.claimed_generation, row.channel, row.claimed_at)
            first[key] = min(first.get(key, row.id), row.id)
    in_flight = set(first.values()) | {row.id for row in rows if row.claimed_generation is None}
    n = 0
    never_left = [row.id for row in rows if row.id not in in_flight]
    if never_left:
        n += db.session.execute(update(Delivery).where(Delivery.id.in_(never_left), Delivery.status == "sending")
                                .values(status="queued", claimed_at=None, claimed_generation=None)).rowcount
    unknown = dict(status="unknown", reason="interrupted_unknown")
    for channel in ("email", "sms"):
        for again in (False, True):  # interrupted again after a resend: it may be what ends the beat; no more
            ids = [row.id for row in rows if row.id in in_flight and row.channel == channel
                   and (row.reason == "interrupted_resent") == again]
            if not ids:
                continue
            values = (dict(status="queued", next_attempt_at=now, reason="interrupted_resent")
                      if dedupes(channel, config) and not again else unknown)
            n += db.session.execute(update(Delivery).where(
                Delivery.id.in_(ids), Delivery.status == "sending").values(**values)).rowcount
    return n


def _claim(ids: list[int], now: datetime, generation: int | None = None) -> list[int]:
    """Claim queued deliveries in one conditional update; the ids this process won."""
    if not ids:
        return []
    won = db.session.scalars(update(Delivery).where(Delivery.id.in_(ids), Delivery.status == "queued",
                                                    _sendable())  # paused or cancelled meanwhile: not now
                             .values(status="sending", claimed_at=now, claimed_generation=generation)
                             .returning(Delivery.id)).all()
    if won:
        fence(generation)  # only a proven leader's claims are committed
    return sorted(won)


def _release(ids: list[int], generation: int | None):
    """Give back claimed deliveries this process will not send now (it lost the lead): queued
    again, unless the next leader has already reconciled them. If the database is gone too the
    error ends this beat (no more claims beside the ones left) and they stay `sending`: the
    next beat reconciles them as interrupted."""
    if not ids:
        return
    db.session.execute(update(Delivery).where(Delivery.id.in_(ids), Delivery.status == "sending",
                                              Delivery.claimed_generation == generation)
                       .values(status="queued", claimed_at=None, claimed_generation=None))
    db.session.commit()


def _outcome(attempts: int, reason: str, error: ChannelError | None, now: datetime) -> dict:
    """What a send attempt changes on its delivery (attempts and reason as they were before)."""
    attempts += 1
    if error is None:  # a note about the coupon stays; an earlier attempt's error goes
        return dict(attempts=attempts, status="sent", sent_at=now, reason=reason if reason in SENT_WITH_NOTE else "")
    if error.maybe_sent:  # the channel may have it and cannot drop a repeat: never resent
        return dict(attempts=attempts, status="unknown", reason="interrupted_unknown")
    if error.permanent or attempts >= current_app.config["DELIVERY_MAX_ATTEMPTS"]:
        return dict(attempts=attempts, status="failed", reason=error.reason)
    return dict(attempts=attempts, status="queued", reason=error.reason, next_attempt_at=now + _backoff(attempts))


def _send(sender, address: str, subject: str, body: str, key: str) -> ChannelError | None:
    try:
        if isinstance(sender, ChannelError):
            raise sender
        sender.send(address, subject, body, key=key)
    except ChannelError as exc:
        return exc
    return None


def send_one(delivery: Delivery, sender, now: datetime) -> str:
    """Send a claimed delivery (an ORM object) and record the outcome on it (the caller commits)."""
    error = _send(sender, delivery.address, delivery.subject, delivery.body, delivery.dedupe_key())
    for name, value in _outcome(delivery.attempts, delivery.reason, error, now).items():
        setattr(delivery, name, value)
    return delivery.status


def _send_claimed(row, sender, now: datetime, address: str | None = None) -> str:
    """Send a claimed delivery read as a plain row and write the outcome with one update (the
    caller commits): no ORM object to reload after every commit. `address`: the member's
    address now, when it changed since the message was queued (recorded with the outcome)."""
    key = row.send_id or Delivery.legacy_key(row.id)
    to = address or row.address
    values = _outcome(row.attempts, row.reason, _send(sender, to, row.subject, row.body, key), now)
    if to != row.address:
        values["address"] = to
    table = Delivery.__table__  # Core on the session's connection: no ORM bookkeeping per message
    db.session.connection().execute(table.update().where(table.c.id == row.id).values(send_id=key, **values))
    return values["status"]


def drop_cancelled() -> int:
    """Messages still queued for a cancelled campaign are not sent: skipped, with why."""
    cancelled = select(Campaign.id).where(Campaign.state == "cancelled")
    return db.session.execute(update(Delivery).where(Delivery.status == "queued", Delivery.campaign_id.in_(cancelled))
                              .values(status="skipped", reason="campaign_cancelled")).rowcount


def _recheck(deliveries) -> tuple[set[int], dict[int, str]]:
    """Messages wait in the queue (quiet hours, retries): ask again before they go. Returns the
    ids that must not go — the member has withdrawn consent on the channel (or is gone); a
    service message (no campaign: crm/notifications) asks the member's service consent — and
    {id: address} for those whose member's mobile or email changed since: they go to the
    member's address now (a number given up overnight may be someone else's by morning)."""
    def service(d):
        return d.campaign_id is None and d.member_id is not None

    asking = {d.member_id for d in deliveries if d.member_id is not None and (d.marketing or service(d))}
    members = {} if not asking else {
        row.id: row for row in db.session.execute(select(
            Member.id, Member.sms_consent, Member.email_consent, Member.service_consent, Member.mobile,
            Member.email).where(Member.id.in_(asking)))}
    withdrawn, moved = set(), {}
    for d in deliveries:
        if d.member_id is None or d.member_id not in asking:
            continue
        member = members.get(d.member_id)
        if member is None or not (member.service_consent if service(d) else
                                  member.sms_consent if d.channel == "sms" else member.email_consent):
            withdrawn.add(d.id)
        elif d.channel in ("sms", "email"):
            now_at = (member.mobile if d.channel == "sms" else member.email) or ""
            if now_at != d.address:
                moved[d.id] = now_at
    return withdrawn, moved


def _defer_quiet(due, now, commit, outcome) -> list[int]:
    """Marketing messages due in the member's quiet hours wait until they end (one update per
    time zone); the ids that may go now."""
    resume_by_tz, ready = {}, []
    for delivery_id, tz_name, marketing in due:
        if marketing and tz_name not in resume_by_tz:
            resume_by_tz[tz_name] = quiet_until(now, tz_name)
        if marketing and resume_by_tz[tz_name] is not None:
            continue
        ready.append(delivery_id)
    deferred = {tz: [d for d, t, m in due if m and t == tz] for tz, resume in resume_by_tz.items() if resume}
    for tz_name, ids in deferred.items():
        outcome["deferred"] += db.session.execute(update(Delivery).where(
            Delivery.id.in_(ids), Delivery.status == "queued").values(next_attempt_at=resume_by_tz[tz_name])).rowcount
    if deferred:
        commit()
    return ready


def _pass(channel, rate, sender, now, commit, outcome, leading, generation) -> bool:
    """One pass over the due deliveries of a channel; False when nothing more can go now.
    Deliveries are claimed CLAIM_BATCH at a time (one update, one fence, one commit), then
    each is sent and its result committed before the next leaves."""
    page = max(rate.amount, 1) * 5
    due = db.session.execute(select(Delivery.id, Delivery.tz, Delivery.marketing).where(
        Delivery.status == "queued", Delivery.channel == channel, Delivery.next_attempt_at <= now,
        _sendable()).order_by(Delivery.next_attempt_at, Delivery.id).limit(page)).all()
    if not leading():
        return False
    ready = _defer_quiet(due, now, commit, outcome)
    for start in range(0, len(ready), CLAIM_BATCH):
        if not leading():
            return False  # cannot prove this process still leads: claim nothing more
        batch = ready[start:start + CLAIM_BATCH]
        allowed = min(len(batch), _limiter.get_window_stats(rate, channel).remaining)  # room now; hit on send
        claimed = _claim(batch[:allowed], now, generation)
        if claimed:
            commit()
        deliveries = db.session.execute(select(*CLAIMED_COLUMNS).where(Delivery.id.in_(claimed))
                                        .order_by(Delivery.id)).all() if claimed else []
        (withdrawn, moved), asked = _recheck(deliveries), clock.monotonic()
        commit()  # no transaction open while a message is out (on SQLite it would hold every writer back)
        for i, delivery in enumerate(deliveries):
            if not leading():  # stop before the next message; give the rest back
                _release([d.id for d in deliveries[i:]], generation)
                return False
            if clock.monotonic() - asked > CONSENT_RECHECK_SECONDS:  # a slow batch: ask the rest again
                (withdrawn, moved), asked = _recheck(deliveries[i:]), clock.monotonic()
                commit()
            if delivery.id in withdrawn or moved.get(delivery.id) == "":  # no consent, or no address now
                why = "no_consent" if delivery.id in withdrawn else ("no_mobile" if channel == "sms" else "no_email")
                db.session.execute(update(Delivery).where(Delivery.id == delivery.id)
                                   .values(status="skipped", reason=why))
            elif not _limiter.hit(rate, channel):  # the window filled meanwhile (another beat in this process)
                _release([d.id for d in deliveries[i:]], generation)
                outcome["throttled"] += 1
                return True
            else:
                outcome[_send_claimed(delivery, sender, now, address=moved.get(delivery.id))] += 1
            commit()
        if allowed < len(batch):
            outcome["throttled"] += 1
            return True  # more to send once the window moves on
    return len(due) == page  # a full page: there may be more


def dispatch(now: datetime, *, commit, budget_seconds: float = 0.0, leading=lambda: True,
             generation: int | None = None) -> Counter:
    """Send what is due on each channel within its throttle, for up to `budget_seconds`
    (waiting for the throttle's window between passes; 0 = one pass). `commit` is called
    after every claim and every result; `leading()` is asked before every message and
    `generation` fences the claims (the scheduler lease). Returns counts by outcome."""
    with _running["lock"]:  # an earlier beat still sending (stuck on a dead connection) keeps its claims
        alone = _running["count"] == 0
        _running["count"] += 1
    try:
        return _dispatch(now, commit, budget_seconds, leading, generation, alone)
    finally:
        with _running["lock"]:
            _running["count"] -= 1


def _dispatch(now, commit, budget_seconds, leading, generation, alone) -> Counter:
    config = current_app.config
    outcome = Counter()
    if not leading():
        return outcome
    if reconcile_interrupted(now, generation, own=alone) + drop_cancelled():
        fence(generation)
        commit()
    deadline = clock.monotonic() + budget_seconds
    senders = {}
    for channel in ("email", "sms"):
        try:
            senders[channel] = sender_for(channel, config)
        except ChannelError as exc:
            senders[channel] = exc  # every delivery on this channel fails with the reason
    while True:
        more = False
        for channel in ("email", "sms"):
            rate = parse(config[f"{channel.upper()}_RATE_LIMIT"])
            more |= _pass(channel, rate, senders[channel], now, commit, outcome, leading, generation)
        if not more or clock.monotonic() >= deadline:
            return outcome
        commit()  # no transaction held while waiting for the throttle's window (SQLite: the write lock)
        clock.sleep(min(0.2, max(deadline - clock.monotonic(), 0)))
        now = utcnow()  # a real beat: keep the quiet hours and retry times honest
