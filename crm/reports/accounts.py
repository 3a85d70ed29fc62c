"""Corporate accounts' annual spend (computed, docs/rules.md "Reports"): the room revenue of the company's
stays arriving in the last 365 days, plus the bills of its members in that time. One
grouped query per source for any number of companies."""
from datetime import timedelta

from sqlalchemy import func, select

from ..core.timeutil import utcnow
from ..extensions import db
from ..members import service as members
from .kpis import facts
from .models import Stay


def annual_spend(company_ids) -> dict[int, int]:
    """{company id: fen spent in the last 365 days} (0 for companies with nothing)."""
    ids = list(company_ids)
    if not ids:
        return {}
    now = utcnow()
    out = dict.fromkeys(ids, 0)
    stays = db.session.execute(select(Stay.company_id, func.sum(Stay.room_revenue)).where(
        Stay.company_id.in_(ids), Stay.arrival > (now - timedelta(days=365)).date(), Stay.cancelled.is_(False))
        .group_by(Stay.company_id))
    b, M = facts(), members.Member
    bills = db.session.execute(select(M.company_id, func.sum(b.c.amount)).join(M, M.id == b.c.member_id).where(
        M.company_id.in_(ids), b.c.at > now - timedelta(days=365)).group_by(M.company_id))
    for company_id, fen in list(stays) + list(bills):
        out[company_id] += int(fen or 0)
    return out
