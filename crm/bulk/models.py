"""Bulk job tables.

A job's members are fixed when it is created: one `bulk_job_effects` row per member of the
audience then (tombstoned and anonymised members left out), unique per (job, member). A
runner moves a row from `pending` to `applied` or `skipped` with a conditional UPDATE in
the same transaction as the effect itself, so a re-run, a takeover or a second runner never
applies anything twice; a reversal moves `applied` rows on the same way (`undo`).
"""
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..core.timeutil import utcnow
from ..extensions import db

ACTIONS = ("points", "coupon", "tag_add", "tag_remove", "level")
STATUSES = ("queued", "running", "done", "failed", "reversing", "reversed")
OUTCOMES = ("pending", "applied", "skipped")


def _in(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class BulkJob(db.Model):
    """One piece of bulk work: queued → running → done, then (a manager's reversal)
    reversing → reversed. `runner` and `lease_until` say who holds it while it runs (as an
    import job's do): the holder renews the lease with every chunk, and a job whose lease
    lapsed is taken over by the scheduler and goes on from the first member left pending."""
    __tablename__ = "bulk_jobs"
    __table_args__ = (CheckConstraint(_in("action", ACTIONS), name="action"),
                      CheckConstraint(_in("status", STATUSES), name="status"),
                      Index("ix_bulk_jobs_status_lease", "status", "lease_until"))

    id: Mapped[int] = mapped_column(primary_key=True)
    action: Mapped[str] = mapped_column(String(10))
    params: Mapped[dict] = mapped_column(JSON, default=dict)  # {points, expires_on} | {coupon_type} | {tag} | {level}
    audience_id: Mapped[int | None] = mapped_column(ForeignKey("audiences.id", ondelete="SET NULL"))
    audience_name: Mapped[str] = mapped_column(String(100), default="")  # as it was: the audience may change
    reason: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="queued")
    total: Mapped[int] = mapped_column(default=0)  # members in the snapshot
    done: Mapped[int] = mapped_column(default=0)  # members through the run (committed)
    applied: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    undone: Mapped[int] = mapped_column(default=0)  # applied effects through the reversal (committed)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    address: Mapped[str] = mapped_column(String(64), default="")
    runner: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    failure: Mapped[str | None] = mapped_column(String(16))  # stopped: its runners stopped too often
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    reversed_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    reverse_reason: Mapped[str | None] = mapped_column(String(200))
    reverse_requested_at: Mapped[datetime | None]
    reversed_at: Mapped[datetime | None]


class BulkJobEffect(db.Model):
    """What a job did to one member, and what its reversal did: the points entry granted (and
    the one taking it back, with any shortfall already spent), the coupon issued, the level
    the member had, whether the tag was changed; `skip_reason` says why nothing was done."""
    __tablename__ = "bulk_job_effects"
    __table_args__ = (UniqueConstraint("job_id", "member_id", name="uq_bulk_job_effects_job_member"),
                      CheckConstraint(_in("outcome", OUTCOMES), name="outcome"),
                      Index("ix_bulk_job_effects_job_outcome", "job_id", "outcome"))

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("bulk_jobs.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(8), default="pending")
    skip_reason: Mapped[str | None] = mapped_column(String(32))  # out_of_stock, already_tagged, …
    points_entry_id: Mapped[int | None] = mapped_column(ForeignKey("points_entries.id"))
    coupon_id: Mapped[int | None] = mapped_column(ForeignKey("coupons.id"))
    previous_level_id: Mapped[int | None] = mapped_column(ForeignKey("member_levels.id"))
    tag_changed: Mapped[bool] = mapped_column(default=False)
    applied_at: Mapped[datetime | None]
    undo: Mapped[str | None] = mapped_column(String(16))  # reversed, partly, kept_used, unchanged
    shortfall: Mapped[int] = mapped_column(default=0)  # points already spent, not taken back
    undo_entry_id: Mapped[int | None] = mapped_column(ForeignKey("points_entries.id"))
    undone_at: Mapped[datetime | None]
