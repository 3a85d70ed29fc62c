"""The hotel front desk (issue 17.2): reservations the PMS posts (one by one or as a CSV) and
the arrivals list that picks out the members among them.

A reservation is upserted on (hotel, reservation_no): `INSERT … ON CONFLICT DO NOTHING
RETURNING id` says whether it is new (the unique key decides, also between two posts of one
new reservation at once), and a known one is then updated in place.

The arrivals list of a hotel and a day is two statements whatever its length: the
reservations arriving that day with their members and levels (one join) and the members' stays
this year, not cancelled (one grouped count); the hotel comes from the per-worker store cache.
Nothing is asked per row (tests/test_frontdesk.py counts them)."""
import calendar
from dataclasses import dataclass
from datetime import date

from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..core import audit
from ..core.actor import Actor
from ..core.phones import normalise_mobile
from ..core.timeutil import local_today, utcnow
from ..errors import Invalid
from ..extensions import db
from ..members.merge_models import survivor_id
from ..members.models import Member, MemberLevel
from ..reports.imports import RowError, chunks, decode, rows_of
from ..reports.models import Stay
from ..stores import service as stores
from ..stores.models import Store
from .models import Reservation
from .schemas import ReservationInSchema

FREQUENT_STAYS = 3  # stays this year that make a "frequent guest" on the arrivals list
IMPORT_MAX_ROWS = 5000  # a CSV is imported at once, in the request: a PMS's day or week of changes
IMPORT_MAX_BYTES = 2 * 1024 * 1024
CSV_REQUIRED = ("reservation_no", "store_code", "arrival", "departure")
CSV_OPTIONAL = ("guest_name", "member_id", "card_no", "member_mobile", "rooms", "room_type", "status", "notes")
_VALUES = ("member_id", "guest_name", "arrival", "departure", "rooms", "room_type", "status", "notes")


# Hotels and members ---------------------------------------------------------------------------

def hotel(code: str, field: str = "store_code") -> Store:
    """The hotel with this code: 422 `unknown_store`, or `not_a_hotel` for a restaurant."""
    store = stores.get_by_code(code)
    if store.kind != "hotel":
        raise Invalid(_("%(code)s is not a hotel.", code=store.code), code="not_a_hotel", field=field)
    return store


def hotels() -> list[Store]:
    return [s for s in stores.list_stores() if s.kind == "hotel" and s.active]


def default_hotel(actor: Actor) -> Store | None:
    """The user's own store if it is a hotel, else the first hotel (None if there is none)."""
    found = hotels()
    own = next((s for s in found if s.id == actor.store_id), None)
    return own or (found[0] if found else None)


def _unknown_member(field: str, message: str):
    return Invalid(message, code="unknown_member", field=field)


def member_for(data: dict) -> int | None:
    """The member the PMS named, by member_id, else card, else mobile (a merged duplicate's
    reservations go to the survivor); None when it named none. 422 `unknown_member` when the
    one it named is not (or no longer, after an erasure) a member."""
    from ..cards import service as cards
    from ..members import service as members
    member_id = None
    if data.get("member_id") is not None:
        member_id = survivor_id(data["member_id"]) if db.session.get(Member, data["member_id"]) else None
        field, message = "member_id", _("No member has the id %(id)s.", id=data["member_id"])
    elif data.get("card_no"):
        card_no = cards.card_no_from_code(data["card_no"].replace(" ", ""))
        member_id = cards.member_id_for_card_no(card_no) if card_no else None
        field, message = "card_no", _("No member has that card.")
    elif data.get("member_mobile"):
        field = "member_mobile"
        try:
            mobile = normalise_mobile(data["member_mobile"])
        except ValueError as exc:
            raise Invalid(str(exc), code="invalid_mobile", field=field) from None
        message = _("No member has the mobile %(mobile)s.", mobile=mobile)
        member_id = members.id_for_guest_mobile(mobile)
    else:
        return None
    if member_id is None or db.session.scalar(select(Member.anonymised_at).where(Member.id == member_id)):
        raise _unknown_member(field, message)
    return member_id


