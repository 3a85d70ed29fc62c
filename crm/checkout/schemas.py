from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..cards.privacy import CardNumber
from ..core.fields import Id, Int
from ..core.messages import QTY_RANGE
from ..core.money import Money
from ..core.segments import SEGMENT_KEYS


class LineInSchema(Schema):
    sku = fields.Str(required=True, validate=validate.Length(min=1, max=32))
    qty = Int(required=True, validate=validate.Range(min=1, max=999, error=QTY_RANGE))


TENDER_INPUT_METHODS = ("cash", "bank_card", "wechat_pay", "alipay", "stored_value", "company_account")


class TenderInSchema(Schema):
    method = fields.Str(required=True, validate=validate.OneOf(TENDER_INPUT_METHODS),
                        metadata={"description": "`stored_value` is the wallet (as `wallet_amount`); "
                                                 "`company_account` signs the amount to the member's company "
                                                 "account (挂账: the member must be an authorised signer; 409 "
                                                 "`credit_limit_exceeded` past the limit)."})
    amount = Money(load_default=None, validate=validate.Range(min=1, error="A payment is above zero."),
                   metadata={"description": "Leave it out on one tender to have it pay the rest of the bill."})


class TenderOutSchema(Schema):
    method = fields.Str(metadata={"description": "cash, bank_card, wechat_pay, alipay, stored_value, "
                                                 "company_account (signed to the company), or `other` "
                                                 "(a bill whose client did not say how it was paid)."})
    amount = Money()


class CheckoutInSchema(Schema):
    store_code = fields.Str(required=True)
    card_code = fields.Str(validate=validate.Length(min=1, max=200))
    member_id = Id()
    items = fields.List(fields.Nested(LineInSchema), required=True,
                        validate=validate.Length(min=1, max=200, error="A bill has 1 to 200 lines."))
    covers = Int(allow_none=True, validate=validate.Range(min=1, max=1000))
    segment = fields.Str(allow_none=True, validate=validate.OneOf(SEGMENT_KEYS))
    redeem_points = Int(load_default=0, validate=validate.Range(min=0, max=10_000_000))
    promotion_codes = fields.List(fields.Str(validate=validate.Length(min=1, max=32)), load_default=list,
                                  validate=validate.Length(max=20))
    coupon_codes = fields.List(fields.Str(validate=validate.Length(min=1, max=20)), load_default=list,
                               validate=validate.Length(max=10))
    wallet_amount = Money(load_default=0, metadata={"description": "Part of the bill paid from stored value."})
    pin = fields.Str(validate=validate.Regexp(r"^[0-9]{6}$", error="The PIN is 6 digits."), load_only=True)
    tenders = fields.List(
        fields.Nested(TenderInSchema), validate=validate.Length(max=10), load_default=None,
        metadata={"description": "How the bill is paid. The parts add up to what is due after coupons and "
                                 "points (the response's `due` + `wallet_paid`), else 422 "
                                 "`tenders_do_not_add_up`; one part may leave its amount out to pay the rest. "
                                 "Left out: the stored-value part is one tender and the rest one tender "
                                 "`other`, as before tenders existed."})

    @validates_schema
    def _one_member_reference(self, data, **kwargs):
        if data.get("card_code") and data.get("member_id"):
            raise ValidationError("Send either card_code or member_id, not both.", "card_code")


class LineOutSchema(Schema):
    sku = fields.Str()
    name = fields.Str()
    qty = fields.Int()
    list_price = Money()
    unit_price = Money()
    amount = Money()
    promotion = fields.Str(allow_none=True)


class MemberBriefSchema(Schema):
    id = fields.Int()
    name = fields.Str()
    level = fields.Function(lambda m: m.level.code)


class _Totals(Schema):
    lines = fields.List(fields.Nested(LineOutSchema))
    list_total = Money()
    member_total = Money()
    savings = Money()
    coupon_discount = Money()
    points_redeemed = fields.Int()
    points_value = Money()
    wallet_paid = Money()
    wallet_principal = Money()
    wallet_bonus = Money()
    due = Money(metadata={"description": "Paid by other means than stored value (see `tenders`)."})
    points_earned = fields.Int()
    tenders = fields.List(fields.Nested(TenderOutSchema), metadata={
        "description": "How the bill is (to be) paid; the parts add up to due + wallet_paid."})


class AppliedCouponSchema(Schema):
    code = fields.Function(lambda pair: pair[0].code)
    name = fields.Function(lambda pair: pair[0].definition.name)
    discount = fields.Function(lambda pair: Money()._serialize(pair[1], None, None))


class QuoteSchema(_Totals):
    coupons = fields.List(fields.Nested(AppliedCouponSchema))
    store_code = fields.Function(lambda q: q.store.code)
    member = fields.Nested(MemberBriefSchema, allow_none=True)
    points_available = fields.Int(allow_none=True)


class CheckoutSchema(_Totals):
    id = fields.Int()
    status = fields.Str()
    store_code = fields.Function(lambda c: c.store.code)
    member_id = fields.Int(allow_none=True)
    card_no = CardNumber(attribute="card", allow_none=True)  # masked for roles that do not print cards
    covers = fields.Int(allow_none=True)
    segment = fields.Str(allow_none=True)
    joined_at_visit = fields.Bool()
    created_at = fields.AwareDateTime()
    voided_at = fields.AwareDateTime(allow_none=True)
    void_reason = fields.Str(allow_none=True)
    points_balance = fields.Int(attribute="points_balance_after", allow_none=True,
                                metadata={"description": "The member's points right after this bill closed."})


class VoidInSchema(Schema):
    reason = fields.Str(required=True, validate=validate.Length(min=1, max=200))


class VoidSchema(Schema):
    checkout = fields.Nested(CheckoutSchema)
    points_restored = fields.Int()
    points_reclaimed = fields.Int()
    points_written_off = fields.Int(metadata={"description": "Earned points already spent, so not taken back."})
    wallet_restored = Money()
    wallet_paid_back = Money(metadata={"description": "Stored value of an anonymised member (PIPL erasure) "
                                                      "that came back with the void: pay it to the guest now; "
                                                      "its bonus part is forfeited."})
    coupons_restored = fields.Int()
    company_account_reversed = Money(metadata={"description": "What the void gave back to the company account "
                                                              "the bill was signed to (0.00 if none)."})


class CheckoutQuery(Schema):
    store_code = fields.Str(load_default=None)
    member_id = Id(load_default=None)
    page = Int(load_default=1, validate=validate.Range(min=1))
    per_page = Int(load_default=20, validate=validate.Range(min=1, max=200))
