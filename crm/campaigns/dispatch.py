"""Sending queued email and SMS deliveries: quiet hours, throttle, retries with backoff.

Each delivery is claimed with a conditional update (queued -> sending, with the leader's
lease generation, fenced) and committed before the message leaves the process, so two
schedulers never send the same one; the result is committed right after. Every message
carries its delivery's stable send id as the channel's dedupe key (channels.py).

A delivery left `sending` was interrupted between the claim and the result: the gateway
may or may not have taken it. The next leader (a later generation: at once; otherwise
after STALE) resends it with the same id on a channel that dedupes by it (the SMS
gateway, unless SMS_GATEWAY_DEDUPE=0), so it arrives once; on one that cannot (SMTP) it
is marked `unknown`, never resent: a member may miss a message, but never gets it twice.
"""
import time as clock
from collections import Counter
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import select, update

from ..core.timeutil import default_tz_name, utcnow
from ..extensions import db
from ..members import service as members
from ..programme import service as programme
from .channels import ChannelError, dedupes, sender_for
from .leases import fence
from .models import Campaign, Delivery

STALE = timedelta(minutes=10)
SENT_WITH_NOTE = ("coupon_out_of_stock", "coupon_not_issued")
_limiter = MovingWindowRateLimiter(MemoryStorage())  # per process: only one scheduler is active


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


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=current_app.config["DELIVERY_RETRY_SECONDS"] * 2 ** (attempts - 1))


def reconcile_interrupted(now: datetime, generation: int | None = None) -> int:
    """Deliveries claimed by a process that never reported back: by an earlier leader
    (its lease is gone, so is it) or longer than STALE ago. Resent with the same id where
    the channel dedupes by it, else `unknown`."""
    config = current_app.config
    interrupted = Delivery.claimed_at < now - STALE
    if generation is not None:
        interrupted = interrupted | (Delivery.claimed_generation < generation)
    n = 0
    for channel in ("email", "sms"):
        values = (dict(status="queued", next_attempt_at=now, reason="interrupted_resent") if dedupes(channel, config)
                  else dict(status="unknown", reason="interrupted_unknown"))
        n += db.session.execute(update(Delivery).where(
            Delivery.status == "sending", Delivery.channel == channel, interrupted).values(**values)).rowcount
    return n


def _claim(delivery_id: int, now: datetime, generation: int | None = None) -> bool:
    claimed = db.session.execute(update(Delivery).where(Delivery.id == delivery_id, Delivery.status == "queued")
                                 .values(status="sending", claimed_at=now, claimed_generation=generation)).rowcount
    if claimed == 1:
        fence(generation)  # only a proven leader's claim is committed
    return claimed == 1


def _record(delivery: Delivery, error: ChannelError | None, now: datetime):
    delivery.attempts += 1
    if error is None:  # a note about the coupon stays; an earlier attempt's error goes
        delivery.status, delivery.sent_at = "sent", now
        delivery.reason = delivery.reason if delivery.reason in SENT_WITH_NOTE else ""
    elif error.permanent or delivery.attempts >= current_app.config["DELIVERY_MAX_ATTEMPTS"]:
        delivery.status, delivery.reason = "failed", error.reason
    else:
        delivery.status, delivery.reason = "queued", error.reason
        delivery.next_attempt_at = now + _backoff(delivery.attempts)


def send_one(delivery: Delivery, sender, now: datetime) -> str:
    """Send a claimed delivery and record the outcome (the caller commits)."""
    error = None
    try:
        if isinstance(sender, ChannelError):
            raise sender
        sender.send(delivery.address, delivery.subject, delivery.body, key=delivery.dedupe_key())
    except ChannelError as exc:
        error = exc
    _record(delivery, error, now)
    return delivery.status


def drop_cancelled() -> int:
    """Messages still queued for a cancelled campaign are not sent: skipped, with why."""
    cancelled = select(Campaign.id).where(Campaign.state == "cancelled")
    return db.session.execute(update(Delivery).where(Delivery.status == "queued", Delivery.campaign_id.in_(cancelled))
                              .values(status="skipped", reason="campaign_cancelled")).rowcount


def _consent_withdrawn(delivery: Delivery) -> bool:
    """A marketing message waits in the queue (quiet hours, retries): ask again before it goes."""
    if not delivery.marketing or delivery.member_id is None:
        return False
    member = members.find_member(delivery.member_id)
    return member is None or not (member.sms_consent if delivery.channel == "sms" else member.email_consent)


def _pass(channel, rate, sender, now, commit, outcome, leading, generation) -> bool:
    """One pass over the due deliveries of a channel; False when nothing more can go now."""
    sendable = select(Campaign.id).where(Campaign.state.in_(("scheduled", "running", "done")))  # paused: wait
    due = db.session.execute(select(Delivery.id, Delivery.tz, Delivery.marketing).where(
        Delivery.status == "queued", Delivery.channel == channel, Delivery.next_attempt_at <= now,
        Delivery.campaign_id.in_(sendable)).order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(max(rate.amount, 1) * 5)).all()
    for delivery_id, tz_name, marketing in due:
        if not leading():
            return False  # cannot prove this process still leads: stop before the next message
        resume = quiet_until(now, tz_name) if marketing else None
        if resume is not None:
            db.session.execute(update(Delivery).where(Delivery.id == delivery_id, Delivery.status == "queued")
                               .values(next_attempt_at=resume))
            commit()
            outcome["deferred"] += 1
            continue
        if not _limiter.test(rate, channel):
            outcome["throttled"] += 1
            return True  # more to send once the window moves on
        if not _claim(delivery_id, now, generation):
            continue  # another scheduler has it
        commit()
        delivery = db.session.get(Delivery, delivery_id)
        if _consent_withdrawn(delivery):
            delivery.status, delivery.reason = "skipped", "no_consent"
        else:
            _limiter.hit(rate, channel)
            outcome[send_one(delivery, sender, now)] += 1
        commit()
    return len(due) == max(rate.amount, 1) * 5  # a full page: there may be more


def dispatch(now: datetime, *, commit, budget_seconds: float = 0.0, leading=lambda: True,
             generation: int | None = None) -> Counter:
    """Send what is due on each channel within its throttle, for up to `budget_seconds`
    (waiting for the throttle's window between passes; 0 = one pass). `commit` is called
    after every claim and every result; `leading()` is asked before every message and
    `generation` fences the claims (the scheduler lease). Returns counts by outcome."""
    config = current_app.config
    outcome = Counter()
    if not leading():
        return outcome
    if reconcile_interrupted(now, generation) + drop_cancelled():
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
        clock.sleep(min(0.2, max(deadline - clock.monotonic(), 0)))
        now = utcnow()  # a real beat: keep the quiet hours and retry times honest
