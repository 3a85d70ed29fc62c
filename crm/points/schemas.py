from marshmallow import Schema, fields, validate

from ..core.fields import Int


class LotSchema(Schema):
    remaining = fields.Int()
    earned_at = fields.AwareDateTime()
    expires_at = fields.AwareDateTime(allow_none=True)


class PointsSummarySchema(Schema):
    balance = fields.Int()
    available = fields.Int(metadata={"description": "Balance less points past expiry not yet expired by the job."})
    lots = fields.List(fields.Nested(LotSchema))


class PointsEntrySchema(Schema):
    id = fields.Int()
    kind = fields.Str()
    points = fields.Int()
    checkout_id = fields.Int(allow_none=True)
    reverses_id = fields.Int(allow_none=True)
    store_id = fields.Int(allow_none=True)
    staff_id = fields.Int(allow_none=True)
    reason = fields.Str()
    details = fields.Dict()
    created_at = fields.AwareDateTime()


class AdjustmentSchema(Schema):
    points = Int(required=True, validate=validate.Range(min=-1_000_000, max=1_000_000))
    reason = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    store_code = fields.Str(load_default=None, allow_none=True)
