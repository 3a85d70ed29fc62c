from marshmallow import Schema, ValidationError, fields, validate

from ..core.fields import Bool, DecimalString, Int
from ..core.money import Money
from .models import KINDS


def _type_code(value):
    """A coupon type is named by its code, a string (not an object or a number)."""
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= 32:
        raise ValidationError("Name the coupon type by its code.")
    return value.strip()


class CouponTypeSchema(Schema):
    code = fields.Str(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_\-]{1,32}$"))
    name = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    kind = fields.Str(required=True, validate=validate.OneOf(KINDS),
                      metadata={"description": "cash (amount off), item (pays for one SKU), gift, percent"})
    face_value = Money(load_default=0)
    min_spend = Money(load_default=0)
    rate = DecimalString(allow_none=True, load_default=None, attribute="rate_pct",
                          validate=validate.Range(min=10, max=99.99),
                          metadata={"description": "percent coupons: percent of the bill paid (\"88.00\")."})
    sku = fields.Str(allow_none=True, load_default=None)
    valid_days = Int(load_default=30, validate=validate.Range(min=1, max=3650))
    valid_to = fields.Date(allow_none=True, load_default=None)
    stock_total = Int(allow_none=True, load_default=None, validate=validate.Range(min=0, max=10_000_000),
                             metadata={"description": "Limited stock; empty for unlimited."})
    stock_left = fields.Int(dump_only=True, allow_none=True)
    active = Bool(load_default=True)


class CouponTypeUpdateSchema(Schema):
    name = fields.Str(validate=validate.Length(min=1, max=100))
    min_spend = Money()
    valid_days = Int(validate=validate.Range(min=1, max=3650))
    valid_to = fields.Date(allow_none=True)
    active = Bool()
    add_stock = Int(validate=validate.Range(min=1, max=10_000_000))


class CouponSchema(Schema):
    code = fields.Str()
    type = fields.Function(lambda c: c.definition.code)
    name = fields.Function(lambda c: c.definition.name)
    kind = fields.Function(lambda c: c.definition.kind)
    face_value = fields.Function(lambda c: Money()._serialize(c.definition.face_value, None, None))
    member_id = fields.Int()
    source = fields.Str()
    status = fields.Str()
    valid_from = fields.Date()
    valid_until = fields.Date()
    issued_at = fields.AwareDateTime()
    redeemed_at = fields.AwareDateTime(allow_none=True)
    checkout_id = fields.Int(allow_none=True)


class IssueSchema(Schema):
    coupon_type = fields.Str(required=True)
    reason = fields.Str(required=True, validate=validate.Length(min=1, max=200))


class GiftRuleSchema(Schema):
    id = fields.Int(dump_only=True)
    name = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    min_topup = Money(required=True, validate=validate.Range(min=1))
    coupon_type = fields.Function(lambda r: r.definition.code, deserialize=_type_code, required=True,
                                  metadata={"type": "string"})
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)
    stock = Int(required=True, load_only=True, validate=validate.Range(min=0, max=10_000_000))
    stock_total = fields.Int(dump_only=True)
    stock_left = fields.Int(dump_only=True)
    active = fields.Bool(dump_only=True)


class GiftRuleUpdateSchema(Schema):
    """PATCH body: any subset; stock only grows, by add_stock."""
    name = fields.Str(validate=validate.Length(min=1, max=100))
    min_topup = Money(validate=validate.Range(min=1))
    starts_on = fields.Date()
    ends_on = fields.Date()
    active = Bool(metadata={"description": "false stops the rule; true resumes it."})
    add_stock = Int(validate=validate.Range(min=1, max=10_000_000),
                           metadata={"description": "Added to both stock_total and stock_left."})


class PrizeSchema(Schema):
    id = fields.Int(dump_only=True)
    name = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    coupon_type = fields.Function(lambda p: p.definition.code, deserialize=_type_code, required=True,
                                  metadata={"type": "string"})
    weight = Int(required=True, validate=validate.Range(min=1, max=1_000_000))
    stock = Int(required=True, load_only=True, validate=validate.Range(min=0, max=10_000_000))
    stock_total = fields.Int(dump_only=True)
    stock_left = fields.Int(dump_only=True)
    active = fields.Bool(dump_only=True)


class PrizeUpdateSchema(Schema):
    """PATCH body: any subset; stock only grows, by add_stock."""
    name = fields.Str(validate=validate.Length(min=1, max=100))
    weight = Int(validate=validate.Range(min=1, max=1_000_000))
    active = Bool(metadata={"description": "false takes the prize out of the draw; true puts it back."})
    add_stock = Int(validate=validate.Range(min=1, max=10_000_000),
                           metadata={"description": "Added to both stock_total and stock_left."})


class DrawResultSchema(Schema):
    prize = fields.Function(lambda t: t.prize_name)
    coupon = fields.Nested(CouponSchema)
    draws_left = fields.Int()
