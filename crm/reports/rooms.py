"""Hotel room KPIs, with the manual's definitions (SPEC §8):

  occupancy = (rooms sold + complimentary) ÷ available × 100
  ADR       = room revenue ÷ (rooms sold + complimentary)
  RevPAR    = room revenue ÷ available
  A day-use room's revenue counts; the room is not sold. A stay across the period's edge
  counts only its nights inside the period, and that share of its revenue (spread evenly
  over its nights). Available = the hotel's rooms × days in the period.
One aggregate query; no loop over stays.
"""
from decimal import Decimal

from sqlalchemy import and_, case, func, literal, select

from ..extensions import db
from ..stores import service as stores
from .figures import Period, money, money_per, rate
from .models import Stay
from .sql import days_between, greatest, least


def night_columns(p: Period):
    """(room nights inside the period, revenue share inside it) of a stay, as SQL."""
    inside = greatest(days_between(least(Stay.departure, literal(p.end_exclusive)),
                                   greatest(Stay.arrival, literal(p.start))), 0)
    nights = inside * Stay.rooms
    day_use_in = and_(Stay.day_use, Stay.arrival >= p.start, Stay.arrival <= p.end)
    revenue = case((Stay.day_use, case((day_use_in, Stay.room_revenue), else_=0)),
                   else_=Stay.room_revenue * 1.0 * inside / func.nullif(days_between(Stay.departure, Stay.arrival), 0))
    return nights, revenue, day_use_in


def hotels(store_code: str | None):
    """The hotels a report covers: one (by code) or all."""
    if store_code:
        store = stores.get_by_code(store_code)
        return [store] if store.kind == "hotel" else []
    return [s for s in stores.list_stores() if s.kind == "hotel"]


def room_kpis(store_code: str | None, p: Period) -> dict:
    chosen = hotels(store_code)
    nights, revenue, day_use_in = night_columns(p)
    comp = Stay.complimentary
    row = db.session.execute(
        select(func.coalesce(func.sum(case((and_(~Stay.day_use, ~comp), nights), else_=0)), 0),
               func.coalesce(func.sum(case((and_(~Stay.day_use, comp), nights), else_=0)), 0),
               func.coalesce(func.sum(case((day_use_in, Stay.rooms), else_=0)), 0),
               func.coalesce(func.sum(revenue), 0))
        .where(Stay.store_id.in_([s.id for s in chosen]), Stay.arrival <= p.end, Stay.departure >= p.start)
    ).one()
    sold, complimentary, day_use, room_revenue = int(row[0]), int(row[1]), int(row[2]), Decimal(str(row[3]))
    available = sum(s.rooms or 0 for s in chosen) * p.days
    occupied = sold + complimentary
    return {"available_rooms": available, "rooms_sold": sold, "complimentary_rooms": complimentary,
            "day_use_rooms": day_use, "room_revenue": money(room_revenue), "occupancy": rate(occupied, available),
            "adr": money_per(room_revenue, occupied), "revpar": money_per(room_revenue, available)}
