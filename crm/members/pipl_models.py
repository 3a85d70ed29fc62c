"""The log of personal-information requests under PIPL (个人信息保护法): who asked for what about
which member, when and why. One row per request: an export (access and copy), a correction
(an edit made because the member said their data was wrong) or an erasure (anonymisation,
by staff or by the retention job)."""
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..core.timeutil import utcnow
from ..extensions import db

REQUEST_KINDS = ("export", "correction", "erasure")


class PrivacyRequest(db.Model):
    __tablename__ = "privacy_requests"
    __table_args__ = (
        CheckConstraint("kind IN ('export', 'correction', 'erasure')", name="kind"),
        Index("ix_privacy_requests_member", "member_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(12))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))  # None: the retention job
    username: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500), default="")
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
