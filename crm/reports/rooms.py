"""Hotel room KPIs, with the definitions in docs/rules.md "Reports":

  occupied  = rooms sold + complimentary (day-use rooms are not nights)
  occupancy = occupied ÷ available × 100
  ADR       = room revenue ÷ occupied
  RevPAR    = room revenue ÷ available
  A day-use room's revenue counts; the room is not sold. A stay across the period's edge
  counts only its nights inside the period, and that share of its revenue (spread evenly
  over its nights). Available = the hotel's rooms × days in the period, following any
  change of room count the manager recorded (RoomCount) from its date on.
One aggregate query; no loop over stays.
"""
from datetime import date
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import and_, case, func, literal, select

from ..core import audit
from ..core.actor import Actor
from ..errors import Invalid
from ..extensions import db
from ..stores import service as stores
from .figures import Period, money, money_per, rate
from .models import RoomCount, Stay
from .sql import days_between, greatest, least


def night_columns(p: Period):
    """(room nights inside the period, revenue share inside it) of a stay, as SQL; a stay the PMS
    cancelled (crm/stays) has neither."""
    inside = greatest(days_between(least(Stay.departure, literal(p.end_exclusive)),
                                   greatest(Stay.arrival, literal(p.start))), 0) * case((Stay.cancelled, 0), else_=1)
    nights = inside * Stay.rooms
    day_use_in = and_(Stay.day_use, ~Stay.cancelled, Stay.arrival >= p.start, Stay.arrival <= p.end)
    revenue = case((Stay.day_use, case((day_use_in, Stay.room_revenue), else_=0)),
                   else_=Stay.room_revenue * 1.0 * inside / func.nullif(days_between(Stay.departure, Stay.arrival), 0))
    return nights, revenue, day_use_in


def available_rooms(chosen, p: Period) -> int:
    """Room-days the hotels could sell in the period: each day at the room count in force."""
    total = 0
    for store in chosen:
        changes = db.session.execute(select(RoomCount.effective_from, RoomCount.rooms).where(
            RoomCount.store_id == store.id, RoomCount.effective_from <= p.end).order_by(RoomCount.effective_from)).all()
        current, day = store.rooms or 0, p.start
        for effective_from, rooms_from in changes:  # a handful of rows per hotel, not facts
            if effective_from <= p.start:
                current = rooms_from
                continue
            total += current * (effective_from - day).days
            current, day = rooms_from, effective_from
        total += current * ((p.end - day).days + 1)
    return total


def record_room_count(actor: Actor, store_code: str, effective_from: date, rooms: int, reason: str = "") -> RoomCount:
    """The manager records that a hotel sells `rooms` rooms from a date on."""
    store = stores.get_by_code(store_code)
    if store.kind != "hotel":
        raise Invalid(_("Room counts are for hotels."), code="not_a_hotel", field="store_code")
    if rooms < 0:
        raise Invalid(_("The room count cannot be negative."), code="invalid_rooms", field="rooms")
    row = db.session.scalar(select(RoomCount).where(RoomCount.store_id == store.id,
                                                    RoomCount.effective_from == effective_from))
    if row is None:
        row = RoomCount(store_id=store.id, effective_from=effective_from)
        db.session.add(row)
    row.rooms, row.reason = rooms, (reason or "").strip()[:200]
    db.session.flush()
    audit.record(actor, "rooms.count", entity=row, store_id=store.id, rooms=rooms,
                 effective_from=effective_from.isoformat())
    return row


def hotels(store_code: str | None):
    """The hotels a report covers: one (by code) or all."""
    if store_code:
        store = stores.get_by_code(store_code)
        return [store] if store.kind == "hotel" else []
    return [s for s in stores.list_stores() if s.kind == "hotel"]


def room_rates(available: int, occupied: int, revenue) -> dict:
    """Occupancy, ADR and RevPAR from available rooms, occupied rooms (sold + complimentary)
    and room revenue (fen): the one place these figures are worked out, for every table
    (room KPIs, the segment table's columns, the competitive set)."""
    return {"occupancy": rate(occupied, available), "adr": money_per(revenue, occupied),
            "revpar": money_per(revenue, available)}


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
    available = available_rooms(chosen, p)
    occupied = sold + complimentary
    return {"available_rooms": available, "rooms_sold": sold, "complimentary_rooms": complimentary,
            "rooms_occupied": occupied, "day_use_rooms": day_use, "room_revenue": money(room_revenue),
            **room_rates(available, occupied, room_revenue)}
