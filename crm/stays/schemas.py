from marshmallow import Schema, fields, validate

from ..core.fields import Bool, Date, Id, Int
from ..core.money import Money
from ..core.segments import SEGMENT_KEYS

_PLAIN = validate.Regexp(r"^[^\x00-\x1f\x7f]*$", error="Use text without control characters.")
_MAX_FEN = 100_000_000_000  # 1,000,000,000.00: more than any stay


def _text(low, high, **kw):
    return fields.Str(validate=[validate.Length(min=low, max=high), _PLAIN], **kw)


class StayPostSchema(Schema):
    """One stay at check-out, from the PMS."""
    stay_no = _text(1, 64, required=True, metadata={"description": "the PMS's number; unique per hotel"})
    store_code = _text(1, 16, required=True, metadata={"description": "the hotel"})
    arrival = Date(required=True)
    departure = Date(required=True, metadata={"description": "arrival = departure is day use"})
    rooms = Int(validate=validate.Range(min=1, max=100_000), load_default=1)
    room_revenue = Money(required=True, validate=validate.Range(max=_MAX_FEN),
                         metadata={"description": "for the whole stay"})
    fb_revenue = Money(validate=validate.Range(max=_MAX_FEN), load_default=0,
                       metadata={"description": "F&B posted to the room; earns at the stay's rate"})
    segment = fields.Str(required=True, validate=validate.OneOf(SEGMENT_KEYS))
    member_id = Id(metadata={"description": "the member; or member_mobile, or card_code (one of them)"})
    member_mobile = _text(1, 32)
    card_code = _text(1, 128)
    company = _text(0, 200)
    sales_rep = _text(0, 64)
    complimentary = Bool(load_default=False)
    day_use = Bool(load_default=False)
    cancelled = Bool(load_default=False, metadata={"description": "cancelled in the PMS: its points are "
                                                                  "taken back"})


class StaySchema(Schema):
    id = fields.Int()
    stay_no = fields.Str()
    store_code = fields.Str()
    arrival = fields.Date()
    departure = fields.Date()
    rooms = fields.Int()
    room_revenue = Money()
    fb_revenue = Money()
    segment = fields.Str(allow_none=True)
    member_id = fields.Int(allow_none=True)
    company = fields.Str()
    complimentary = fields.Bool()
    day_use = fields.Bool()
    cancelled = fields.Bool()


class StayPointsSchema(Schema):
    earned = fields.Int(metadata={"description": "points credited by this posting"})
    reversed = fields.Int(metadata={"description": "points taken back from an earlier posting of the stay"})
    shortfall = fields.Int(metadata={"description": "of those, points the member had already spent (written off)"})
    changed = fields.Bool(metadata={"description": "false: the stay earns as it did; nothing written"})
    total = fields.Int(metadata={"description": "what the stay has earned as it stands"})


class StayMemberSchema(Schema):
    id = fields.Int()
    level = fields.Str(metadata={"description": "level code after the posting"})
    level_name = fields.Str()
    points_balance = fields.Int()


class StayResultSchema(Schema):
    stay = fields.Nested(StaySchema)
    points = fields.Nested(StayPointsSchema)
    member = fields.Nested(StayMemberSchema, allow_none=True)


class RatesSchema(Schema):
    rates = fields.Dict(keys=fields.Str(validate=validate.OneOf(SEGMENT_KEYS)),
                        values=Int(validate=validate.Range(min=0, max=1000)), required=True,
                        metadata={"description": "segment → points per full points_earn_unit of room + F&B "
                                                 "revenue (before the level multiplier); segments left out keep "
                                                 "theirs"})
    points_earn_unit = Money(dump_only=True)
