"""Top-N rankings 前三十名排行 per segment, by room revenue or room nights, with last year's rank.

A guest is ranked under its company when the stay names one, else under the member;
stays with neither are anonymous and not ranked. Ranks come from the database's RANK()
window function (ties share a rank)."""
from sqlalchemy import String, and_, case, cast, func, literal, select

from ..core.segments import SEGMENT_KEYS
from ..errors import Invalid
from ..extensions import db
from ..members import service as members
from .figures import money, money_per
from .models import Stay
from .rooms import hotels, night_columns
from .segments import report_period

BY = ("revenue", "nights")


def _ranked(p, store_ids, segment, by):
    nights, revenue, _day_use = night_columns(p)
    key = case((Stay.company_name != "", literal("c:") + Stay.company_name),
               else_=literal("m:") + cast(Stay.member_id, String))
    agg = (select(key.label("key"), func.max(Stay.company_name).label("company"),
                  func.max(Stay.member_id).label("member_id"), func.sum(revenue).label("revenue"),
                  func.sum(case((~Stay.day_use, nights), else_=0)).label("nights"),
                  func.max(Stay.sales_rep).label("sales_rep"))
           .where(Stay.store_id.in_(store_ids), Stay.segment == segment, ~Stay.cancelled, Stay.arrival <= p.end,
                  Stay.departure >= p.start, (Stay.company_name != "") | Stay.member_id.is_not(None))
           .group_by(key).subquery())
    metric = agg.c.revenue if by == "revenue" else agg.c.nights
    return select(agg, func.rank().over(order_by=metric.desc()).label("rank")).subquery()


def rankings(store_code: str | None, year: int, segment: str, by: str = "revenue", limit: int = 30) -> list[dict]:
    if segment not in SEGMENT_KEYS:
        raise Invalid("Unknown segment.", code="unknown_segment", field="segment")
    if by not in BY:
        raise Invalid("Rank by revenue or nights.", code="invalid_by", field="by")
    ids = [s.id for s in hotels(store_code)]
    this = _ranked(report_period(year, None), ids, segment, by)
    last = _ranked(report_period(year - 1, None), ids, segment, by)
    M = members.Member
    rows = db.session.execute(
        select(this.c.rank, this.c.key, this.c.company, M.name.label("member_name"), this.c.revenue,
               this.c.nights, this.c.sales_rep, last.c.rank.label("last_rank"))
        .outerjoin(last, last.c.key == this.c.key).outerjoin(M, and_(M.id == this.c.member_id, this.c.company == ""))
        .order_by(this.c.rank, this.c.key).limit(limit)).all()
    return [{"rank": r.rank, "name": r.company or r.member_name or "", "kind": "company" if r.company else "member",
             "revenue": money(r.revenue), "nights": int(r.nights), "average_rate": money_per(r.revenue, r.nights),
             "sales_rep": r.sales_rep or "", "last_year_rank": r.last_rank} for r in rows]
