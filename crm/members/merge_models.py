"""The record of one merge of a duplicate member into another (members/merge.py)."""
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, select
from sqlalchemy.orm import Mapped, mapped_column

from ..core.timeutil import utcnow
from ..extensions import db


class MemberMerge(db.Model):
    """Member `from_member_id` (the duplicate, now a tombstone) merged into `into_member_id`
    (the survivor): who did it and why, which profile values the survivor kept
    (`fields`: {field: "from" | "into"}), the duplicate's profile as it was (`from_profile`,
    for the record: its mobile is freed on the tombstone) and what moved (`moved`: points,
    stored value, coupon, ticket, card and bill ids). A member is merged away at most once."""
    __tablename__ = "member_merges"
    __table_args__ = (CheckConstraint("from_member_id <> into_member_id", name="distinct_members"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    from_member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), unique=True)
    into_member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    reason: Mapped[str] = mapped_column(String(200))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    fields: Mapped[dict] = mapped_column(JSON, default=dict)
    from_profile: Mapped[dict] = mapped_column(JSON, default=dict)
    moved: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# Read by the ledgers (points, wallet) without importing the merge service: whose account holds
# a member's value now, and whose accounts a survivor's bills may have written to.

def survivor_id(member_id: int) -> int:
    """The live member a member's value belongs to: itself, or the survivor it was merged into
    (a merge repoints older tombstones to the new survivor, so one step is always enough)."""
    from .models import Member
    into = db.session.scalar(select(Member.merged_into_id).where(Member.id == member_id))
    return into or member_id


def refuse_if_merged(member_id: int):
    """409 `member_merged` naming the survivor: value given by hand (points, a coupon) to a
    merged duplicate would sit on a tombstone nobody sees."""
    from flask_babel import gettext as _

    from ..errors import Conflict
    from .models import Member
    into = db.session.scalar(select(Member.merged_into_id).where(Member.id == member_id))
    if into is not None:
        raise Conflict(_("This member was merged into member %(id)d.", id=into), code="member_merged",
                       survivor_id=into)


def account_owners(member_id: int) -> list[int]:
    """The member and every tombstone merged into it: a bill of the survivor (merge moves the
    duplicate's bills) may have its entries on any of their accounts."""
    from .models import Member
    return [member_id, *db.session.scalars(select(Member.id).where(Member.merged_into_id == member_id))]
