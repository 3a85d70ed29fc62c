from decimal import Decimal

from marshmallow import Schema, fields, validate

from ..cards.privacy import CardNumber
from ..core.fields import DecimalString, Int
from ..core.money import Money
from ..core.segments import SEGMENT_KEYS
from .fields import Birthday, Mobile, ViewerMobile, ViewerPhone
from .models import COMPANY_CLASSES, GENDERS, PREFERENCE_MAX_LENGTH, PREFERENCES_MAX


class ConsentSchema(Schema):
    sms = fields.Bool()
    email = fields.Bool()


class _MemberInput(Schema):
    name = fields.Str(validate=validate.Length(min=1, max=100))
    mobile = Mobile()
    birthday = Birthday(allow_none=True)
    gender = fields.Str(allow_none=True, validate=validate.OneOf(GENDERS))
    email = fields.Email(allow_none=True)
    segment = fields.Str(allow_none=True, validate=validate.OneOf(SEGMENT_KEYS))
    company = fields.Str(allow_none=True, validate=validate.Length(max=200))
    sales_rep = fields.Str(allow_none=True, validate=validate.Length(max=64))
    notes = fields.Str(allow_none=True, validate=validate.Length(max=2000))
    tags = fields.List(fields.Str(validate=validate.Length(min=1, max=32)), validate=validate.Length(max=20))
    preferences = fields.List(
        fields.Str(validate=validate.Length(max=PREFERENCE_MAX_LENGTH)), allow_none=True,
        validate=validate.Length(max=PREFERENCES_MAX, error="Give at most {max} preferences."), metadata={
            "description": "What the hotel front desk should know (room, pillow, allergies …): the whole list "
                           f"as it should be, at most {PREFERENCES_MAX} items of {PREFERENCE_MAX_LENGTH} "
                           "characters; blank items and repeats are dropped; null or [] clears it."})
    marketing_consent = fields.Nested(ConsentSchema)
    service_consent = fields.Bool(metadata={"description": "Account messages (receipts, payment alerts, expiry "
                                                           "reminders); on unless withdrawn."})


class MemberCreateSchema(_MemberInput):
    name = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    mobile = Mobile(required=True)
    store_code = fields.Str(required=True)
    referral_code = fields.Str(allow_none=True, validate=validate.Length(max=32), metadata={
        "description": "The referral code of the member who brought this one (any case; spaces and hyphens "
                       "ignored); an unknown code is 422 `unknown_referral_code` and nothing is saved."})


class MemberUpdateSchema(_MemberInput):
    level_code = fields.Str()
    pipl_correction = fields.Bool(load_default=False, metadata={
        "description": "This edit answers the member's correction request under PIPL: it is logged in the "
                       "privacy request log with `correction_reason` (then required)."})
    correction_reason = fields.Str(allow_none=True, validate=validate.Length(max=200))


class LevelRefSchema(Schema):
    code = fields.Str()
    name = fields.Str()


class CardRefSchema(Schema):
    card_no = CardNumber()
    status = fields.Str()


class MemberSchema(Schema):
    id = fields.Int()
    name = fields.Str()
    mobile = ViewerMobile()
    birthday = fields.Str(allow_none=True)
    gender = fields.Str(allow_none=True)
    email = fields.Str(allow_none=True)
    segment = fields.Str(allow_none=True)
    level = fields.Nested(LevelRefSchema)
    company = fields.Function(lambda m: m.company.name if m.company else None)
    store_code = fields.Function(lambda m: m.store.code)
    sales_rep = fields.Str()
    tags = fields.List(fields.Str())
    marketing_consent = fields.Function(lambda m: {
        "sms": m.sms_consent, "email": m.email_consent,
        "sms_at": m.sms_consent_at.isoformat() if m.sms_consent_at else None,
        "email_at": m.email_consent_at.isoformat() if m.email_consent_at else None})
    service_consent = fields.Bool()
    service_consent_at = fields.DateTime(allow_none=True)
    notes = fields.Str()
    preferences = fields.List(fields.Str(), metadata={"description": "The front desk's list (room, pillow, "
                                                                      "allergies …)."})
    card = fields.Nested(CardRefSchema, attribute="live_card", allow_none=True)
    referral_code = fields.Str(metadata={"description": "The member's own code for referring others (老带新)."})
    referred_by_id = fields.Int(allow_none=True, metadata={"description": "The member who referred this one."})
    anonymised_at = fields.AwareDateTime(allow_none=True, metadata={
        "description": "When the member was erased by anonymisation (PIPL); null otherwise."})
    created_at = fields.AwareDateTime()


class MemberSearchArgs(Schema):
    q = fields.Str(load_default="", validate=validate.Length(max=100))
    page = Int(load_default=1, validate=validate.Range(min=1))
    per_page = Int(load_default=20, validate=validate.Range(min=1, max=200))


