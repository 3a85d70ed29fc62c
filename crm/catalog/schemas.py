from marshmallow import Schema, fields, validate

from ..core.fields import Bool, DecimalString, Int
from ..core.money import Money


class ItemSchema(Schema):
    sku = fields.Str(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_\-]{1,32}$",
                                                             error="1–32 letters, digits, dash or underscore."))
    name = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    category = fields.Str(required=True, validate=validate.Length(min=1, max=32))
    list_price = Money(required=True)
    member_price = Money(allow_none=True)
    member_prices = fields.Dict(keys=fields.Str(), values=Money(),
                                metadata={"description": "Member price per level code, overriding member_price."})
    valid_from = fields.Date(allow_none=True)
    valid_to = fields.Date(allow_none=True)
    store_codes = fields.List(fields.Str(validate=validate.Length(max=32)), validate=validate.Length(max=200),
                              metadata={"description": "Sold only in these stores; empty = all."})
    active = Bool()


class ItemUpdateSchema(ItemSchema):
    """PATCH body: any subset of an item's fields except its SKU."""


class ItemQuery(Schema):
    q = fields.Str(load_default="")
    category = fields.Str(load_default=None)
    page = Int(load_default=1, validate=validate.Range(min=1))
    per_page = Int(load_default=50, validate=validate.Range(min=1, max=200))


class PromotionSchema(Schema):
    code = fields.Str(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_\-]{1,32}$"))
    name = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    rate = DecimalString(required=True, attribute="rate_pct",
                          validate=validate.Range(min=10, max=99.99),
                          metadata={"description": "DecimalString of the list price paid: \"77.00\" is 7.7折 "
                                                   "(under 10 is refused: it is almost always 7.7 typed for 77)."})
    categories = fields.List(fields.Str(validate=validate.Length(min=1, max=32)), load_default=list,
                             validate=validate.Length(max=100))
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)
    members_only = Bool(load_default=False)
    auto_apply = Bool(load_default=True)
    store_code = fields.Str(allow_none=True, load_default=None)


class PromotionUpdateSchema(PromotionSchema):
    """PATCH body: any subset of a promotion's fields except its code."""
