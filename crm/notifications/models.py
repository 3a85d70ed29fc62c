"""Transactional (service) notifications: the admin-editable template of each kind and
channel, and one row per event and channel that says it was written.

A notification is not marketing: it needs the member's `service_consent` (on by default),
not their SMS or email marketing consent. It is written, with its text, in the transaction
of the event itself (the top-up, the payment, the card issue ...) by one INSERT … ON
CONFLICT DO NOTHING, so a rolled-back event leaves none, and the unique key (kind,
event_ref, channel) lets an event write its message once however often it is retried. The
scheduler's next beat hands it to the outbox as an ordinary `deliveries` row without a
campaign, which the campaigns dispatcher sends; `send_id` links the two and is the
channel's dedupe key.
"""
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..core.timeutil import utcnow
from ..extensions import db

KINDS = ("welcome", "topup", "payment", "points_earned", "points_expiring", "level_change")
KIND_LABELS = {"welcome": _l("Welcome on card issue"), "topup": _l("Top-up receipt"),
               "payment": _l("Stored-value payment alert"), "points_earned": _l("Points earned"),
               "points_expiring": _l("Points about to expire"), "level_change": _l("Level change")}
CHANNELS = ("sms", "email")
# Payment alerts go at any hour; the other kinds wait out the quiet hours (programme rules).
IMMEDIATE = frozenset({"payment"})

# The placeholders each kind's template may use (checked when a template is saved).
COMMON_FIELDS = ("name", "title", "store")
FIELDS = {
    "welcome": COMMON_FIELDS + ("card_last4", "level"),
    "topup": COMMON_FIELDS + ("amount", "bonus", "balance"),
    "payment": COMMON_FIELDS + ("amount", "balance", "time"),
    "points_earned": COMMON_FIELDS + ("points", "balance"),
    "points_expiring": COMMON_FIELDS + ("points", "expiry_date", "days"),
    "level_change": COMMON_FIELDS + ("level", "old_level", "direction", "reason"),
}

# The texts a new installation sends (service messages are in Chinese); `enabled` as shipped.
DEFAULTS = {
    ("welcome", "sms"): ("", "{name}{title}您好，欢迎加入会员！您的会员卡（尾号{card_last4}）已开通，"
                             "当前等级{level}。", True),
    ("welcome", "email"): ("欢迎加入会员", "{name}{title}您好：\n\n欢迎加入会员！您的会员卡（尾号{card_last4}）已开通，"
                                         "当前等级{level}。期待您的光临。", True),
    ("topup", "sms"): ("", "{name}{title}您好，您已成功充值{amount}元，赠送{bonus}元，当前储值余额{balance}元。", True),
    ("topup", "email"): ("充值成功通知", "{name}{title}您好：\n\n您于{store}充值{amount}元，赠送{bonus}元，"
                                       "当前储值余额{balance}元。", True),
    ("payment", "sms"): ("", "{name}{title}您好，您于{time}在{store}使用储值支付{amount}元，当前余额{balance}元。"
                             "如非本人操作，请立即联系门店。", True),
    ("payment", "email"): ("储值消费提醒", "{name}{title}您好：\n\n您于{time}在{store}使用储值支付{amount}元，"
                                       "当前余额{balance}元。如非本人操作，请立即联系门店。", True),
    ("points_earned", "sms"): ("", "{name}{title}您好，本次消费获得{points}积分，当前积分{balance}。", False),
    ("points_earned", "email"): ("积分到账通知", "{name}{title}您好：\n\n本次消费获得{points}积分，"
                                             "当前积分{balance}。", False),
    ("points_expiring", "sms"): ("", "{name}{title}您好，您有{points}积分将于{expiry_date}到期，请及时使用。", True),
    ("points_expiring", "email"): ("积分即将到期提醒", "{name}{title}您好：\n\n您有{points}积分将于{expiry_date}"
                                                  "到期，请在到期前使用。", True),
    ("level_change", "sms"): ("", "{name}{title}您好，您的会员等级已由{old_level}{direction}为{level}（{reason}）。",
                              True),
    ("level_change", "email"): ("会员等级变更通知", "{name}{title}您好：\n\n您的会员等级已由{old_level}{direction}"
                                                "为{level}，原因：{reason}。", True),
}
# How a level change is worded in a message ({direction}, {reason}).
DIRECTIONS = {"up": "升级", "down": "调整"}
REASONS = {"spend": "累计消费达标", "topup": "累计充值达标", "review": "年度等级评定", "manual": "门店人工调整"}


def _in(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class NotificationTemplate(db.Model):
    """An admin's version of a kind's text on a channel (a kind without a row sends DEFAULTS)."""
    __tablename__ = "notification_templates"
    __table_args__ = (UniqueConstraint("kind", "channel", name="uq_notification_templates_kind_channel"),
                      CheckConstraint(_in("kind", KINDS), name="kind"),
                      CheckConstraint(_in("channel", CHANNELS), name="channel"))

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(default=True)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# pending: written by the event, handed to the outbox (deliveries) by the next scheduler beat;
# queued: handed over (the delivery says what became of it); skipped: not sent (reason says why).
STATUSES = ("pending", "queued", "skipped")


class Notification(db.Model):
    """One event's message on one channel, written (rendered) in the event's transaction. The
    scheduler's beat hands it to the outbox as a delivery with the same `send_id`."""
    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("kind", "event_ref", "channel", name="uq_notifications_event"),
                      CheckConstraint(_in("kind", KINDS), name="kind"),
                      CheckConstraint(_in("channel", CHANNELS), name="channel"),
                      CheckConstraint(_in("status", STATUSES), name="status"),
                      Index("ix_notifications_member", "member_id", "id"),
                      Index("ix_notifications_pending", "status", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    event_ref: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(8))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    send_id: Mapped[str] = mapped_column(String(32), unique=True)
    address: Mapped[str] = mapped_column(String(255), default="")
    subject: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    tz: Mapped[str] = mapped_column(String(64), default="")
    quiet: Mapped[bool] = mapped_column(default=True)  # waits out the quiet hours (all but payment alerts)
    status: Mapped[str] = mapped_column(String(8), default="pending")
    reason: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
