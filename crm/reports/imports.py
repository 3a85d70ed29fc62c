"""CSV imports of checks (POS) and stays (PMS): every row validated, every bad row reported
with its line number; a file with errors imports nothing unless the caller skips bad rows.
Re-importing a check_no / stay_no of the same store updates the row, never duplicates it."""
import csv
import io
import re
from datetime import date, datetime

from flask_babel import gettext as _
from sqlalchemy import select, tuple_

from ..core import audit
from ..core.actor import Actor
from ..core.money import parse_amount
from ..core.phones import normalise_mobile
from ..core.segments import SEGMENT_KEYS
from ..core.timeutil import zone
from ..errors import Invalid
from ..extensions import db
from ..members import companies
from ..members import service as members
from ..stores import service as stores
from .models import Check, Stay

CHECK_COLUMNS = ("check_no", "store_code", "closed_at", "amount", "covers", "segment")
CHECK_OPTIONAL = ("member_mobile", "joined_at_visit")
STAY_COLUMNS = ("stay_no", "store_code", "arrival", "departure", "rooms", "room_revenue", "segment")
STAY_OPTIONAL = ("member_mobile", "company", "sales_rep", "complimentary", "day_use")
_WHOLE = re.compile(r"^[0-9]{1,9}$")
_TRUE, _FALSE = {"1", "true", "yes", "y", "是", "t"}, {"", "0", "false", "no", "n", "否", "f"}


class RowError(ValueError):
    pass


def _text(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise Invalid(_("The file is not UTF-8 text."), code="invalid_encoding", field="file") from None
    return raw.lstrip("\ufeff")


def _rows(raw, required, optional):
    """(line number, {column: value}) for each data row; 422 if the header lacks a column."""
    reader = csv.DictReader(io.StringIO(_text(raw), newline=""))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise Invalid(_("The header row lacks: %(columns)s.", columns=", ".join(missing)), code="missing_columns",
                      field="file", missing=missing)
    unknown = [c for c in header if c and c not in required + optional]
    if unknown:
        raise Invalid(_("Unknown columns: %(columns)s.", columns=", ".join(unknown)), code="unknown_columns",
                      field="file", unknown=unknown)
    reader.fieldnames = header
    for row in reader:
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # blank line
        yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}


def _amount(value, column):
    try:
        fen = parse_amount(value)
    except ValueError as exc:
        raise RowError(f"{column}: {exc}") from None
    if fen < 0:
        raise RowError(_("%(column)s cannot be negative.", column=column))
    return fen


def _count(value, column, minimum, maximum=100_000):
    if not _WHOLE.match(value) or not minimum <= int(value) <= maximum:
        raise RowError(_("%(column)s must be a whole number from %(min)d to %(max)d.", column=column, min=minimum,
                         max=maximum))
    return int(value)


def _flag(value, column):
    low = value.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise RowError(_("%(column)s must be 1 or 0 (yes or no).", column=column))


def _date(value, column):
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RowError(_("%(column)s must be a date like 2026-05-01.", column=column)) from None


def _segment(value):
    if value not in SEGMENT_KEYS:
        raise RowError(_("Unknown segment %(value)s.", value=value or "—"))
    return value


class _Lookups:
    """Stores, members by mobile and companies by name, each read once per file."""

    def __init__(self):
        self.stores = {s.code: s for s in stores.list_stores()}
        self.mobiles, self.companies = {}, None

    def store(self, code):
        store = self.stores.get(code.upper())
        if store is None:
            raise RowError(_("Unknown store %(code)s.", code=code or "—"))
        return store

    def member(self, mobile):
        if not mobile:
            return None
        try:
            mobile = normalise_mobile(mobile)
        except ValueError as exc:
            raise RowError(f"member_mobile: {exc}") from None
        if mobile not in self.mobiles:
            self.mobiles[mobile] = members.id_for_mobile(mobile)
        if self.mobiles[mobile] is None:
            raise RowError(_("No member has the mobile %(mobile)s.", mobile=mobile))
        return self.mobiles[mobile]

    def company(self, name):
        if self.companies is None:
            self.companies = companies.ids_by_name()
        return self.companies.get(name)