# Saving -----------------------------------------------------------------------------------------

def _values(store: Store, member_id: int | None, data: dict) -> dict:
    if not data["reservation_no"].strip():
        raise Invalid(_("Give the reservation number."), code="reservation_no_required", field="reservation_no")
    if data["departure"] < data["arrival"]:
        raise Invalid(_("The departure is before the arrival."), code="departure_before_arrival", field="departure")
    if member_id is None and not data["guest_name"].strip():
        raise Invalid(_("Give the guest's name (or the member's id, card or mobile)."), code="guest_name_required",
                      field="guest_name")
    return {"store_id": store.id, "reservation_no": data["reservation_no"].strip(), "member_id": member_id,
            "guest_name": data["guest_name"].strip(), "arrival": data["arrival"], "departure": data["departure"],
            "rooms": data["rooms"], "room_type": data["room_type"].strip(), "status": data["status"],
            "notes": data["notes"].strip()}


def _prepare(data: dict) -> dict:
    """The row a loaded ReservationInSchema stands for (422 for an unknown hotel or member)."""
    store = hotel(data["store_code"])
    return _values(store, member_for(data), data)


def _upsert(values: dict) -> tuple[int, bool]:
    """(id, new?) of the reservation after writing these values."""
    now = utcnow()
    table = Reservation.__table__
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    new_id = db.session.execute(insert(table).values(**values, created_at=now, updated_at=now)
                                .on_conflict_do_nothing(index_elements=["store_id", "reservation_no"])
                                .returning(table.c.id)).scalar()
    if new_id is not None:
        return new_id, True
    row_id = db.session.execute(
        update(table).where(table.c.store_id == values["store_id"],
                            table.c.reservation_no == values["reservation_no"])
        .values(**{k: values[k] for k in _VALUES}, updated_at=now).returning(table.c.id)).scalar_one()
    return row_id, False


def _upsert_many(rows: list[dict]) -> int:
    """Write a part of a file in two statements: which numbers are known already (one SELECT on
    the unique key), then one INSERT … ON CONFLICT DO UPDATE of them all. Returns how many were
    new (a reservation another request adds meanwhile is updated all the same, counted as new)."""
    table, now = Reservation.__table__, utcnow()
    known = set()
    for store_id in {r["store_id"] for r in rows}:
        known.update((store_id, no) for no in db.session.scalars(select(table.c.reservation_no).where(
            table.c.store_id == store_id,
            table.c.reservation_no.in_([r["reservation_no"] for r in rows if r["store_id"] == store_id]))))
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table)
    db.session.execute(stmt.on_conflict_do_update(
        index_elements=["store_id", "reservation_no"],
        set_={c: stmt.excluded[c] for c in (*_VALUES, "updated_at")}),
        [{**r, "created_at": now, "updated_at": now} for r in rows])
    return sum(1 for r in rows if (r["store_id"], r["reservation_no"]) not in known)


def save(actor: Actor, data: dict) -> tuple[Reservation, bool]:
    """Create or update one reservation from a loaded ReservationInSchema: (reservation, created)."""
    values = _prepare(data)
    row_id, created = _upsert(values)
    reservation = db.session.get(Reservation, row_id, populate_existing=True)
    audit.record(actor, "reservation.create" if created else "reservation.update", entity_type="reservations",
                 entity_id=row_id, store_id=values["store_id"], reservation_no=values["reservation_no"],
                 status=values["status"])
    return reservation, created


def shown(reservation: Reservation) -> dict:
    return {**{c: getattr(reservation, c) for c in ("id", "reservation_no", "member_id", "guest_name", "arrival",
                                                    "departure", "nights", "rooms", "room_type", "status", "notes",
                                                    "updated_at")},
            "store_code": stores.get_store(reservation.store_id).code}


