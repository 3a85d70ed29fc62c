"""Campaigns: create, edit, schedule, pause, resume, cancel, preview, test send; the outbox.

States go through TRANSITIONS only. The scheduler (jobs.py) moves scheduled -> running
when an occurrence starts and running -> done when nothing more will be sent. A paused
campaign is neither fanned out nor sent (jobs.py and dispatch.py only look at scheduled
and running ones); resuming puts it back where it was (running once an occurrence has
started, else scheduled), and the scheduler carries on: a fan-out left half-way resumes
after the last member it queued, queued messages go, and occurrences that fell due while
it was paused are sent as after a scheduler outage (within SCHEDULER_CATCH_UP_DAYS), each
once: the run and delivery keys still refuse repeats.
"""
import calendar
import logging
from datetime import date, datetime, time, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..core import audit, states
from ..core.actor import Actor
from ..core.lookup import get_or_404
from ..core.phones import normalise_mobile
from ..core.timeutil import as_utc, default_tz_name, local_today, utcnow, zone
from ..coupons import service as coupons
from ..errors import Conflict, Invalid
from ..extensions import db
from ..members import service as members
from ..points import service as points
from ..wallet import service as wallet
from . import audiences, fanout, holidays, messages, optout, schedule
from .channels import ChannelError, sender_for
from .dispatch import send_one
from .models import (
    ACTIONS,
    CHANNELS,
    MAX_HOLDOUT_PERCENT,
    RECURRENCES,
    SCHEDULE_FIELDS,
    SCHEDULES,
    STATE_LABELS,
    Campaign,
    Delivery,
)

log = logging.getLogger("crm.campaigns")

# action -> (states it may start from, state it leads to)
TRANSITIONS = {
    "schedule": ({"draft"}, "scheduled"),
    "pause": ({"scheduled", "running"}, "paused"),
    "resume": ({"paused"}, "scheduled"),  # nothing of it had started yet
    "resume_running": ({"paused"}, "running"),  # "resume" of a campaign an occurrence of which has started
    "start": ({"scheduled"}, "running"),
    "finish": ({"scheduled", "running"}, "done"),
    "cancel": ({"draft", "scheduled", "running", "paused", "done"}, "cancelled"),  # done: only while messages wait
}
EDITABLE = {"draft", "scheduled", "running", "paused"}
FIELDS = ("name", "audience_id", "template_id", "channel", "coupon_type_code", "schedule", "send_at", "send_time",
          "recurrence", "holiday_key", "days_before", "starts_on", "ends_on", "marketing", "holdout_percent")
BIRTHDAY_TEMPLATE = {
    "name": "生日祝福",
    "subject": "{{ name }}{{ title }}，生日快乐",
    "body": "{{ name }}{{ title }}，{{ store }}祝您生日快乐！"
            "{% if coupon %}送您一张{{ coupon.name }}（券号 {{ coupon.code }}，{{ coupon.valid_until }} 前有效），"
            "期待您的光临。{% endif %}回TD退订",
}


def get_campaign(campaign_id: int) -> Campaign:
    return get_or_404(Campaign, campaign_id, _("No such campaign."), code="campaign_not_found")


def list_campaigns(state: str | None = None):
    birthday_campaign()
    stmt = select(Campaign).order_by(Campaign.builtin.is_(None), Campaign.id.desc())
    if state:
        stmt = stmt.where(Campaign.state == state)
    return db.session.scalars(stmt).all()


def birthday_campaign() -> Campaign:
    """The built-in birthday greeting, created (as a draft: nothing is sent until marketing
    schedules it) the first time it is needed."""
    campaign = db.session.scalar(select(Campaign).where(Campaign.builtin == "birthday"))
    if campaign is None:
        template = db.session.scalar(select(messages.MessageTemplate).where(
            messages.MessageTemplate.name == BIRTHDAY_TEMPLATE["name"]))
        if template is None:
            template = messages.MessageTemplate(**BIRTHDAY_TEMPLATE)
            db.session.add(template)
        try:
            with db.session.begin_nested():
                campaign = Campaign(name="生日祝福", builtin="birthday", template=template, channel="sms",
                                    schedule="birthday", send_time=time(9, 0), state="draft")
                db.session.add(campaign)
        except IntegrityError:  # another request created it a moment ago
            campaign = db.session.scalar(select(Campaign).where(Campaign.builtin == "birthday"))
    return campaign


