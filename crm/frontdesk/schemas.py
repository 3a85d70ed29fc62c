"""Schemas of the front desk API: a reservation as the PMS posts it, and the arrivals list."""
import re
from datetime import date

from marshmallow import Schema, ValidationError, fields, validate

from ..core.fields import Int
from .models import NAME_MAX, NOTES_MAX, NUMBER_MAX, ROOM_TYPE_MAX, ROOMS_MAX, STATUSES

FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _printable(value: str):
    """A CSV cell is not checked by the JSON body's guard (core/bounds.py): no control characters."""
    if _CONTROL.search(value):
        raise ValidationError("Contains a control character.")


def _text(max_length, **kwargs):
    return fields.Str(validate=[validate.Length(max=max_length), _printable], **kwargs)


_DATES = validate.Range(min=FIRST_DAY, max=LAST_DAY)


class ReservationInSchema(Schema):
    """One reservation from the PMS; sending the same store_code and reservation_no again updates it."""
    reservation_no = fields.Str(required=True, validate=[validate.Length(min=1, max=NUMBER_MAX), _printable])
    store_code = fields.Str(required=True, validate=[validate.Length(min=1, max=16), _printable])
    guest_name = _text(NAME_MAX, load_default="", metadata={
        "description": "As the PMS has it; for a member it may be left out (the member's name is shown)."})
    member_id = Int(allow_none=True, load_default=None, validate=validate.Range(min=1))
    card_no = _text(128, allow_none=True, load_default=None, metadata={
        "description": "The member's card number or the code scanned from it."})
    member_mobile = _text(32, allow_none=True, load_default=None)
    arrival = fields.Date(required=True, validate=_DATES)
    departure = fields.Date(required=True, validate=_DATES, metadata={"description": "≥ arrival (equal: day use)"})
    rooms = Int(load_default=1, validate=validate.Range(min=1, max=ROOMS_MAX))
    room_type = _text(ROOM_TYPE_MAX, load_default="")
    status = fields.Str(load_default="booked", validate=validate.OneOf(STATUSES))
    notes = _text(NOTES_MAX, load_default="", metadata={"description": "The PMS's remarks, shown to the desk."})


class ReservationSchema(Schema):
    id = fields.Int()
    reservation_no = fields.Str()
    store_code = fields.Str()
    member_id = fields.Int(allow_none=True)
    guest_name = fields.Str()
    arrival = fields.Date()
    departure = fields.Date()
    nights = fields.Int()
    rooms = fields.Int()
    room_type = fields.Str()
    status = fields.Str()
    notes = fields.Str()
    updated_at = fields.AwareDateTime()


class ReservationImportArgs(Schema):
    skip_bad_rows = fields.Bool(load_default=False, metadata={
        "description": "Save the good rows and report the bad ones; otherwise a file with a bad row saves nothing."})


class RowErrorSchema(Schema):
    line = fields.Int()
    message = fields.Str()
    problems = fields.List(fields.Str())


class ReservationImportSchema(Schema):
    imported = fields.Int(metadata={"description": "new reservations"})
    updated = fields.Int(metadata={"description": "reservations already known, updated"})
    skipped = fields.Int()
    errors = fields.List(fields.Nested(RowErrorSchema))
    encoding = fields.Str()


class ArrivalsQuery(Schema):
    store_code = fields.Str(load_default=None, validate=validate.Length(max=16), metadata={
        "description": "The hotel; default: your own store if it is a hotel, else the only hotel."})
    date = fields.Date(load_default=None, validate=_DATES, metadata={
        "description": "Arrival date (default: today in the hotel's time zone); any date is allowed."})


class ArrivalLevelSchema(Schema):
    code = fields.Str()
    name = fields.Str()
    rank = fields.Int()


class ArrivalSchema(Schema):
    reservation_no = fields.Str()
    status = fields.Str(metadata={"description": "booked or checked_in (cancelled ones are left out)"})
    guest_name = fields.Str(metadata={"description": "the member's name for a member, else the PMS's"})
    member_id = fields.Int(allow_none=True)
    level = fields.Nested(ArrivalLevelSchema, allow_none=True)
    stays_this_year = fields.Int(metadata={"description": "the member's stays at any hotel of the chain, not "
                                                          "cancelled, arriving this calendar year before this day"})
    frequent = fields.Bool(metadata={"description": "stays_this_year reaches FREQUENT_STAYS"})
    birthday_in_stay = fields.Date(allow_none=True, metadata={"description": "the birthday's date when "
                                                                             "arrival ≤ it < departure"})
    preferences = fields.List(fields.Str())
    member_notes = fields.Str()
    pms_notes = fields.Str()
    room_type = fields.Str()
    rooms = fields.Int()
    arrival = fields.Date()
    departure = fields.Date()
    nights = fields.Int()


class ArrivalsSchema(Schema):
    store_code = fields.Str()
    date = fields.Date()
    today = fields.Date(metadata={"description": "today in the hotel's time zone"})
    frequent_stays = fields.Int(metadata={"description": "stays this year that make a frequent guest"})
    items = fields.List(fields.Nested(ArrivalSchema))