# CSV import -------------------------------------------------------------------------------------

def _once(known: dict, key, lookup):
    """lookup(), each key of a file looked up once (a PMS file names the same guests and hotel
    again and again); a refusal (422) is remembered and raised again for the key's next row."""
    if key not in known:
        try:
            known[key] = lookup()
        except Invalid as exc:
            known[key] = exc
    if isinstance(known[key], Invalid):
        raise known[key]
    return known[key]


def _member_once(data: dict, known: dict) -> int | None:
    """member_for, each member id, card or mobile of a file looked up once."""
    return _once(known, (data.get("member_id"), data.get("card_no"), data.get("member_mobile")),
                 lambda: member_for(data))


_ROW = ReservationInSchema()  # one for every row of every file: building a schema costs more than a row


def _hotel_once(code: str, known: dict) -> Store:
    """hotel(), each store code of a file looked up once."""
    return _once(known, code, lambda: hotel(code))


def _row_values(fields: dict, known: dict) -> dict:
    """A CSV row checked as the API checks a body: every problem of the row, not only the first."""
    given = {k: v for k, v in fields.items() if v != ""}
    problems = []
    try:
        data = _ROW.load(given)
    except ValidationError as exc:
        for column, messages in sorted(exc.messages.items()):
            message = messages[0] if isinstance(messages, list) else str(messages)
            problems.append(f"{column}: {_(message)}")
        raise RowError(*problems) from None
    try:
        store = _hotel_once(data["store_code"].strip().upper(), known["hotels"])
    except Invalid as exc:
        problems.append(str(exc.message))
        store = None
    try:
        member_id = _member_once(data, known["members"])
    except Invalid as exc:
        problems.append(f"{exc.field}: {exc.message}")
        member_id = None
    try:
        values = _values(store, member_id, data) if store is not None else None
    except Invalid as exc:
        problems.append(f"{exc.field}: {exc.message}")
    if problems:
        raise RowError(*problems)
    return values