def _check(campaign: Campaign):
    """Everything a campaign needs for its schedule; 422 naming the field."""
    if not (campaign.name or "").strip():
        raise Invalid(_("Give the campaign a name."), code="name_required", field="name")
    if campaign.channel not in CHANNELS:
        raise Invalid(_("Choose outbox, email or SMS."), code="invalid_channel", field="channel")
    if campaign.schedule not in SCHEDULES:
        raise Invalid(_("Unknown schedule."), code="invalid_schedule", field="schedule")
    if campaign.builtin == "birthday" and campaign.schedule != "birthday":
        raise Invalid(_("The birthday greeting always runs on birthdays."), code="invalid_schedule",
                      field="schedule")
    if campaign.schedule == "once" and campaign.send_at is None:
        raise Invalid(_("Say when to send."), code="send_at_required", field="send_at")
    if campaign.schedule == "recurring" and campaign.recurrence not in RECURRENCES:
        raise Invalid(_("Choose daily, weekly or monthly."), code="recurrence_required", field="recurrence")
    if campaign.schedule == "holiday" and campaign.holiday_key not in holidays.known_keys():
        raise Invalid(_("Choose a holiday from the calendar."), code="unknown_holiday", field="holiday_key")
    if not 0 <= (campaign.days_before or 0) <= 60:
        raise Invalid(_("Days before is 0 to 60."), code="invalid_days_before", field="days_before")
    if not 0 <= (campaign.holdout_percent or 0) <= MAX_HOLDOUT_PERCENT:
        raise Invalid(_("The holdout is 0 to %(max)d per cent of the audience.", max=MAX_HOLDOUT_PERCENT),
                      code="invalid_holdout_percent", field="holdout_percent")
    if campaign.starts_on and campaign.ends_on and campaign.ends_on < campaign.starts_on:
        raise Invalid(_("The campaign ends before it starts."), code="invalid_dates", field="ends_on")
    if campaign.template is None:
        raise Invalid(_("Choose a message template."), code="template_required", field="template_id")
    if campaign.channel == "sms" and campaign.marketing:
        optout.check_sms_body(campaign.template.body, field="template_id")
    # with a coupon type, the message must also read right when the stock has run out
    for with_coupon in ({True, False} if campaign.coupon_type is not None else {False}):
        messages.check(campaign.template.subject, campaign.template.body, with_coupon=with_coupon,
                       field_prefix="template.")


def save(actor: Actor, data: dict, campaign_id: int | None = None) -> Campaign:
    """Create a draft (no id) or change a campaign that has not ended."""
    campaign = get_campaign(campaign_id) if campaign_id else Campaign(created_by=actor.staff_id, state="draft")
    if campaign.state not in EDITABLE:
        raise Conflict(_("A finished or cancelled campaign cannot be changed."), code="campaign_closed",
                       state=campaign.state)
    data = {k: v for k, v in data.items() if k in FIELDS}
    if "template_id" in data:
        campaign.template = messages.get_template(data.pop("template_id")) if data["template_id"] else None
    if "audience_id" in data:
        audience_id = data.pop("audience_id")
        campaign.audience = audiences.get_audience(audience_id) if audience_id else None
    if "coupon_type_code" in data:
        code = data.pop("coupon_type_code")
        campaign.coupon_type = coupons.get_definition(code) if code else None
    if isinstance(data.get("send_at"), datetime) and data["send_at"].tzinfo is None:
        raise Invalid(_("Give the time with its offset."), code="invalid_send_at", field="send_at")
    for key, value in data.items():
        setattr(campaign, key, value.strip() if isinstance(value, str) else value)
    _clear_other_schedules(campaign)
    if campaign.schedule == "recurring" and campaign.starts_on is None:
        campaign.starts_on = local_today()  # the chain's date: weekly sends fall on the weekday marketing sees
    _check(campaign)
    db.session.add(campaign)
    db.session.flush()
    audit.record(actor, "campaign.save", entity=campaign, name=campaign.name, schedule=campaign.schedule,
                 channel=campaign.channel, holdout_percent=campaign.holdout_percent)
    return campaign


# What a field of another schedule is reset to (send_time and the date window are kept: harmless, and
# the once schedule ends with its one send anyway).
_CLEARED = {"send_at": None, "recurrence": None, "holiday_key": None, "days_before": 0}


