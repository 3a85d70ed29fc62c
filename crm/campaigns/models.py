"""Greetings and campaigns: holidays, audiences, message templates, campaigns, deliveries.

A delivery is one message to one member for one occurrence of a campaign; the unique
key (campaign, occurrence, member) is what makes "never twice" hold even when two
scheduler processes run: the second insert fails and its whole batch (coupons included)
rolls back.
"""
import uuid
from datetime import date, datetime, time

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.timeutil import utcnow
from ..extensions import db

CHANNELS = ("outbox", "email", "sms")
CHANNEL_LABELS = {"outbox": _l("Outbox only"), "email": _l("Email"), "sms": _l("SMS")}
SCHEDULES = ("once", "recurring", "holiday", "birthday")
SCHEDULE_LABELS = {"once": _l("Once"), "recurring": _l("Recurring"), "holiday": _l("On a holiday"),
                   "birthday": _l("Member's birthday")}
# The fields each schedule uses; the others' are ignored (and cleared when a campaign is saved).
SCHEDULE_FIELDS = {"once": ("send_at",),
                   "recurring": ("recurrence", "send_time", "starts_on", "ends_on"),
                   "holiday": ("holiday_key", "days_before", "send_time", "starts_on", "ends_on"),
                   "birthday": ("days_before", "send_time", "starts_on", "ends_on")}
RECURRENCES = ("daily", "weekly", "monthly")
ACTIONS = ("schedule", "pause", "resume", "cancel")  # what a person may do to a campaign (service.TRANSITIONS)
# paused: held by marketing; nothing of it is fanned out or sent until it is resumed
STATES = ("draft", "scheduled", "running", "paused", "done", "cancelled")
STATE_LABELS = {"draft": _l("Draft"), "scheduled": _l("Scheduled"), "running": _l("Running"),
                "paused": _l("Paused"), "done": _l("Done"), "cancelled": lazy_pgettext("campaign", "Cancelled")}
# unknown: the send was interrupted after the message may have left (the channel cannot dedupe a resend)
# held_out: the member is in the occurrence's holdout (control) group: recorded, never sent, no coupon
DELIVERY_STATUSES = ("queued", "sending", "sent", "failed", "skipped", "unknown", "held_out")
DELIVERY_LABELS = {"queued": _l("Queued"), "sending": _l("Sending"), "sent": _l("Sent"), "failed": _l("Failed"),
                   "skipped": _l("Skipped"), "unknown": _l("Unknown: may have been sent"),
                   "held_out": _l("Held out: control group, not sent")}
# The two groups of an occurrence's holdout test (Delivery.arm): members who could be reached on the
# channel either get the message (treated) or are held out; members who could not be reached are in neither.
ARMS = ("treated", "holdout")
MAX_HOLDOUT_PERCENT = 50

# Why a delivery was skipped or failed, for people (other reasons are the channel's own words).
REASON_LABELS = {"no_consent": _l("No consent for this channel"), "no_email": _l("No email address"),
                 "no_mobile": _l("No mobile number"),
                 "coupon_out_of_stock": _l("Coupon out of stock: sent without it"),
                 "coupon_not_issued": _l("Coupon type no longer issued: sent without it"),
                 "campaign_cancelled": _l("Campaign cancelled before it was sent"),
                 "interrupted_unknown": _l("Interrupted while sending: the message may or may not have arrived; "
                                           "not resent to avoid a duplicate"),
                 "interrupted_resent": _l("Interrupted while sending: sent again with the same id, which the "
                                          "gateway keeps from arriving twice")}

# A channel's own words (channels.py: technical, for the administrator and the log) -> what marketing reads.
# Matched on how the reason starts; the first match wins.
CHANNEL_REASONS = (
    ("sms not configured", _l("SMS sending is not set up yet — ask your administrator.")),
    ("email not configured", _l("Email sending is not set up yet — ask your administrator.")),
    ("gateway unreachable", _l("The SMS service could not be reached.")),
    ("gateway 429", _l("The SMS service was busy.")),
    ("gateway 4", _l("The SMS service refused this message: check the mobile number and the text.")),
    ("gateway ", _l("The SMS service had a problem.")),
    ("recipient refused", _l("The mail server refused this address.")),
    ("smtp:", _l("The mail server could not take the message.")),
)


def reason_text(reason: str | None) -> str:
    """Why a message was skipped or failed, in words marketing understands (translated);
    the stored reason keeps the technical detail for the administrator."""
    if not reason:
        return ""
    if reason in REASON_LABELS:
        return str(REASON_LABELS[reason])
    for prefix, label in CHANNEL_REASONS:
        if reason.startswith(prefix):
            return str(label)
    code, _sep, rest = reason.partition(": ")
    if code.startswith("template_"):  # fanout.py: the template's own message, already in words
        return str(_l("The message could not be written for this member: %(why)s", why=rest))
    return str(_l("The message could not be sent; your administrator can see why in the log."))


def is_technical(reason: str | None) -> bool:
    """Whether a reason carries technical detail beyond its words (shown to administrators only)."""
    return bool(reason) and reason not in REASON_LABELS and not reason.startswith("template_")