class LevelSchema(Schema):
    code = fields.Str(required=True, validate=validate.Regexp(r"^[a-z0-9_]{1,32}$"))
    name = fields.Str(required=True, validate=validate.Length(min=1, max=64))
    rank = Int(required=True, validate=validate.Range(min=0, max=100))
    points_multiplier = DecimalString(load_default=Decimal("1.00"),
                                       validate=validate.Range(min=0, min_inclusive=False, max=100))
    upgrade_spend = Money(allow_none=True, load_default=None)
    upgrade_topup = Money(allow_none=True, load_default=None)


class CompanySchema(Schema):
    id = fields.Int(dump_only=True)
    name = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    account_class = fields.Str(load_default="potential", validate=validate.OneOf(COMPANY_CLASSES))
    contact_person = fields.Str(load_default="", validate=validate.Length(max=100))
    contact_phone = ViewerPhone(load_default="", validate=validate.Length(max=32))
    address = fields.Str(load_default="", validate=validate.Length(max=255))
    negotiated_discount = DecimalString(attribute="discount_pct",
                                         load_default=Decimal("0"), validate=validate.Range(min=0, max=100))
    sales_rep = fields.Str(load_default="", validate=validate.Length(max=64))
    annual_spend = Money(dump_only=True, metadata={"description": "stays and member bills, last 365 days"})


class LevelUpdateSchema(LevelSchema):
    """PATCH body: any subset of a level's fields except its code."""


class CompanyUpdateSchema(CompanySchema):
    """PATCH body: any subset of a company's fields."""


class MemberRefSchema(Schema):
    id = fields.Int()
    name = fields.Str()
    referral_code = fields.Str()


class ReferralRewardSchema(Schema):
    status = fields.Str(metadata={"description": "granted, or reversed (its bill was voided)"})
    kind = fields.Str(metadata={"description": "points or coupon"})
    checkout_id = fields.Int()
    year = fields.Int(metadata={"description": "the calendar year it counts in (the bill's store time zone)"})
    referrer_points = fields.Int()
    referee_points = fields.Int()
    referrer_coupon_id = fields.Int(allow_none=True)
    referee_coupon_id = fields.Int(allow_none=True)
    created_at = fields.AwareDateTime()
    reversed_at = fields.AwareDateTime(allow_none=True)


class RefereeSchema(Schema):
    member_id = fields.Function(lambda row: row["member"].id)
    name = fields.Function(lambda row: row["member"].name)
    store_code = fields.Function(lambda row: row["member"].store.code)
    registered_at = fields.Function(lambda row: row["member"].created_at.isoformat())
    reward = fields.Nested(ReferralRewardSchema, allow_none=True)


class ReferralsSchema(Schema):
    referral_code = fields.Str()
    referred_by = fields.Nested(MemberRefSchema, allow_none=True)
    referees = fields.List(fields.Nested(RefereeSchema))
    year = fields.Int(metadata={"description": "this calendar year (the member's store time zone)"})
    rewarded_this_year = fields.Int(metadata={"description": "rewards counted against this year's cap"})
    yearly_cap = fields.Int(metadata={"description": "0 = no cap"})


class ReferralReportQuery(Schema):
    store_code = fields.Str(load_default=None, metadata={"description": "the referees' registering store; empty: "
                                                                        "the whole group"})
    from_ = fields.Date(required=True, data_key="from")
    to = fields.Date(required=True)
    format = fields.Str(load_default=None, validate=validate.OneOf(("csv", "xlsx")))


class ReferralFiguresSchema(Schema):
    referees = fields.Int()
    rewarded = fields.Int()
    reversed = fields.Int()
    referrer_points = fields.Int()
    referee_points = fields.Int()
    coupons = fields.Int()


class ReferrerRowSchema(ReferralFiguresSchema):
    member_id = fields.Int()
    name = fields.Str()
    referral_code = fields.Str()


class StoreRowSchema(ReferralFiguresSchema):
    store_code = fields.Str()
    store_name = fields.Str()


class ReferralReportSchema(Schema):
    from_ = fields.Date(data_key="from", attribute="from")
    to = fields.Date()
    referrers = fields.List(fields.Nested(ReferrerRowSchema))
    stores = fields.List(fields.Nested(StoreRowSchema))
    totals = fields.Nested(ReferralFiguresSchema)


# PIPL requests (members/pipl.py) ---------------------------------------------------------------

class ExportArgs(Schema):
    reason = fields.Str(required=True, validate=validate.Length(min=1, max=200), metadata={
        "description": "Why the copy is made (e.g. the member's written request of 3 May); logged."})


