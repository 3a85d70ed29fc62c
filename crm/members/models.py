import secrets
from datetime import datetime
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import text as sa_text
from sqlalchemy import (
    true as sa_true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.segments import SEGMENT_KEYS
from ..core.timeutil import utcnow
from ..extensions import db

COMPANY_CLASSES = ("key_account", "conference", "potential")
# import: the level a member brought from a legacy system (their first review is a whole window later).
LEVEL_CHANGE_REASONS = ("spend", "topup", "review", "manual", "import")
LEVEL_CHANGE_LABELS = {"spend": _l("Upgrade on spend"), "topup": _l("Upgrade on top-ups"),
                       "review": _l("Yearly review"), "manual": _l("Changed by staff"),
                       "import": _l("Level from the legacy system")}
GENDERS = ("male", "female", "other")
PREFERENCES_MAX, PREFERENCE_MAX_LENGTH = 20, 100  # a member's preferences: items × characters
REFERRAL_STATUSES = ("granted", "reversed")
# Referral codes: no 0/O, 1/I (read aloud or typed from a friend's phone); 8 characters, so a
# collision between two random codes is a one-in-a-million event even at a million members.
REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
REFERRAL_CODE_LENGTH = 8
_RANDOM = secrets.SystemRandom()


def new_referral_code() -> str:
    """A fresh random referral code (the unique index on members.referral_code decides)."""
    return "".join(_RANDOM.choice(REFERRAL_ALPHABET) for _ in range(REFERRAL_CODE_LENGTH))


def _in(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class MemberLevel(db.Model):
    """A tier 会员等级: its points multiplier and what it takes to reach it."""
    __tablename__ = "member_levels"
    __table_args__ = (CheckConstraint("points_multiplier > 0", name="multiplier_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    rank: Mapped[int] = mapped_column(unique=True)  # 0 = the entry level
    points_multiplier: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal("1.00"))
    # Reached when rolling-12-month spend or cumulative top-up crosses these (fen; None = not by that path).
    upgrade_spend: Mapped[int | None]
    upgrade_topup: Mapped[int | None]


class Company(db.Model):
    """Corporate account 客户档案."""
    __tablename__ = "companies"
    __table_args__ = (
        CheckConstraint(_in("account_class", COMPANY_CLASSES), name="account_class"),
        CheckConstraint("discount_bp BETWEEN 0 AND 10000", name="discount_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    account_class: Mapped[str] = mapped_column(String(16), default="potential")
    contact_person: Mapped[str] = mapped_column(String(100), default="")
    contact_phone: Mapped[str] = mapped_column(String(32), default="")
    address: Mapped[str] = mapped_column(String(255), default="")
    discount_bp: Mapped[int] = mapped_column(default=0)  # negotiated discount, basis points (1500 = 15%)
    sales_rep: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def discount_pct(self) -> Decimal:
        return Decimal(self.discount_bp) / 100

    @discount_pct.setter
    def discount_pct(self, value):
        self.discount_bp = int(Decimal(value) * 100)


class Member(db.Model):
    __tablename__ = "members"
    __table_args__ = (
        CheckConstraint("(birthday_month IS NULL) = (birthday_day IS NULL)", name="birthday_pair"),
        CheckConstraint("birthday_month BETWEEN 1 AND 12", name="birthday_month"),
        CheckConstraint("birthday_day BETWEEN 1 AND 31", name="birthday_day"),
        CheckConstraint(_in("segment", SEGMENT_KEYS), name="segment"),
        CheckConstraint(_in("gender", GENDERS), name="gender"),
        Index("ix_members_birthday", "birthday_month", "birthday_day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    mobile: Mapped[str] = mapped_column(String(20), unique=True)
    mobile_last4: Mapped[str] = mapped_column(String(4), index=True)  # 手机尾号 look-ups
    birthday_month: Mapped[int | None] = mapped_column(SmallInteger)
    birthday_day: Mapped[int | None] = mapped_column(SmallInteger)
    birth_year: Mapped[int | None] = mapped_column(SmallInteger)
    gender: Mapped[str | None] = mapped_column(String(8))
    email: Mapped[str | None] = mapped_column(String(255))
    segment: Mapped[str | None] = mapped_column(String(24))
    level_id: Mapped[int] = mapped_column(ForeignKey("member_levels.id"), index=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"), index=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"), index=True)  # registering store
    sales_rep: Mapped[str] = mapped_column(String(64), default="")
    sms_consent: Mapped[bool] = mapped_column(default=False)
    sms_consent_at: Mapped[datetime | None]
    email_consent: Mapped[bool] = mapped_column(default=False)
    email_consent_at: Mapped[datetime | None]
    # Service messages (receipts, payment alerts, expiry reminders) are not marketing: on unless withdrawn.
    service_consent: Mapped[bool] = mapped_column(default=True, server_default=sa_true())
    service_consent_at: Mapped[datetime | None]
    # 老带新: every member's own code (set at registration, backfilled by migration 0018), and who
    # referred them (set at registration only; a referrer always registered earlier, so has a lower id).
    referral_code: Mapped[str] = mapped_column(String(REFERRAL_CODE_LENGTH), unique=True,
                                               default=new_referral_code)
    referred_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    # The hotel front desk's free list (issue 17.2): room, pillow, allergies … each a short text,
    # at most PREFERENCES_MAX items of PREFERENCE_MAX_LENGTH characters (members/schemas.py checks).
    preferences: Mapped[list] = mapped_column(JSON, default=list, server_default=sa_text("'[]'"))
    # A duplicate merged into another member stays as a tombstone naming the survivor; its
    # history (bills, entries) stays where it was written. An anonymised member (PIPL erasure
    # or retention) keeps its ledgers and bills but no personal data.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    merged_at: Mapped[datetime | None]
    anonymised_at: Mapped[datetime | None]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    level = relationship(MemberLevel, lazy="joined")
    company = relationship(Company, lazy="joined")
    store = relationship("Store", lazy="joined")
    # The one active or frozen card, loaded for a whole page in one query.
    live_card = relationship("Card", viewonly=True, uselist=False, lazy="selectin",
                             primaryjoin="and_(Card.member_id == Member.id, "
                                         "Card.status.in_(('active', 'frozen')))")
    tag_rows = relationship("MemberTag", cascade="all, delete-orphan",
                            order_by="MemberTag.tag")

    @property
    def tags(self):
        return [t.tag for t in self.tag_rows]

    @property
    def birthday(self) -> str | None:
        """"1988-02-29" when the year is known, else "02-29"."""
        if self.birthday_month is None:
            return None
        md = f"{self.birthday_month:02d}-{self.birthday_day:02d}"
        return f"{self.birth_year:04d}-{md}" if self.birth_year else md


class ReferralReward(db.Model):
    """The referral reward of one referee's qualifying bill: what the referrer and the referee
    were given (points entries or coupons), and whether a void of that bill took it back.

    At most one *granted* reward per referee (the partial unique index decides, whatever runs
    at once); a reversed one stays as history and the referee can qualify again. `year` is the
    calendar year of the bill in its store's time zone: the referrer's yearly cap counts it."""
    __tablename__ = "referral_rewards"
    __table_args__ = (
        CheckConstraint(_in("status", REFERRAL_STATUSES), name="status"),
        CheckConstraint(_in("kind", ("points", "coupon")), name="kind"),
        CheckConstraint("referrer_points >= 0 AND referee_points >= 0", name="points"),
        Index("uq_referral_rewards_referee_granted", "referee_id", unique=True,
              sqlite_where=sa_text("status = 'granted'"), postgresql_where=sa_text("status = 'granted'")),
        Index("ix_referral_rewards_referrer_year", "referrer_id", "year"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referee_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    referrer_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    checkout_id: Mapped[int] = mapped_column(ForeignKey("checkouts.id"), unique=True)
    year: Mapped[int]
    kind: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(10), default="granted")
    referrer_points: Mapped[int] = mapped_column(default=0)
    referee_points: Mapped[int] = mapped_column(default=0)
    referrer_entry_id: Mapped[int | None] = mapped_column(ForeignKey("points_entries.id"))
    referee_entry_id: Mapped[int | None] = mapped_column(ForeignKey("points_entries.id"))
    referrer_coupon_id: Mapped[int | None] = mapped_column(ForeignKey("coupons.id"))
    referee_coupon_id: Mapped[int | None] = mapped_column(ForeignKey("coupons.id"))
    details: Mapped[dict] = mapped_column(JSON, default=dict)  # e.g. a coupon that could not be issued
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    reversed_at: Mapped[datetime | None]
    reversed_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))


class ReferralCount(db.Model):
    """Rewards granted to a referrer in a calendar year, less those reversed: the yearly cap is
    one conditional `UPDATE … SET rewarded = rewarded + 1 WHERE rewarded < :cap` on this row,
    whose row lock also queues two referees of one referrer closing their bills at once."""
    __tablename__ = "referral_counts"
    __table_args__ = (CheckConstraint("rewarded >= 0", name="rewarded_non_negative"),)

    referrer_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    rewarded: Mapped[int] = mapped_column(default=0)


class MemberTag(db.Model):
    __tablename__ = "member_tags"
    __table_args__ = (UniqueConstraint("member_id", "tag", name="uq_member_tags_member_tag"),
                      Index("ix_member_tags_tag", "tag"))

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(32))


class MemberLevelChange(db.Model):
    """One move of a member between levels, with why: an upgrade on spend or top-ups, the
    yearly review, or a manager's hand. `figures` holds what the decision saw (fen):
    {"spend": …, "topup": …, "window": months}; a figure not looked at is null. A review
    changes a member at most once per year (the unique key on review_year)."""
    __tablename__ = "member_level_changes"
    __table_args__ = (CheckConstraint(_in("reason", LEVEL_CHANGE_REASONS), name="reason"),
                      UniqueConstraint("member_id", "review_year", name="uq_member_level_changes_review_year"))

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    from_level_id: Mapped[int] = mapped_column(ForeignKey("member_levels.id"))
    to_level_id: Mapped[int] = mapped_column(ForeignKey("member_levels.id"))
    reason: Mapped[str] = mapped_column(String(8))
    figures: Mapped[dict] = mapped_column(JSON, default=dict)
    review_year: Mapped[int | None]  # set only by the yearly review
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    from_level = relationship(MemberLevel, foreign_keys=[from_level_id], lazy="joined")
    to_level = relationship(MemberLevel, foreign_keys=[to_level_id], lazy="joined")


class LevelReview(db.Model):
    """The yearly downgrade review of one year. Its `as_of` (and window) is fixed by the
    first run, so running it again sees the same figures and changes nothing more;
    `finished_at` stays empty until every member has been looked at. Who moved down that
    year: the member_level_changes rows with this review_year."""
    __tablename__ = "level_reviews"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    as_of: Mapped[datetime]
    window_months: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