def _in(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class CustomHoliday(db.Model):
    """A one-off date the admin adds to the calendar (a store anniversary, a local festival)."""
    __tablename__ = "custom_holidays"
    __table_args__ = (UniqueConstraint("key", "date", name="uq_custom_holidays_key_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    date: Mapped[date]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Audience(db.Model):
    """A saved member filter (see audiences.py for the filter keys)."""
    __tablename__ = "audiences"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    filters: Mapped[dict] = mapped_column(JSON, default=dict)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MessageTemplate(db.Model):
    """Subject and body in sandboxed Jinja, checked when saved."""
    __tablename__ = "message_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    subject: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Campaign(db.Model):
    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
        CheckConstraint(_in("schedule", SCHEDULES), name="schedule"),
        CheckConstraint(_in("state", STATES), name="state"),
        CheckConstraint(f"recurrence IS NULL OR {_in('recurrence', RECURRENCES)}", name="recurrence"),
        CheckConstraint("days_before >= 0 AND days_before <= 60", name="days_before"),
        CheckConstraint(f"holdout_percent >= 0 AND holdout_percent <= {MAX_HOLDOUT_PERCENT}", name="holdout_percent"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    audience_id: Mapped[int | None] = mapped_column(ForeignKey("audiences.id"))  # None: every member
    template_id: Mapped[int] = mapped_column(ForeignKey("message_templates.id"))
    channel: Mapped[str] = mapped_column(String(8), default="outbox")
    coupon_type_id: Mapped[int | None] = mapped_column(ForeignKey("coupon_definitions.id"))
    schedule: Mapped[str] = mapped_column(String(12), default="once")
    send_at: Mapped[datetime | None]  # once
    send_time: Mapped[time] = mapped_column(default=time(9, 0))  # local time for the other schedules
    recurrence: Mapped[str | None] = mapped_column(String(8))
    holiday_key: Mapped[str | None] = mapped_column(String(32))
    days_before: Mapped[int] = mapped_column(default=0)  # holiday and birthday schedules
    starts_on: Mapped[date | None]
    ends_on: Mapped[date | None]
    marketing: Mapped[bool] = mapped_column(default=True)  # marketing waits out the quiet hours
    # The share (per cent) of each occurrence's reachable audience held out as a control group (fanout.holdout)
    holdout_percent: Mapped[int] = mapped_column(default=0)
    state: Mapped[str] = mapped_column(String(12), default="draft")
    scheduled_at: Mapped[datetime | None]  # when it was last scheduled: catch-up never reaches before it
    builtin: Mapped[str | None] = mapped_column(String(16), unique=True)  # "birthday" for the built-in greeting
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    audience = relationship(Audience, lazy="joined")
    template = relationship(MessageTemplate, lazy="joined")
    coupon_type = relationship("CouponDefinition", lazy="joined")


class CampaignRun(db.Model):
    """One occurrence of a campaign being queued (for birthdays: one per store time zone).
    Its unique key lets only one scheduler fan an occurrence out; the holder renews its
    lease with every batch, a run left `running` by a crashed process is taken over once
    the lease lapses, and the delivery key stops repeats even then."""
    __tablename__ = "campaign_runs"
    __table_args__ = (UniqueConstraint("campaign_id", "occurrence", "scope", name="uq_campaign_runs_occurrence"),
                      CheckConstraint("status IN ('running', 'done')", name="status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    occurrence: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(8), default="running")
    queued: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    # Members are fanned out in id order, a committed batch at a time: a run taken over
    # after a crash resumes after the last member its predecessor committed.
    after_member_id: Mapped[int] = mapped_column(default=0)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The scheduler lease generation (jobs.SchedulerLease) of the leader fanning it out: a
    # later leader takes the run over at once, an earlier one can no longer write to it.
    lease_generation: Mapped[int | None]
    finished_at: Mapped[datetime | None]


class Delivery(db.Model):
    """One message: the outbox lists them all; email and SMS ones are also sent."""
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "occurrence", "member_id", name="uq_deliveries_once"),
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status"),
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
        CheckConstraint(f"arm IS NULL OR {_in('arm', ARMS)}", name="arm"),
        Index("ix_deliveries_due", "status", "channel", "next_attempt_at"),
        Index("ix_deliveries_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    occurrence: Mapped[str] = mapped_column(String(32))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)  # None: a test send
    channel: Mapped[str] = mapped_column(String(8))
    address: Mapped[str] = mapped_column(String(255), default="")
    subject: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    tz: Mapped[str] = mapped_column(String(64), default="")  # the member's store zone, for quiet hours
    marketing: Mapped[bool] = mapped_column(default=True)
    coupon_id: Mapped[int | None] = mapped_column(ForeignKey("coupons.id"))
    status: Mapped[str] = mapped_column(String(8), default="queued")
    reason: Mapped[str] = mapped_column(String(255), default="")
    # treated or holdout: the member's group in the occurrence's holdout test, decided at fan-out (None: a
    # member who could not be reached on the channel, a test send, a level notice)
    arm: Mapped[str | None] = mapped_column(String(8))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    claimed_generation: Mapped[int | None]  # the scheduler lease generation that claimed it for sending
    # Stable per message, sent to the channel as its dedupe key (Idempotency-Key / Message-ID):
    # a resend after an interrupted send reaches the member once at a gateway that dedupes.
    send_id: Mapped[str | None] = mapped_column(String(32), default=lambda: uuid.uuid4().hex)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    campaign = relationship(Campaign, lazy="joined")
    member = relationship("Member", lazy="select")


    def dedupe_key(self) -> str:
        """The id a channel dedupes this message by (a row from before send ids gets its row id)."""
        if not self.send_id:
            self.send_id = self.legacy_key(self.id) if self.id else uuid.uuid4().hex
        return self.send_id

    @staticmethod
    def legacy_key(delivery_id: int) -> str:
        return f"delivery-{delivery_id}"


class SchedulerLease(db.Model):
    """Leadership among `crm scheduler` processes: one row per lease name. The holder renews
    `expires_at` every few seconds; another process takes it only after it has expired,
    and every take raises `generation` (the fencing token written with the leader's work)."""
    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    generation: Mapped[int]
    expires_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
