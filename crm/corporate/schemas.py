"""Bodies and answers of the corporate-account API (money "12.34", strict)."""
from marshmallow import Schema, fields, validate

from ..core.fields import Bool, Date
from ..core.money import Money
from .models import PAYMENT_METHODS

DOC_FORMATS = ("json", "xlsx", "pdf")
AGEING_FORMATS = ("csv", "xlsx")


class AccountInSchema(Schema):
    credit_limit = Money(required=True, validate=validate.Range(min=0, max=1_000_000_000),
                         metadata={"description": "Charges are refused once owed + bill would pass it. May be set "
                                                  "below what is owed: nothing is taken back, new charges wait."})
    active = Bool(metadata={"description": "false suspends the account: no new charges; payments and voids "
                                           "still post. Left out: a new account is active, an existing one "
                                           "keeps its state."})


class SignerSchema(Schema):
    member_id = fields.Int()
    name = fields.Function(lambda s: s.member.name)
    added_at = fields.AwareDateTime(attribute="created_at")


class AccountSchema(Schema):
    company_id = fields.Int()
    company = fields.Function(lambda a: a.company.name)
    discount_pct = fields.Function(lambda a: f"{a.company.discount_bp / 100:.2f}",
                                   metadata={"description": "the company's negotiated discount off list, per cent"})
    credit_limit = Money()
    owed = Money(metadata={"description": "negative: the company is in credit (a paid bill was voided)"})
    available = Money(metadata={"description": "what may still be charged (0.00 when suspended)"})
    active = fields.Bool()
    signers = fields.List(fields.Nested(SignerSchema))


class PaymentInSchema(Schema):
    amount = Money(required=True, validate=validate.Range(min=1, error="A payment is above zero."))
    method = fields.Str(required=True, validate=validate.OneOf(PAYMENT_METHODS))
    reference = fields.Str(load_default="", validate=validate.Length(max=100))
    received_on = Date(load_default=None, metadata={"description": "default today; never in the future"})


class EntrySchema(Schema):
    id = fields.Int()
    kind = fields.Str()
    amount = Money(allow_negative=True)
    method = fields.Str(allow_none=True)
    reference = fields.Str(allow_none=True)
    received_on = Date(allow_none=True)
    checkout_id = fields.Int(allow_none=True)
    created_at = fields.AwareDateTime()


class PaymentSchema(Schema):
    payment = fields.Nested(EntrySchema)
    account = fields.Nested(AccountSchema)


class StatementQuery(Schema):
    format = fields.Str(load_default="json", validate=validate.OneOf(DOC_FORMATS))


class StatementLineSchema(Schema):
    date = Date()
    kind = fields.Str(metadata={"description": "charge, reversal (a void), payment or adjustment"})
    store = fields.Str()
    bill_no = fields.Int(allow_none=True)
    signer = fields.Str()
    reference = fields.Str()
    amount = Money(allow_negative=True)
    balance = Money(allow_negative=True)


class StatementSchema(Schema):
    company_id = fields.Function(lambda s: s.account.company_id)
    company = fields.Function(lambda s: s.account.company.name)
    year = fields.Int()
    month = fields.Int()
    opening = Money(allow_negative=True)
    lines = fields.List(fields.Nested(StatementLineSchema))
    charges = Money(attribute="totals.charges", allow_negative=True)
    reversals = Money(attribute="totals.reversals", allow_negative=True)
    payments = Money(attribute="totals.payments", allow_negative=True)
    adjustments = Money(attribute="totals.adjustments", allow_negative=True)
    closing = Money(allow_negative=True)


class AgeingQuery(Schema):
    as_of = Date(load_default=None, metadata={"description": "default today (the chain's time zone)"})
    format = fields.Str(load_default=None, validate=validate.OneOf(AGEING_FORMATS))


class AgeingRowSchema(Schema):
    company_id = fields.Int()
    company = fields.Str()
    credit_limit = Money()
    active = fields.Bool()
    current = Money(metadata={"description": "charges 0–30 days old, after FIFO allocation of payments"})
    days_31_60 = Money()
    days_61_90 = Money()
    over_90 = Money()
    credit = Money(metadata={"description": "paid beyond the charges (a paid bill voided)"})
    owed = Money(allow_negative=True)


class AgeingTotalsSchema(Schema):
    current = Money()
    days_31_60 = Money()
    days_61_90 = Money()
    over_90 = Money()
    credit = Money()
    owed = Money(allow_negative=True)


class AgeingSchema(Schema):
    as_of = Date()
    companies = fields.List(fields.Nested(AgeingRowSchema))
    totals = fields.Nested(AgeingTotalsSchema)

