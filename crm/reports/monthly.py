"""Monthly segment comparison 细分市场统计表: each month this year against last year, per
segment: room nights, revenue, average rate and the differences. One grouped query per
month and year (24 in all), never a loop over stays."""
from decimal import Decimal

from sqlalchemy import and_, case, func, select

from ..core.segments import SEGMENT_KEYS
from ..extensions import db
from .figures import money, money_per
from .models import Stay
from .rooms import hotels, night_columns
from .segments import report_period

_ORDER = {key: i for i, key in enumerate(SEGMENT_KEYS)}


def _month(ids, year, month) -> dict:
    p = report_period(year, month)
    nights, revenue, _day_use = night_columns(p)
    rows = db.session.execute(
        select(Stay.segment, func.coalesce(func.sum(case((~Stay.day_use, nights), else_=0)), 0),
               func.coalesce(func.sum(revenue), 0))
        .where(and_(Stay.store_id.in_(ids), Stay.arrival <= p.end, Stay.departure >= p.start))
        .group_by(Stay.segment)).all()
    return {seg: (int(n), Decimal(str(r))) for seg, n, r in rows}


def _segment_order(segment) -> int:
    """The segments in their listed order; a stay without a segment (the column allows NULL) last."""
    return _ORDER.get(segment, len(_ORDER))


def _figures(nights, revenue):
    return {"nights": nights, "revenue": money(revenue), "average_rate": money_per(revenue, nights)}


def monthly_comparison(store_code: str | None, year: int) -> list[dict]:
    ids = [s.id for s in hotels(store_code)]
    out = []
    for month in range(1, 13):
        this, last = _month(ids, year, month), _month(ids, year - 1, month)
        for segment in sorted(set(this) | set(last), key=_segment_order):
            tn, tr = this.get(segment, (0, Decimal(0)))
            ln, lr = last.get(segment, (0, Decimal(0)))
            t_rate, l_rate = (tr / tn if tn else None), (lr / ln if ln else None)
            out.append({"month": month, "segment": segment, "this_year": _figures(tn, tr),
                        "last_year": _figures(ln, lr),
                        "difference": {"nights": tn - ln, "revenue": money(tr - lr),
                                       "average_rate": money(t_rate - l_rate) if t_rate is not None
                                       and l_rate is not None else None}})
    return out
