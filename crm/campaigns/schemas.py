from marshmallow import Schema, fields, validate

from ..core.fields import Bool, Date, Id, Int
from ..core.money import Money
from ..core.segments import SEGMENT_KEYS
from ..reports.exports import FORMATS
from .audiences import CONSENTS
from .messages import MAX_SOURCE, address_for_viewer
from .models import (
    ACTIONS,
    ARMS,
    CHANNELS,
    DELIVERY_STATUSES,
    MAX_HOLDOUT_PERCENT,
    RECURRENCES,
    SCHEDULES,
    STATES,
    reason_text,
)


class HolidayQuery(Schema):
    year = Int(required=True, validate=validate.Range(min=1901, max=2099))


class HolidaySchema(Schema):
    date = fields.Date()
    key = fields.Str()
    name = fields.Str()
    builtin = fields.Bool()
    id = fields.Int(allow_none=True)


class CustomHolidaySchema(Schema):
    id = fields.Int(dump_only=True)
    key = fields.Str(required=True, metadata={"description": "lower_case key, e.g. store_anniversary"})
    name = fields.Str(required=True, validate=validate.Length(min=1, max=64))
    date = fields.Date(required=True)


class FiltersSchema(Schema):
    # A filter names at most a few dozen of each: longer lists are mistakes (or abuse) and would
    # not fit one SQL statement's parameters.
    levels = fields.List(fields.Str(validate=validate.Length(max=32)), validate=validate.Length(max=50))
    segments = fields.List(fields.Str(validate=validate.OneOf(SEGMENT_KEYS)), validate=validate.Length(max=50))
    stores = fields.List(fields.Str(validate=validate.Length(max=32)), validate=validate.Length(max=200))
    tags = fields.List(fields.Str(validate=validate.Length(max=32)), validate=validate.Length(max=50))
    birthday_month = Int(validate=validate.Range(min=1, max=12))
    last_visit_after = Date()
    last_visit_before = Date()
    spend_min = Money(metadata={"description": "spend over the level window (12 months), after coupons"})
    spend_max = Money()
    consent = fields.Str(validate=validate.OneOf(CONSENTS))
    rfm = fields.List(fields.Str(validate=validate.Length(max=32)), validate=validate.Length(max=10),
                     metadata={"description": "RFM groups: champions, loyal, new, at_risk, lost, "
                                                              "others"})


class AudienceSchema(Schema):
    id = fields.Int(dump_only=True)
    name = fields.Str(required=True, validate=validate.Length(max=100))
    filters = fields.Nested(FiltersSchema, load_default=dict)
    count = fields.Int(dump_only=True, metadata={"description": "members matching now"})
    created_at = fields.AwareDateTime(dump_only=True)


class AudienceUpdateSchema(Schema):
    name = fields.Str(validate=validate.Length(min=1, max=100))
    filters = fields.Nested(FiltersSchema)


class CountSchema(Schema):
    count = fields.Int()


class TemplateSchema(Schema):
    id = fields.Int(dump_only=True)
    name = fields.Str(required=True, validate=validate.Length(max=100))
    subject = fields.Str(load_default="", validate=validate.Length(max=200))
    # the length is checked by the service (422 template_too_long, also for the UI form), documented here
    body = fields.Str(required=True, metadata={"description": "Jinja: name, title, level, points, wallet, "
                                                              "store, coupon (name, code, valid_until) or none; "
                                                              "filters and if/else (no loops, calls or set)",
                                               "maxLength": MAX_SOURCE})


class TemplateUpdateSchema(Schema):
    name = fields.Str(validate=validate.Length(min=1, max=100))
    subject = fields.Str(validate=validate.Length(max=200))
    body = fields.Str(metadata={"maxLength": MAX_SOURCE})


class CampaignInSchema(Schema):
    name = fields.Str(required=True, validate=validate.Length(max=100))
    audience_id = Id(allow_none=True, load_default=None, metadata={"description": "empty: every member"})
    template_id = Id(required=True)
    channel = fields.Str(load_default="outbox", validate=validate.OneOf(CHANNELS))
    coupon_type_code = fields.Str(allow_none=True, load_default=None)
    schedule = fields.Str(load_default="once", validate=validate.OneOf(SCHEDULES))
    send_at = fields.AwareDateTime(allow_none=True, load_default=None, metadata={"description": "once: when"})
    send_time = fields.Time(metadata={"description": "local time of day for the other schedules (default 09:00)"})
    recurrence = fields.Str(allow_none=True, load_default=None, validate=validate.OneOf(RECURRENCES))
    holiday_key = fields.Str(allow_none=True, load_default=None)
    days_before = Int(load_default=0, validate=validate.Range(min=0, max=60))
    starts_on = fields.Date(allow_none=True, load_default=None)
    ends_on = fields.Date(allow_none=True, load_default=None)
    marketing = Bool(load_default=True)
    holdout_percent = Int(load_default=0, validate=validate.Range(min=0, max=MAX_HOLDOUT_PERCENT), metadata={
        "description": "per cent of each occurrence's reachable audience held out as a control group: chosen "
                       "reproducibly per occurrence, recorded as deliveries with status held_out, never sent "
                       "(nor given the campaign's coupon); the attribution report compares the two groups"})


class CampaignUpdateSchema(CampaignInSchema):
    """The same fields, each optional (loaded with partial=True)."""


