"""Tables of crm.stays: what each stay of a member has earned in the programme.

One row per stay that has been settled (crm/stays/service.py): the member whose account was
credited, the revenue and segment it earned on, and the points entry that credited it. The
ledger holds the history (a `stay` entry, and a `stay_undo` entry when a corrected or cancelled
stay takes it back); this row is what the next import of the same stay is compared with, so an
unchanged re-import writes nothing.
"""
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..core.timeutil import utcnow
from ..extensions import db


class StayEarning(db.Model):
    __tablename__ = "stay_earnings"
    __table_args__ = (CheckConstraint("eligible >= 0 AND points >= 0", name="amounts"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    stay_id: Mapped[int] = mapped_column(ForeignKey("stays.id"), unique=True)
    # The member credited (None: the stay has no member, or one who cannot earn). After a merge
    # the points live with the survivor (members/merge.py moves the lots): compared as its survivor.
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    eligible: Mapped[int] = mapped_column(default=0)  # fen: room + F&B posted to the room; 0 if it earns nothing
    segment: Mapped[str | None] = mapped_column(String(24))
    points: Mapped[int] = mapped_column(default=0)  # what entry_id credited (0: nothing)
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("points_entries.id"), unique=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
