"""The segment revenue table 客房收入细分统计表 (docs/rules.md "Reports"; fields as in the OpenAPI document).

Columns: last year's actual, this year's plan, this year's actual, for a year or a month.
Rows: total (room revenue, occupancy, ADR, RevPAR, room nights), repeat guests, then one
row per segment (room nights, ADR, share of all room nights in that column).
Room nights are sold plus complimentary nights (day-use rooms are not nights).
"""
import calendar
from datetime import date, timedelta
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import and_, case, func, select

from ..core import audit
from ..core.actor import Actor
from ..core.segments import SEGMENT_KEYS
from ..errors import Invalid
from ..extensions import db
from ..stores import service as stores
from .figures import Period, money, money_per, rate
from .models import SegmentPlan, Stay
from .rooms import available_rooms, hotels, night_columns, room_kpis, room_rates

COLUMNS = ("last_year_actual", "plan", "actual")
PLAN_KEYS = ("repeat_guests",) + SEGMENT_KEYS


def report_period(year: int, month: int | None) -> Period:
    if not 2000 <= year <= 2100:
        raise Invalid(_("Give a year from 2001 to 2100."), code="invalid_year", field="year")
    if month is None:
        return Period(date(year, 1, 1), date(year, 12, 31))
    if not 1 <= month <= 12:
        raise Invalid(_("A month is 1 to 12."), code="invalid_month", field="month")
    return Period(date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1]))


def repeat_members(end: date, store_ids):
    """Members with two or more stays arriving in the 365 days ending on `end` (docs/rules.md)."""
    return (select(Stay.member_id).where(Stay.member_id.is_not(None), Stay.store_id.in_(store_ids),
                                         Stay.arrival > end - timedelta(days=365), Stay.arrival <= end)
            .group_by(Stay.member_id).having(func.count() >= 2))


def _actual(store_code, p: Period) -> dict:
    chosen = hotels(store_code)
    ids = [s.id for s in chosen]
    nights, revenue, _day_use = night_columns(p)
    overlapping = and_(Stay.store_id.in_(ids), Stay.arrival <= p.end, Stay.departure >= p.start)
    night_sum = func.coalesce(func.sum(case((~Stay.day_use, nights), else_=0)), 0)
    by_segment = {seg: (int(n), Decimal(str(r))) for seg, n, r in db.session.execute(
        select(Stay.segment, night_sum, func.coalesce(func.sum(revenue), 0)).where(overlapping)
        .group_by(Stay.segment))}
    repeat = db.session.execute(select(night_sum, func.coalesce(func.sum(revenue), 0)).where(
        overlapping, Stay.member_id.in_(repeat_members(p.end, ids)))).one()
    total = room_kpis(store_code, p)
    all_nights = total["rooms_occupied"]
    out = {"total": {"room_revenue": total["room_revenue"], "occupancy": total["occupancy"], "adr": total["adr"],
                     "revpar": total["revpar"], "room_nights": all_nights}}
    rows = {"repeat_guests": (int(repeat[0]), Decimal(str(repeat[1])))}
    rows.update({seg: by_segment.get(seg, (0, Decimal(0))) for seg in SEGMENT_KEYS})
    for key, (n, r) in rows.items():
        out[key] = {"room_nights": n, "adr": money_per(r, n), "share": rate(n, all_nights)}
    return out


def _plans(store_ids, year, month):
    stmt = select(SegmentPlan.segment, func.sum(SegmentPlan.nights),
                  func.sum(SegmentPlan.nights * SegmentPlan.adr)).where(
        SegmentPlan.store_id.in_(store_ids), SegmentPlan.year == year).group_by(SegmentPlan.segment)
    rows = db.session.execute(stmt.where(SegmentPlan.month == month) if month else
                              stmt.where(SegmentPlan.month.is_(None))).all()
    if not rows and month is None:  # no yearly plan: the months' plans add up to one
        rows = db.session.execute(stmt).all()
    return {seg: (int(n), int(r)) for seg, n, r in rows}