class CampaignSchema(Schema):
    id = fields.Int()
    name = fields.Str()
    state = fields.Str(metadata={"enum": list(STATES)})
    builtin = fields.Str(allow_none=True)
    audience_id = fields.Int(allow_none=True)
    template_id = fields.Int()
    channel = fields.Str()
    coupon_type_code = fields.Function(lambda c: c.coupon_type.code if c.coupon_type else None)
    schedule = fields.Str()
    send_at = fields.AwareDateTime(allow_none=True)
    send_time = fields.Time()
    recurrence = fields.Str(allow_none=True)
    holiday_key = fields.Str(allow_none=True)
    days_before = fields.Int()
    starts_on = fields.Date(allow_none=True)
    ends_on = fields.Date(allow_none=True)
    marketing = fields.Bool()
    holdout_percent = fields.Int()
    created_at = fields.AwareDateTime()


class ActionSchema(Schema):
    action = fields.Str(required=True, validate=validate.OneOf(ACTIONS), metadata={
        "description": "schedule: draft → scheduled; pause: scheduled or running → paused (nothing is fanned out "
                       "or sent); resume: paused → back to scheduled, or running if an occurrence had started; "
                       "cancel: for good (a done campaign only while messages still wait)"})


class SampleSchema(Schema):
    member_id = fields.Int()
    name = fields.Str()
    subject = fields.Str()
    body = fields.Str()


class PreviewSchema(Schema):
    count = fields.Int()
    samples = fields.List(fields.Nested(SampleSchema))
    next_run = fields.AwareDateTime(allow_none=True)


class TestSendSchema(Schema):
    address = fields.Str(required=True, metadata={"description": "a staff email or mobile"})


class DeliverySchema(Schema):
    id = fields.Int()
    campaign_id = fields.Int(allow_none=True)
    occurrence = fields.Str()
    member_id = fields.Int(allow_none=True)
    channel = fields.Str()
    address = fields.Function(lambda d: address_for_viewer(d),
                              metadata={"description": "mobiles are masked for roles that do not call guests"})
    subject = fields.Str()
    body = fields.Str()
    status = fields.Str(metadata={"enum": list(DELIVERY_STATUSES)})
    arm = fields.Str(allow_none=True, metadata={"enum": [*ARMS, None], "description": "the member's group in the "
                                                "occurrence's holdout test; null: could not be reached on the "
                                                "channel (in neither group), or a test send"})
    reason = fields.Str(metadata={"description": "why it was skipped or failed: a code (no_consent, ...) or the "
                                                 "channel's technical detail, for the administrator"})
    reason_text = fields.Function(lambda d: reason_text(d.reason),
                                  metadata={"description": "the reason in words, in the request's language"})
    attempts = fields.Int()
    next_attempt_at = fields.AwareDateTime(allow_none=True)
    sent_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()


class DeliveryQuery(Schema):
    status = fields.Str(validate=validate.OneOf(DELIVERY_STATUSES))
    channel = fields.Str(validate=validate.OneOf(CHANNELS))
    campaign_id = Id()
    member_id = Id()
    page = Int(load_default=1, validate=validate.Range(min=1))
    per_page = Int(load_default=50, validate=validate.Range(min=1, max=200))


class AttributionQuery(Schema):
    occurrence = fields.Str(load_default=None, validate=validate.Length(min=1, max=32), metadata={
        "description": "one occurrence (its key: \"once\" or the date it is for); empty: every occurrence of the "
                       "campaign, each member counted once per occurrence"})
    days = Int(load_default=14, validate=validate.Range(min=1, max=366),
               metadata={"description": "the window after the send that bills are counted in"})
    format = fields.Str(load_default=None, validate=validate.OneOf(FORMATS))


class AttributionGroupSchema(Schema):
    members = fields.Int(metadata={"description": "members in the group (per occurrence)"})
    visitors = fields.Int(metadata={"description": "of them, with at least one closed bill in the window"})
    visit_rate = fields.Str(allow_none=True, metadata={"description": "per cent, two places"})
    spend = fields.Str(metadata={"description": "closed bills in the window, after coupons (voided ones do not count)"})
    spend_per_member = fields.Str(allow_none=True)
    coupon_redemptions = fields.Int(allow_none=True, metadata={
        "description": "members who redeemed a coupon of the campaign's type in the window; null: no coupon"})
    coupon_redemption_rate = fields.Str(allow_none=True, metadata={"description": "per cent; null: no coupon"})


class AttributionOccurrenceSchema(Schema):
    occurrence = fields.Str()
    sent_at = fields.AwareDateTime(metadata={"description": "when the occurrence was fanned out: the window starts"})
    window_ends = fields.AwareDateTime()
    treated = fields.Int()
    holdout = fields.Int()


class IntervalSchema(Schema):
    low = fields.Str()
    high = fields.Str()
    level = fields.Str(metadata={"description": "per cent"})


class AttributionSchema(Schema):
    campaign_id = fields.Int()
    occurrence = fields.Str(allow_none=True)
    days = fields.Int()
    holdout_percent = fields.Int(metadata={"description": "the campaign's setting now"})
    occurrences = fields.List(fields.Nested(AttributionOccurrenceSchema))
    window_complete = fields.Bool(metadata={"description": "false while a window has not ended yet"})
    treated = fields.Nested(AttributionGroupSchema)
    holdout = fields.Nested(AttributionGroupSchema)
    holdout_share = fields.Str(allow_none=True, metadata={"description": "holdout ÷ both groups, per cent"})
    difference_per_member = fields.Str(allow_none=True, metadata={
        "description": "spend per treated member − spend per held-out member"})
    incremental_revenue = fields.Str(allow_none=True, metadata={
        "description": "difference per member × treated members; null without a holdout"})
    confidence_interval = fields.Nested(IntervalSchema, allow_none=True, metadata={
        "description": "95 % interval of the incremental revenue (normal approximation, Welch standard error); "
                       "null unless both groups have at least two members"})
    note = fields.Str(allow_none=True, metadata={"enum": ["no_holdout", "too_few", None],
                                                 "description": "why there is no interval"})
