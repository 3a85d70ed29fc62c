"""The competitive set 竞争对手份额表: own hotel against the hotels the manager tracks.

  fair share    = own available ÷ the set's available
  actual share  = own rooms occupied ÷ the set's rooms occupied
  revenue share = own room revenue ÷ the set's room revenue
Own figures are the room KPIs' (rooms.room_kpis): rooms occupied are sold plus complimentary,
and occupancy, ADR and RevPAR of every row come from rooms.room_rates, so this table and the
room KPIs agree for the same hotel and month. Competitors' figures are what the manager
entered (their rooms occupied, complimentary included). A competitor with no figures for the
period is listed under `missing`, not counted."""
from flask_babel import gettext as _
from sqlalchemy import func, select

from ..core import audit
from ..core.actor import Actor
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..stores import service as stores
from .figures import money, parse_money, rate
from .models import Competitor, CompetitorMonth
from .rooms import room_kpis, room_rates
from .segments import report_period


def _hotel(store_code):
    store = stores.get_by_code(store_code)
    if store.kind != "hotel":
        raise Invalid(_("Competitors are tracked for hotels."), code="not_a_hotel", field="store_code")
    return store


def add_competitor(actor: Actor, store_code: str, name: str, rooms: int) -> Competitor:
    store = _hotel(store_code)
    name = (name or "").strip()
    if not name:
        raise Invalid(_("Give the hotel's name."), code="name_required", field="name")
    if db.session.scalar(select(Competitor.id).where(Competitor.store_id == store.id, Competitor.name == name)):
        raise Conflict(_("This hotel is already in the set."), code="competitor_exists", field="name")
    row = Competitor(store_id=store.id, name=name, rooms=rooms)
    db.session.add(row)
    db.session.flush()
    audit.record(actor, "competitor.add", entity=row, name=name)
    return row


def competitors_of(store_code: str):
    store = _hotel(store_code)
    return db.session.scalars(select(Competitor).where(Competitor.store_id == store.id)
                              .order_by(Competitor.name)).all()


def set_month(actor: Actor, competitor_id: int, year: int, month: int, *, available_rooms: int, rooms_sold: int,
              room_revenue: int) -> CompetitorMonth:
    competitor = db.session.get(Competitor, competitor_id)
    if competitor is None:
        raise NotFound(_("No such competitor."), code="competitor_not_found")
    report_period(year, month)
    if rooms_sold > available_rooms:
        raise Invalid(_("More rooms sold than available."), code="invalid_figures", field="rooms_sold")
    row = db.session.scalar(select(CompetitorMonth).filter_by(competitor_id=competitor_id, year=year, month=month))
    if row is None:
        row = CompetitorMonth(competitor_id=competitor_id, year=year, month=month)
        db.session.add(row)
    row.available_rooms, row.rooms_sold, row.room_revenue = available_rooms, rooms_sold, room_revenue
    db.session.flush()
    audit.record(actor, "competitor.month", entity=row, competitor=competitor.name, year=year, month=month)
    return row


def _row(name, available, occupied, revenue, total, sold):
    figures = room_rates(available, occupied, revenue)
    return {"hotel": name, "available_rooms": available, "fair_share": rate(available, total["available"]),
            "rooms_occupied": occupied, "rooms_sold": sold, "occupancy": figures["occupancy"],
            "actual_share": rate(occupied, total["occupied"]), "adr": figures["adr"], "room_revenue": money(revenue),
            "revenue_share": rate(revenue, total["revenue"]), "revpar": figures["revpar"]}


def competitor_table(store_code: str, year: int, month: int | None = None) -> dict:
    store = _hotel(store_code)
    p = report_period(year, month)
    own = room_kpis(store.code, p)
    own_revenue = parse_money(own["room_revenue"])
    stmt = (select(Competitor.name, func.sum(CompetitorMonth.available_rooms), func.sum(CompetitorMonth.rooms_sold),
                   func.sum(CompetitorMonth.room_revenue))
            .join(CompetitorMonth, CompetitorMonth.competitor_id == Competitor.id)
            .where(Competitor.store_id == store.id, CompetitorMonth.year == year)
            .group_by(Competitor.name).order_by(Competitor.name))
    if month:
        stmt = stmt.where(CompetitorMonth.month == month)
    others = [(n, int(a), int(s), int(r)) for n, a, s, r in db.session.execute(stmt)]
    # rooms_sold stays in each row for existing clients: own rooms sold without complimentary
    # ones; a competitor's entered figure (which counts what it occupied) for both.
    hotels = [(store.name, own["available_rooms"], own["rooms_occupied"], own_revenue)] + others
    sold = [own["rooms_sold"]] + [o[2] for o in others]
    total = {"available": sum(h[1] for h in hotels), "occupied": sum(h[2] for h in hotels),
             "revenue": sum(h[3] for h in hotels)}
    rows = [_row(*h, total, s) for h, s in zip(hotels, sold, strict=True)]
    listed = {n for n, *_rest in others}
    return {"rows": rows, "total": _row(_("Total"), total["available"], total["occupied"], total["revenue"], total,
                                        sum(sold)),
            "missing": [c.name for c in competitors_of(store.code) if c.name not in listed]}