def _plan(store_code, p: Period, year, month) -> dict | None:
    chosen = hotels(store_code)
    plans = _plans([s.id for s in chosen], year, month)
    if not plans:
        return None
    available = available_rooms(chosen, p)
    seg_nights = sum(n for seg, (n, _r) in plans.items() if seg != "repeat_guests")
    revenue = sum(r for seg, (_n, r) in plans.items() if seg != "repeat_guests")
    rates = room_rates(available, seg_nights, revenue)
    out = {"total": {"room_revenue": money(revenue), "occupancy": rates["occupancy"], "adr": rates["adr"],
                     "revpar": rates["revpar"], "room_nights": seg_nights}}
    for key in PLAN_KEYS:
        n, r = plans.get(key, (0, 0))
        out[key] = {"room_nights": n, "adr": money_per(r, n), "share": rate(n, seg_nights)}
    return out


def _nulls(row_key):
    keys = ("room_revenue", "occupancy", "adr", "revpar", "room_nights") if row_key == "total" else (
        "room_nights", "adr", "share")
    return dict.fromkeys(keys)


def segment_table(store_code: str | None, year: int, month: int | None = None) -> dict:
    if year < 2001:  # last year's column needs the year before
        raise Invalid(_("Give a year from 2001 to 2100."), code="invalid_year", field="year")
    p = report_period(year, month)
    last = report_period(year - 1, month)
    columns = {"last_year_actual": _actual(store_code, last), "plan": _plan(store_code, p, year, month),
               "actual": _actual(store_code, p)}
    keys = ("total",) + PLAN_KEYS
    return {"columns": list(COLUMNS), "rows": [
        {"key": key, "values": {col: (columns[col] or {}).get(key) or _nulls(key) for col in COLUMNS}}
        for key in keys]}


def save_plans(actor: Actor, store_code: str, year: int, month: int | None, plans: dict) -> int:
    """Set a store's plan for a year (month None) or a month: {segment: (nights, adr fen)}."""
    store = stores.get_by_code(store_code)
    if store.kind != "hotel":
        raise Invalid(_("Plans are for hotels."), code="not_a_hotel", field="store_code")
    report_period(year, month)
    for segment, (nights, adr) in plans.items():
        if segment not in PLAN_KEYS:
            raise Invalid(_("Unknown segment %(key)s.", key=segment), code="unknown_segment", field="plans")
        if nights < 0 or adr < 0:
            raise Invalid(_("Nights and rates cannot be negative."), code="invalid_plan", field="plans")
    for segment, (nights, adr) in plans.items():
        row = db.session.scalar(select(SegmentPlan).where(
            SegmentPlan.store_id == store.id, SegmentPlan.year == year, SegmentPlan.segment == segment,
            SegmentPlan.month == month if month else SegmentPlan.month.is_(None)))
        if row is None:
            db.session.add(SegmentPlan(store_id=store.id, year=year, month=month, segment=segment, nights=nights,
                                       adr=adr))
        else:
            row.nights, row.adr = nights, adr
    audit.record(actor, "plans.save", entity_type="segment_plans", store_id=store.id, year=year, month=month,
                 segments=len(plans))
    return len(plans)


def plan_form(store_code: str, year, month) -> dict:
    """A saved plan as the plan form's inputs: {"nights_<key>": "10", "adr_<key>": "450.00"}."""
    store = stores.get_by_code(store_code)
    try:
        year, month = int(year), int(month) if month else None
    except ValueError:
        return {}
    rows = db.session.execute(select(SegmentPlan.segment, SegmentPlan.nights, SegmentPlan.adr).where(
        SegmentPlan.store_id == store.id, SegmentPlan.year == year,
        SegmentPlan.month == month if month else SegmentPlan.month.is_(None))).all()
    out = {}
    for segment, nights, adr in rows:
        out[f"nights_{segment}"], out[f"adr_{segment}"] = str(nights), money(adr)
    return out