def _clear_other_schedules(campaign: Campaign):
    """A campaign switched from one schedule to another keeps none of the old one's settings
    (a stale holiday would still count as planned on, a stale send time be shown)."""
    used = SCHEDULE_FIELDS.get(campaign.schedule, ())
    for name, empty in _CLEARED.items():
        if name not in used:
            setattr(campaign, name, empty)


def transition(actor: Actor | None, campaign: Campaign, action: str) -> Campaign:
    """One conditional UPDATE (core/states.py): a pause racing the scheduler's start, or two
    people cancelling, cannot both win; the loser gets 409 with the state it found."""
    allowed, target = TRANSITIONS[action]
    if campaign.state not in allowed:
        raise _cannot(campaign.state, action)
    extra = {}
    if action in ("schedule", "resume", "resume_running"):  # it is about to send: it must still be sendable
        _check(campaign)
    if action == "schedule":
        extra["scheduled_at"] = utcnow()
    states.change(campaign, TRANSITIONS, action, column="state", conflict=lambda found: _cannot(found, action),
                  **extra)
    if actor is not None:
        audit.record(actor, f"campaign.{action.removesuffix('_running')}", entity=campaign, state=target)
    return campaign


def _cannot(state, action) -> Conflict:
    return Conflict(_("That cannot be done now: the campaign is “%(state)s”.", state=STATE_LABELS.get(state, state)),
                    code="invalid_transition", state=state, action=action)


def act(actor: Actor, campaign_id: int, action: str) -> Campaign:
    """A person's action on a campaign: schedule, pause, resume or cancel."""
    if action not in ACTIONS:
        raise Invalid(_("Unknown action."), code="invalid_action", field="action")
    campaign = get_campaign(campaign_id)
    if action == "cancel" and campaign.state == "done" and not fanout.pending(campaign.id):
        raise Conflict(_("Every message of this campaign has gone; there is nothing left to cancel."),
                       code="invalid_transition", state=campaign.state, action=action)
    if action == "resume" and fanout.started(campaign.id):
        action = "resume_running"
    return transition(actor, campaign, action)


def holiday_date_fn(campaign: Campaign):
    return (lambda year: holidays.date_of(campaign.holiday_key, year)) if campaign.holiday_key else None


def next_run(campaign: Campaign, now: datetime | None = None) -> datetime | None:
    if campaign.state not in ("scheduled", "running"):
        return None
    return schedule.next_run(campaign, now or utcnow(), tz=default_tz_name(), holiday_date=holiday_date_fn(campaign))


def preview(campaign_id: int, samples: int = 3) -> dict:
    """How many members the audience holds now and the first few messages as they would read,
    with this campaign's coupon as the send would give it (its name, and the expiry the next
    send would set: for a birthday greeting, the end of that member's birthday month)."""
    campaign = get_campaign(campaign_id)
    filters = campaign.audience.filters if campaign.audience else {}
    count = audiences.count(filters)
    where = audiences.conditions(filters)
    rows = db.session.scalars(select(members.Member).where(*where).order_by(members.Member.id).limit(samples)).all()
    send_day = _next_send_day(campaign)
    out = []
    for member in rows:
        context = member_context(member, _sample_coupon(campaign, send_day, _birthday_greeted(campaign, member,
                                                                                              send_day)))
        out.append({"member_id": member.id, "name": member.name, **_message(campaign, context)})
    return {"count": count, "samples": out, "next_run": next_run(campaign)}


def _message(campaign: Campaign, context: dict) -> dict:
    """Subject (email and outbox only: an SMS has none) and body for one reader; a template over
    budget is a 422 here too."""
    subject = messages.render(campaign.template.subject, context, field="template.subject") \
        if fanout.has_subject(campaign) else ""
    return {"subject": subject, "body": messages.render(campaign.template.body, context, field="template.body")}


def _next_send_day(campaign: Campaign) -> date:
    """The chain's date the campaign next sends on (a draft: as if scheduled now; a time
    already past: today, as the scheduler sends it at once)."""
    now = utcnow()
    if campaign.schedule == "once":
        at = max(as_utc(campaign.send_at), now) if campaign.send_at else now
    else:
        at = schedule.next_run(campaign, now, tz=default_tz_name(), holiday_date=holiday_date_fn(campaign)) or now
    return at.astimezone(zone()).date()


