"""Facts the reports aggregate, imported from a POS or PMS (checkouts closed through the API
are facts too; see kpis.py). Re-importing a check_no / stay_no of a store updates its row."""
from datetime import date, datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column

from ..core.segments import SEGMENT_KEYS
from ..core.timeutil import utcnow
from ..extensions import db


def _segment_check():
    return CheckConstraint(f"segment IS NULL OR segment IN ({', '.join(repr(k) for k in SEGMENT_KEYS)})",
                           name="segment")


class Check(db.Model):
    """A restaurant bill from another system (POS export)."""
    __tablename__ = "checks"
    __table_args__ = (UniqueConstraint("store_id", "check_no", name="uq_checks_store_check_no"),
                      CheckConstraint("amount >= 0 AND covers >= 0", name="amounts"), _segment_check(),
                      Index("ix_checks_store_closed", "store_id", "closed_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    check_no: Mapped[str] = mapped_column(String(64))
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    closed_at: Mapped[datetime]
    amount: Mapped[int]  # fen
    covers: Mapped[int] = mapped_column(default=0)
    segment: Mapped[str | None] = mapped_column(String(24))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    joined_at_visit: Mapped[bool] = mapped_column(default=False)
    imported_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Stay(db.Model):
    """A hotel stay from the PMS. Nights = (departure − arrival) × rooms; arrival = departure is day use."""
    __tablename__ = "stays"
    __table_args__ = (UniqueConstraint("store_id", "stay_no", name="uq_stays_store_stay_no"),
                      CheckConstraint("departure >= arrival", name="dates"),
                      CheckConstraint("rooms >= 1 AND room_revenue >= 0", name="amounts"), _segment_check(),
                      CheckConstraint("fb_revenue >= 0", name="fb_amount"),
                      Index("ix_stays_store_dates", "store_id", "arrival", "departure"))

    id: Mapped[int] = mapped_column(primary_key=True)
    stay_no: Mapped[str] = mapped_column(String(64))
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    arrival: Mapped[date]
    departure: Mapped[date]
    rooms: Mapped[int] = mapped_column(default=1)
    room_revenue: Mapped[int]  # fen, for the whole stay
    segment: Mapped[str | None] = mapped_column(String(24))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"), index=True)
    company_name: Mapped[str] = mapped_column(String(200), default="")  # as the PMS spelled it
    sales_rep: Mapped[str] = mapped_column(String(64), default="")
    complimentary: Mapped[bool] = mapped_column(default=False)
    day_use: Mapped[bool] = mapped_column(default=False)
    # F&B the PMS posted to the room (fen; 0 when it sends none) and a stay cancelled in the PMS
    # after it was sent: both decide what the stay earns in the programme (crm/stays/service.py).
    fb_revenue: Mapped[int] = mapped_column(default=0, server_default="0")
    cancelled: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    imported_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SegmentPlan(db.Model):
    """A manager's plan for a segment: room nights and average rate, for a year or one month.
    Segment "repeat_guests" plans the repeat-guest row."""
    __tablename__ = "segment_plans"
    __table_args__ = (UniqueConstraint("store_id", "year", "month", "segment", name="uq_segment_plans_period"),
                      CheckConstraint("month IS NULL OR month BETWEEN 1 AND 12", name="month"),
                      CheckConstraint("nights >= 0 AND adr >= 0", name="amounts"))

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    year: Mapped[int]
    month: Mapped[int | None]  # None: the whole year
    segment: Mapped[str] = mapped_column(String(24))
    nights: Mapped[int]
    adr: Mapped[int]  # fen
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Competitor(db.Model):
    """A hotel in a store's competitive set 竞争对手."""
    __tablename__ = "competitors"
    __table_args__ = (UniqueConstraint("store_id", "name", name="uq_competitors_store_name"),
                      CheckConstraint("rooms >= 1", name="rooms"))

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    name: Mapped[str] = mapped_column(String(100))
    rooms: Mapped[int]


class CompetitorMonth(db.Model):
    """A competitor's figures for one month, as the manager collected them."""
    __tablename__ = "competitor_months"
    __table_args__ = (UniqueConstraint("competitor_id", "year", "month", name="uq_competitor_months_month"),
                      CheckConstraint("month BETWEEN 1 AND 12", name="month"),
                      CheckConstraint("available_rooms >= 0 AND rooms_sold >= 0 AND room_revenue >= 0",
                                      name="amounts"))

    id: Mapped[int] = mapped_column(primary_key=True)
    competitor_id: Mapped[int] = mapped_column(ForeignKey("competitors.id", ondelete="CASCADE"))
    year: Mapped[int]
    month: Mapped[int]
    available_rooms: Mapped[int]
    rooms_sold: Mapped[int]
    room_revenue: Mapped[int]  # fen


class RoomCount(db.Model):
    """A change in a hotel's sellable rooms from a date on (a floor closed for refurbishment,
    a new wing). Without any, available rooms = the store's room count × days."""
    __tablename__ = "room_counts"
    __table_args__ = (UniqueConstraint("store_id", "effective_from", name="uq_room_counts_store_date"),
                      CheckConstraint("rooms >= 0", name="rooms"))

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    effective_from: Mapped[date]
    rooms: Mapped[int]
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


IMPORT_STATUSES = ("queued", "running", "done", "failed")


class ImportJob(db.Model):
    """A CSV file of checks, stays or members being imported in the background (import_jobs.py).

    The file itself is kept here, so whichever process claims the job (a thread in the web
    worker that took the upload, or the scheduler after that worker died) can read it; it
    is dropped once the job has finished. `runner` and `lease_until` say who holds the job:
    the holder renews the lease with every chunk it commits, and a job whose lease lapsed
    is taken over and resumes after its last committed chunk."""
    __tablename__ = "import_jobs"
    __table_args__ = (CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),
                      CheckConstraint("kind IN ('checks', 'stays', 'members')", name="kind"),
                      Index("ix_import_jobs_status_lease", "status", "lease_until"))

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    filename: Mapped[str] = mapped_column(String(255), default="")
    content: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)  # None once finished
    encoding: Mapped[str] = mapped_column(String(16), default="utf-8")  # what the upload was read as
    skip_bad_rows: Mapped[bool] = mapped_column(default=False)
    dry_run: Mapped[bool] = mapped_column(default=False, server_default=sa_false())  # check only, save nothing
    locale: Mapped[str] = mapped_column(String(16), default="en")  # row messages in the uploader's language
    status: Mapped[str] = mapped_column(String(8), default="queued")
    phase: Mapped[str] = mapped_column(String(8), default="checking")  # checking, then writing
    total: Mapped[int] = mapped_column(default=0)  # data rows in the file
    checked: Mapped[int] = mapped_column(default=0)  # rows validated (the first pass writes nothing)
    done: Mapped[int] = mapped_column(default=0)  # rows through the writing pass, committed
    imported: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    error_count: Mapped[int] = mapped_column(default=0)
    errors: Mapped[list] = mapped_column(JSON, default=list)  # [{line, message}], the first IMPORT_MAX_ERRORS
    bad_lines: Mapped[list] = mapped_column(JSON, default=list)  # lines the writing pass leaves out
    failure: Mapped[str | None] = mapped_column(String(16))  # bad_rows | stopped
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    address: Mapped[str] = mapped_column(String(64), default="")
    runner: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class KpiTarget(db.Model):
    """A manager's targets for a restaurant's member KPIs in one month (targets.py); a target
    left empty (None) is not set. Rates in basis points (1250 = 12.50 %), money in fen."""
    __tablename__ = "kpi_targets"
    __table_args__ = (UniqueConstraint("store_id", "year", "month", name="uq_kpi_targets_store_month"),
                      CheckConstraint("month BETWEEN 1 AND 12", name="month"),
                      CheckConstraint("new_members >= 0 AND stored_value_growth >= 0 AND spend_per_head >= 0",
                                      name="amounts"),
                      CheckConstraint("card_issue_rate BETWEEN 0 AND 10000 AND member_share BETWEEN 0 AND 10000",
                                      name="rates"))

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    year: Mapped[int]
    month: Mapped[int]
    new_members: Mapped[int | None]
    stored_value_growth: Mapped[int | None]  # basis points of growth %: top-up principal ÷ the month compared with − 1
    card_issue_rate: Mapped[int | None]  # basis points
    member_share: Mapped[int | None]  # basis points, of bills
    spend_per_head: Mapped[int | None]  # fen
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
