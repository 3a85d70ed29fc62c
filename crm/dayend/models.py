"""Tables of crm.dayend: who checked a store's day-end, when, and the totals they saw.

A check locks nothing: bills of the day can still be voided afterwards. Each check is a new
row (the history of who looked at the day), holding the totals as they were (`totals`, fen by
figure name), so the page can say what changed since."""
from datetime import date, datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.timeutil import utcnow
from ..extensions import db


class DayEndCheck(db.Model):
    __tablename__ = "day_end_checks"
    __table_args__ = (Index("ix_day_end_checks_store_day", "store_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    day: Mapped[date]
    checked_by: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str] = mapped_column(String(200), default="")
    totals: Mapped[dict] = mapped_column(JSON, default=dict)  # {figure: fen} when checked

    staff = relationship("Staff", lazy="joined")
