"""Schemas of the day-end API: money as "12.34", counts as integers, times in UTC."""
from marshmallow import Schema, fields, validate

from ..reports.exports import FORMATS


class DayEndQuery(Schema):
    store_code = fields.Str(required=True, validate=validate.Length(min=1, max=32))
    date = fields.Date(load_default=None, metadata={"description": "the store's local day; empty: today there"})
    format = fields.Str(load_default=None, validate=validate.OneOf(FORMATS))


class DayEndCheckIn(Schema):
    store_code = fields.Str(required=True, validate=validate.Length(min=1, max=32))
    date = fields.Date(required=True)
    note = fields.Str(load_default="", validate=validate.Length(max=200))
    seen = fields.Str(load_default=None, validate=validate.Length(min=1, max=64), metadata={
        "description": "the `fingerprint` of the day-end the checker saw: 409 `figures_changed` if the "
                       "figures moved since; leave out to keep the figures as they are when recorded"})


class DayEndStaffRefSchema(Schema):
    id = fields.Int()
    username = fields.Str()
    name = fields.Str()


class DayEndBillFigures(Schema):
    bills = fields.Int()
    covers = fields.Int()
    sales = fields.Str(metadata={"description": "member_total of the bills"})
    coupon_discount = fields.Str()
    points_value = fields.Str()
    paid = fields.Str(metadata={"description": "Σ tenders = sales − coupons − points"})
    tenders = fields.Dict(keys=fields.Str(), values=fields.Str(), metadata={"description": "method: amount"})


class DayEndFeesSchema(Schema):
    count = fields.Int()
    amount = fields.Str()
    by_method = fields.Dict(keys=fields.Str(), values=fields.Str())


class DayEndTopUpsSchema(Schema):
    count = fields.Int()
    principal = fields.Str()
    bonus = fields.Str()
    by_method = fields.Dict(keys=fields.Str(), values=fields.Dict())


class DayEndRefundTotals(Schema):
    count = fields.Int()
    principal = fields.Str(metadata={"description": "paid back"})
    bonus = fields.Str(metadata={"description": "forfeited"})


class DayEndSectionSchema(Schema):
    staff = fields.Nested(DayEndStaffRefSchema, allow_none=True, metadata={"description": "null in the store's total, "
                                                                                   "or when not recorded"})
    closed = fields.Nested(DayEndBillFigures, metadata={"description": "bills closed this day"})
    voided = fields.Nested(DayEndBillFigures, metadata={"description": "bills voided this day, whenever closed"})
    net = fields.Nested(DayEndBillFigures, metadata={"description": "closed − voided"})
    card_fees = fields.Nested(DayEndFeesSchema)
    top_ups = fields.Nested(DayEndTopUpsSchema)
    refunds = fields.Nested(DayEndRefundTotals)


class DayEndVoidSchema(Schema):
    checkout_id = fields.Int()
    closed_at = fields.DateTime()
    closed_on = fields.Date()
    closed_by = fields.Nested(DayEndStaffRefSchema, allow_none=True)
    voided_at = fields.DateTime()
    voided_by = fields.Nested(DayEndStaffRefSchema, allow_none=True)
    reason = fields.Str()
    member_id = fields.Int(allow_none=True)
    covers = fields.Int()
    sales = fields.Str()
    coupon_discount = fields.Str()
    points_value = fields.Str()
    paid = fields.Str()
    tenders = fields.Dict(keys=fields.Str(), values=fields.Str())


class DayEndRefundSchema(Schema):
    at = fields.DateTime()
    staff = fields.Nested(DayEndStaffRefSchema, allow_none=True)
    member_id = fields.Int()
    reason = fields.Str()
    principal = fields.Str()
    bonus = fields.Str()
    written_off = fields.Bool(metadata={"description": "a PIPL erasure's write-off: nothing was paid back"})


class DayEndMethodSchema(Schema):
    method = fields.Str()
    label = fields.Str()


class DayEndCheckSchema(Schema):
    id = fields.Int()
    store_code = fields.Str()
    date = fields.Date()
    checked_by = fields.Nested(DayEndStaffRefSchema)
    checked_at = fields.DateTime()
    note = fields.Str()
    totals = fields.Dict(keys=fields.Str(), metadata={"description": "the store's totals when checked"})


class DayEndChangeSchema(Schema):
    figure = fields.Str()
    then = fields.Raw()
    now = fields.Raw()
    difference = fields.Raw()


class DayEndSchema(Schema):
    store_code = fields.Str()
    store = fields.Str()
    date = fields.Date()
    timezone = fields.Str()
    from_ = fields.DateTime(data_key="from")
    to = fields.DateTime()
    methods = fields.List(fields.Nested(DayEndMethodSchema), metadata={"description": "tender methods of the day"})
    total = fields.Nested(DayEndSectionSchema)
    cashiers = fields.List(fields.Nested(DayEndSectionSchema))
    voids = fields.List(fields.Nested(DayEndVoidSchema))
    refunds = fields.List(fields.Nested(DayEndRefundSchema))
    takings = fields.Dict(keys=fields.Str(), values=fields.Str(), metadata={
        "description": "money taken by method: net tenders (not stored value or sign-for-bill), top-ups, card fees"})
    fingerprint = fields.Str(metadata={"description": "digest of the totals a check keeps; send it as a check's "
                                                     "`seen`"})
    checks = fields.List(fields.Nested(DayEndCheckSchema), metadata={"description": "newest first"})
    changed_since_check = fields.List(fields.Nested(DayEndChangeSchema), allow_none=True, metadata={
        "description": "totals that moved since the latest check; null if never checked"})