def import_csv(actor: Actor, raw: bytes, *, skip_bad_rows: bool = False) -> dict:
    """Reservations from a CSV (UTF-8 or GBK/GB18030), in this request: every row checked first,
    every bad one reported with its line; with a bad row nothing is saved (422 `bad_rows`)
    unless `skip_bad_rows`. A number given twice in the file is a bad row (the second)."""
    if len(raw) > IMPORT_MAX_BYTES:
        raise Invalid(_("The file is larger than %(mb)d MB; send it in parts.", mb=IMPORT_MAX_BYTES // 2**20),
                      code="file_too_large", field="file")
    encoding = decode(raw)[1]
    good, errors, seen, known = [], [], set(), {"members": {}, "hotels": {}}
    for line, fields in rows_of(raw, CSV_REQUIRED, CSV_OPTIONAL):
        if len(good) + len(errors) >= IMPORT_MAX_ROWS:
            raise Invalid(_("The file has more than %(rows)d rows; send it in parts.", rows=IMPORT_MAX_ROWS),
                          code="too_many_rows", field="file")
        try:
            values = _row_values(fields, known)
            key = (values["store_id"], values["reservation_no"])
            if key in seen:
                raise RowError(_("reservation_no %(no)s appears twice in the file.", no=values["reservation_no"]))
        except RowError as exc:
            errors.append({"line": line, "message": str(exc), "problems": exc.problems})
            continue
        seen.add(key)
        good.append(values)
    if errors and not skip_bad_rows:
        raise Invalid(_("%(count)d rows are not valid; nothing was saved.", count=len(errors)), code="bad_rows",
                      field="file", errors=errors, skipped=len(errors) + len(good))
    result = {"imported": 0, "updated": 0, "skipped": len(errors), "errors": errors, "encoding": encoding}
    # In key order: two files of the same reservations in different orders (a PMS retry) then lock
    # their rows in one order and queue instead of deadlocking.
    good.sort(key=lambda v: (v["store_id"], v["reservation_no"]))
    for part in chunks(good, 500):
        new = _upsert_many(part)
        result["imported"] += new
        result["updated"] += len(part) - new
    audit.record(actor, "import.reservations", entity_type="reservations", imported=result["imported"],
                 updated=result["updated"], skipped=result["skipped"])
    return result


# The arrivals list ------------------------------------------------------------------------------

def _on(year: int, month: int, day: int) -> date:
    if (month, day) == (2, 29) and not calendar.isleap(year):
        return date(year, 2, 28)  # as birthday greetings do (cards/service.py)
    return date(year, month, day)


def birthday_in_stay(month: int | None, day: int | None, arrival: date, departure: date) -> date | None:
    """The date of the birthday that falls in the stay (arrival ≤ it < departure, or on the day
    of a day-use stay), across a year end too; 29 February is kept on 28 February in common years."""
    if month is None or day is None:
        return None
    try:
        when = _on(arrival.year, month, day)
        if when < arrival:
            when = _on(arrival.year + 1, month, day)
    except ValueError:  # a stay in year 9999
        return None
    return when if when < departure or when == arrival == departure else None


@dataclass
class Arrival:
    reservation_no: str
    status: str
    guest_name: str
    member_id: int | None
    level: dict | None
    stays_this_year: int
    frequent: bool
    birthday_in_stay: date | None
    preferences: list
    member_notes: str
    pms_notes: str
    room_type: str
    rooms: int
    arrival: date
    departure: date
    nights: int


def arrivals(store: Store, day: date) -> list[Arrival]:
    """Every reservation arriving at this hotel on this day and not cancelled, frequent guests first:
    by level (highest first; guests who are not members last), then stays this year, then name."""
    R, M, L = Reservation, Member, MemberLevel
    rows = db.session.execute(
        select(R.reservation_no, R.status, R.guest_name, R.member_id, R.room_type, R.rooms, R.arrival, R.departure,
               R.notes, M.name, M.birthday_month, M.birthday_day, M.preferences, M.notes.label("member_notes"),
               M.anonymised_at, L.code, L.name.label("level_name"), L.rank)
        .outerjoin(M, M.id == R.member_id).outerjoin(L, L.id == M.level_id)
        .where(R.store_id == store.id, R.arrival == day, R.status != "cancelled")).all()
    members = sorted({r.member_id for r in rows if r.member_id is not None})
    stays = {}
    for part in chunks(members, 1000):
        stays.update(db.session.execute(
            select(Stay.member_id, func.count()).where(
                Stay.member_id.in_(part), Stay.arrival >= date(day.year, 1, 1), Stay.arrival < day,
                Stay.cancelled.is_(False)).group_by(Stay.member_id)).all())
    out = []
    for r in rows:
        member = r.member_id is not None and r.anonymised_at is None
        count = stays.get(r.member_id, 0) if member else 0
        out.append(Arrival(
            reservation_no=r.reservation_no, status=r.status, guest_name=(r.name if member else "") or r.guest_name,
            member_id=r.member_id if member else None,
            level={"code": r.code, "name": r.level_name, "rank": r.rank} if member else None,
            stays_this_year=count, frequent=count >= FREQUENT_STAYS,
            birthday_in_stay=birthday_in_stay(r.birthday_month, r.birthday_day, r.arrival, r.departure)
            if member else None,
            preferences=list(r.preferences or []) if member else [],
            member_notes=(r.member_notes or "") if member else "", pms_notes=r.notes, room_type=r.room_type,
            rooms=r.rooms, arrival=r.arrival, departure=r.departure, nights=(r.departure - r.arrival).days))
    out.sort(key=lambda a: (-(a.level["rank"] if a.level else -1), -a.stays_this_year, a.guest_name,
                            a.reservation_no))
    return out


def today_of(store: Store) -> date:
    return local_today(store.timezone)