class MemberExportSchema(Schema):
    """Everything held about the member; the shape of each row follows its table."""
    exported_at = fields.Str()
    member = fields.Dict()
    consents = fields.Dict(metadata={"description": "current: each channel now; history: every grant and "
                                                    "withdrawal (the audit rows), with its source."})
    cards = fields.List(fields.Dict())
    points = fields.Dict(metadata={"description": "accounts, entries and lots."})
    wallet = fields.Dict(metadata={"description": "accounts, entries and top-ups."})
    bills = fields.List(fields.Dict(), metadata={"description": "Checkouts with their lines and tenders."})
    imported_checks = fields.List(fields.Dict())
    stays = fields.List(fields.Dict())
    reservations = fields.List(fields.Dict(), metadata={"description": "Hotel reservations the PMS sent."})
    coupons = fields.List(fields.Dict())
    draw_tickets = fields.List(fields.Dict())
    deliveries = fields.List(fields.Dict())
    notifications = fields.List(fields.Dict())
    level_changes = fields.List(fields.Dict())
    referrals = fields.List(fields.Dict())
    referred_members = fields.List(fields.Int())
    phone_link = fields.List(fields.Dict())
    merges = fields.List(fields.Dict(), metadata={"description": "Duplicates merged into the member, with their "
                                                                 "profile as it was (`from_profile`)."})
    card_fees = fields.List(fields.Dict())
    privacy_requests = fields.List(fields.Dict())
    audit = fields.List(fields.Dict())


class ErasureConfirmSchema(Schema):
    points = Int(required=True, validate=validate.Range(min=0))
    principal = Money(required=True)
    bonus = Money(required=True)


class ErasureSchema(Schema):
    reason = fields.Str(required=True, validate=validate.Length(max=200))
    wallet_rule = fields.Str(required=True, validate=validate.OneOf(("refund", "forfeit")), metadata={
        "description": "refund: the unspent principal is paid back and the bonus forfeited (a wallet refund); "
                       "forfeit: the whole stored value is written off. Points are always forfeited."})
    confirm = fields.Nested(ErasureConfirmSchema, required=True, metadata={
        "description": "The balances the manager saw (GET …/erasure); if they changed, 409 `balances_changed`."})
    store_code = fields.Str(allow_none=True, metadata={"description": "Store of the refund (default: yours)."})


class ErasurePreviewSchema(Schema):
    member_id = fields.Int()
    anonymised_at = fields.AwareDateTime(allow_none=True)
    points = fields.Int()
    principal = Money()
    bonus = Money()


class ErasureResultSchema(Schema):
    member_id = fields.Int()
    anonymised_at = fields.AwareDateTime()
    wallet_rule = fields.Str()
    points_forfeited = fields.Int()
    principal_refunded = Money()
    principal_forfeited = Money()
    bonus_forfeited = Money()


class PrivacyRequestArgs(Schema):
    page = Int(load_default=1, validate=validate.Range(min=1))
    per_page = Int(load_default=20, validate=validate.Range(min=1, max=200))
    kind = fields.Str(load_default=None, validate=validate.OneOf(("export", "correction", "erasure")))
    member_id = Int(load_default=None)


class PrivacyRequestSchema(Schema):
    id = fields.Int()
    member_id = fields.Int()
    kind = fields.Str()
    staff_id = fields.Int(allow_none=True)
    username = fields.Str()
    reason = fields.Str()
    details = fields.Dict()
    created_at = fields.AwareDateTime()


# Merges (members/merge.py) and duplicate suggestions (members/duplicates.py) -----------------

class MergeSchema(Schema):
    from_member_id = Int(required=True, metadata={"description": "The duplicate, which becomes a tombstone."})
    reason = fields.Str(required=True, validate=validate.Length(max=200))
    chosen = fields.Dict(keys=fields.Str(), values=fields.Str(validate=validate.OneOf(("into", "from"))),
                         data_key="fields", load_default=dict, metadata={
                             "description": "Per profile field (name, mobile, email, birthday, gender, level, company, "
                                            "segment, sales_rep, notes, consent): `into` keeps the survivor's value "
                                            "(the default), `from` takes the duplicate's. Tags are always combined."})


class MergeMovedSchema(Schema):
    points = fields.Int()
    principal = Money()
    bonus = Money()
    coupons = fields.List(fields.Int())
    tickets = fields.List(fields.Int())
    checkouts = fields.List(fields.Int())
    topups = fields.List(fields.Int())
    checks = fields.List(fields.Int(), metadata={"description": "Imported POS checks moved."})
    stays = fields.List(fields.Int(), metadata={"description": "Imported PMS stays moved."})
    reservations = fields.List(fields.Int(), metadata={"description": "Hotel reservations (PMS) moved."})
    deliveries = fields.List(fields.Int(), metadata={"description": "Messages already settled that moved (not one "
                                                                     "of a send the survivor also got)."})
    card = fields.Dict(allow_none=True, metadata={"description": "{card_id, moved}: moved to the survivor, or kept "
                                                                 "live on the tombstone and resolved to the survivor."})


class MergeResultSchema(Schema):
    id = fields.Int()
    from_member_id = fields.Int()
    into_member_id = fields.Int()
    reason = fields.Str()
    staff_id = fields.Int(allow_none=True)
    chosen = fields.Dict(attribute="fields", data_key="fields")
    moved = fields.Nested(MergeMovedSchema)
    created_at = fields.AwareDateTime()


class DuplicateSchema(Schema):
    id = fields.Int()
    name = fields.Str()
    mobile = ViewerMobile()
    birthday = fields.Str(allow_none=True)
    reasons = fields.List(fields.Str(), metadata={"description": "name_birthday, mobile (the same number written "
                                                                 "another way) and/or email (ignoring case)."})