def _check(fields, look):
    store = look.store(fields["store_code"])
    try:
        closed = datetime.fromisoformat(fields["closed_at"].replace("Z", "+00:00"))
    except ValueError:
        raise RowError(_("closed_at must be a time like 2026-05-01T19:30:00+08:00.")) from None
    if closed.tzinfo is None:  # the till's own clock: the store's time zone
        closed = closed.replace(tzinfo=zone(store.timezone))
    if not fields["check_no"]:
        raise RowError(_("check_no is empty."))
    return store.id, fields["check_no"], dict(
        closed_at=closed, amount=_amount(fields["amount"], "amount"), covers=_count(fields["covers"], "covers", 0),
        segment=_segment(fields["segment"]), member_id=look.member(fields.get("member_mobile", "")),
        joined_at_visit=_flag(fields.get("joined_at_visit", ""), "joined_at_visit"))


def _stay(fields, look):
    store = look.store(fields["store_code"])
    if store.kind != "hotel":
        raise RowError(_("%(code)s is not a hotel.", code=store.code))
    if not fields["stay_no"]:
        raise RowError(_("stay_no is empty."))
    arrival, departure = _date(fields["arrival"], "arrival"), _date(fields["departure"], "departure")
    if departure < arrival:
        raise RowError(_("departure is before arrival."))
    day_use = _flag(fields.get("day_use", ""), "day_use")
    if day_use and departure != arrival:
        raise RowError(_("A day-use stay arrives and departs on the same day."))
    segment = _segment(fields["segment"])
    company = fields.get("company", "")
    return store.id, fields["stay_no"], dict(
        arrival=arrival, departure=departure, rooms=_count(fields["rooms"], "rooms", 1),
        room_revenue=_amount(fields["room_revenue"], "room_revenue"), segment=segment,
        member_id=look.member(fields.get("member_mobile", "")), company_name=company,
        company_id=look.company(company) if company else None, sales_rep=fields.get("sales_rep", "")[:64],
        complimentary=_flag(fields.get("complimentary", ""), "complimentary") or segment == "complimentary",
        day_use=day_use or departure == arrival)


KINDS = {"checks": (Check, "check_no", CHECK_COLUMNS, CHECK_OPTIONAL, _check),
         "stays": (Stay, "stay_no", STAY_COLUMNS, STAY_OPTIONAL, _stay)}


def run(actor: Actor, kind: str, raw, *, skip_bad_rows: bool = False) -> dict:
    """Import a CSV of checks or stays: {imported, updated, skipped, errors: [{line, message}]}."""
    model, number, required, optional, parse = KINDS[kind]
    look, good, errors = _Lookups(), {}, []
    for line, fields in _rows(raw, required, optional):
        try:
            store_id, no, values = parse(fields, look)
        except RowError as exc:
            errors.append({"line": line, "message": str(exc)})
            continue
        if (store_id, no) in good:
            errors.append({"line": line, "message": _("%(column)s %(no)s appears twice in the file.",
                                                      column=number, no=no)})
            continue
        good[(store_id, no)] = values
    result = {"imported": 0, "updated": 0, "skipped": len(errors), "errors": errors}
    if errors and not skip_bad_rows:
        result["skipped"] = len(errors) + len(good)
        return result
    keys = list(good)
    existing = {}
    for i in range(0, len(keys), 500):
        chunk = keys[i:i + 500]
        existing.update({(r.store_id, getattr(r, number)): r for r in db.session.scalars(
            select(model).where(tuple_(model.store_id, getattr(model, number)).in_(chunk)))})
    for (store_id, no), values in good.items():
        row = existing.get((store_id, no))
        if row is None:
            db.session.add(model(store_id=store_id, **{number: no}, **values))
            result["imported"] += 1
        else:
            for key, value in values.items():
                setattr(row, key, value)
            result["updated"] += 1
    db.session.flush()
    audit.record(actor, f"import.{kind}", entity_type=kind, imported=result["imported"], updated=result["updated"],
                 skipped=result["skipped"])
    return result