def _birthday_greeted(campaign: Campaign, member, send_day: date) -> date | None:
    """For a birthday greeting: the member's next birthday it would be sent for (29 February
    is greeted on the 28th in common years); else None."""
    if campaign.schedule != "birthday":
        return None
    first = send_day + timedelta(days=campaign.days_before)
    if member is None or member.birthday_month is None:
        return first  # the sample reader: a birthday on the next greeting day
    for year in (first.year, first.year + 1):
        last = calendar.monthrange(year, member.birthday_month)[1]
        day = date(year, member.birthday_month, min(member.birthday_day, last))
        if day >= first:
            return day
    return first


def _sample_coupon(campaign: Campaign, send_day: date, birthday: date | None) -> dict | None:
    """The campaign's own coupon as its message would show it (a sample code)."""
    if campaign.coupon_type is None:
        return None
    _valid_from, until = fanout.coupon_dates(campaign.coupon_type, send_day, birthday)
    return {**messages.SAMPLE_COUPON, "name": campaign.coupon_type.name, "valid_until": until.isoformat()}


def member_context(member, coupon: dict | None) -> dict:
    return {"name": member.name, "title": messages.TITLES.get(member.gender, ""), "level": member.level.name,
            "points": points.balance(member.id), "wallet": f"{wallet.balances(member.id)['balance'] / 100:.2f}",
            "store": member.store.name, "coupon": coupon}


def test_send(actor: Actor, campaign_id: int, address: str) -> Delivery:
    """Send the campaign's message (for a sample member) to a staff address now; recorded in the outbox."""
    campaign = get_campaign(campaign_id)
    address = (address or "").strip()
    if not address:
        raise Invalid(_("Give an address to send the test to."), code="address_required", field="address")
    if campaign.channel == "email" and "@" not in address:
        raise Invalid(_("Give an email address."), code="invalid_address", field="address")
    if campaign.channel == "sms":
        try:
            address = normalise_mobile(address)
        except ValueError as exc:
            raise Invalid(str(exc), code="invalid_address", field="address") from None
    send_day = _next_send_day(campaign)  # the sample reader gets this campaign's coupon, as the send would give it
    context = {**messages.SAMPLE, "coupon": _sample_coupon(campaign, send_day, _birthday_greeted(campaign, None,
                                                                                                 send_day))}
    now = utcnow()
    delivery = Delivery(campaign_id=campaign.id, occurrence=f"test-{now:%Y%m%d%H%M%S%f}", member_id=None,
                        channel=campaign.channel, address=address, marketing=False, attempts=0,
                        **_message(campaign, context), status="sending", claimed_at=now)
    db.session.add(delivery)
    if campaign.channel == "outbox":
        delivery.status, delivery.sent_at = "sent", now
    else:
        try:
            sender = sender_for(campaign.channel, current_app.config)
        except ChannelError as exc:
            sender = exc
        send_one(delivery, sender, now)
        if delivery.status == "queued":  # a test is not retried
            delivery.status = "failed"
        if delivery.status == "failed":  # the person sees it in words (models.reason_text); the detail is here
            log.warning("test send of campaign %s to %s failed: %s", campaign.id, campaign.channel, delivery.reason)
    db.session.flush()
    audit.record(actor, "campaign.test_send", entity=campaign, address=address, status=delivery.status)
    return delivery


def deliveries(*, status=None, channel=None, campaign_id=None, member_id=None):
    stmt = select(Delivery).order_by(Delivery.id.desc())
    for column, value in ((Delivery.status, status), (Delivery.channel, channel),
                          (Delivery.campaign_id, campaign_id), (Delivery.member_id, member_id)):
        if value:
            stmt = stmt.where(column == value)
    return stmt


def status_totals(campaign_id=None) -> dict:
    stmt = select(Delivery.status, func.count()).group_by(Delivery.status)
    if campaign_id:
        stmt = stmt.where(Delivery.campaign_id == campaign_id)
    return dict(db.session.execute(stmt).all())


def send_at_local(campaign: Campaign):
    """The once-schedule's time in the chain's zone, for forms."""
    return as_utc(campaign.send_at).astimezone(zone()) if campaign.send_at else None

