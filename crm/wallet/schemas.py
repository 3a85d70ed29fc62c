from marshmallow import Schema, fields, validate

from ..cards.models import PAYMENT_METHODS
from ..core.fields import Bool
from ..core.money import Money
from ..coupons.schemas import CouponSchema  # noqa: F401  (registers the nested schema)


class WalletSchema(Schema):
    balance = Money()
    principal = Money()
    bonus = Money()
    pin_set = fields.Bool()
    pin_locked = fields.Bool()


class TopUpInSchema(Schema):
    store_code = fields.Str(required=True)
    amount = Money(required=True, validate=validate.Range(min=1, max=100_000_000, error="Top up 0.01 to 1000000."))
    payment_method = fields.Str(required=True, validate=validate.OneOf(PAYMENT_METHODS))


class TopUpSchema(Schema):
    id = fields.Int()
    principal_added = Money()
    bonus_added = Money()
    coupons = fields.List(fields.Nested("CouponSchema"), metadata={"description": "Gift coupons issued with it."})
    gifts_unavailable = fields.List(fields.Dict(), metadata={
        "description": "Gifts this top-up qualified for but could not give: [{rule, reason}], reason "
                       "`out_of_stock` (the rule's or its coupon type's stock ran out) or `coupon_type_inactive` "
                       "(the coupon type was retired). The top-up itself went through."})
    wallet = fields.Nested(WalletSchema)


class RefundInSchema(Schema):
    store_code = fields.Str(required=True)
    reason = fields.Str(required=True, validate=validate.Length(min=1, max=200))


class RefundSchema(Schema):
    refunded_principal = Money()
    forfeited_bonus = Money()
    wallet = fields.Nested(WalletSchema)


class WalletEntrySchema(Schema):
    id = fields.Int()
    account = fields.Function(lambda e: e.account.kind, metadata={"description": "principal or bonus"})
    kind = fields.Str()
    amount = Money(allow_negative=True)
    checkout_id = fields.Int(allow_none=True)
    topup_id = fields.Int(allow_none=True)
    reverses_id = fields.Int(allow_none=True)
    store_id = fields.Int(allow_none=True)
    reason = fields.Str()
    created_at = fields.AwareDateTime()


class PinInSchema(Schema):
    pin = fields.Str(required=True, load_only=True)
    current_pin = fields.Str(load_default=None, load_only=True)


class TierSchema(Schema):
    id = fields.Int(dump_only=True)
    min_amount = Money(required=True, validate=validate.Range(min=1))
    bonus = Money(required=True)
    valid_from = fields.Date(allow_none=True, load_default=None)
    valid_to = fields.Date(allow_none=True, load_default=None)
    active = Bool(load_default=True)


class TierUpdateSchema(TierSchema):
    """PATCH body: any subset of a tier's fields."""


class LiabilitySchema(Schema):
    wallet_principal = Money()
    wallet_bonus = Money()
    wallet_total = Money()
    points_outstanding = fields.Int()
    points_value = Money(metadata={"description": "Outstanding points at the redemption value."})
    coupons_face_value = Money(metadata={"description": "Face value of issued coupons still usable."})
