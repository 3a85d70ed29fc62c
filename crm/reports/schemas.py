from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..core.fields import Bool, Int
from ..core.money import Money
from .exports import FORMATS


class PeriodQuery(Schema):
    store_code = fields.Str(load_default=None, metadata={"description": "empty: the whole group"})
    from_ = fields.Date(required=True, data_key="from")
    to = fields.Date(required=True)
    format = fields.Str(load_default=None, validate=validate.OneOf(FORMATS))

    @validates_schema
    def _order(self, data, **kwargs):
        if data.get("from_") and data.get("to") and data["to"] < data["from_"]:
            raise ValidationError("The period ends before it starts.", "to")


class ImportQuery(Schema):
    skip_bad_rows = Bool(load_default=False, metadata={"description": "import the good rows of a file "
                                                                            "that has bad ones"})


class MemberImportQuery(ImportQuery):
    dry_run = Bool(load_default=False, metadata={"description": "check every row and report; save nothing"})


class ImportError_(Schema):
    line = fields.Int()
    message = fields.Str(metadata={"description": "every problem of the line, in one text"})
    problems = fields.List(fields.Str(), metadata={"description": "each problem of the line on its own"})


class ImportJobSchema(Schema):
    """An import job: queued → running (checking every row, then writing) → done or failed."""
    id = fields.Int()
    kind = fields.Str(metadata={"enum": ["checks", "stays", "members"]})
    filename = fields.Str()
    encoding = fields.Str(metadata={"enum": ["utf-8", "gb18030"],
                                    "description": "what the file was read as: UTF-8, or GB18030 (includes GBK)"})
    skip_bad_rows = fields.Bool()
    dry_run = fields.Bool(metadata={"description": "only checked: `imported` and `skipped` say what a real run "
                                                   "would do, nothing was saved"})
    status = fields.Str(metadata={"enum": ["queued", "running", "done", "failed"]})
    phase = fields.Str(metadata={"enum": ["checking", "writing"],
                                 "description": "the first pass checks every row and writes nothing"})
    total = fields.Int(metadata={"description": "data rows in the file"})
    checked = fields.Int(metadata={"description": "rows through the checking pass"})
    done = fields.Int(metadata={"description": "rows through the writing pass (committed)"})
    imported = fields.Int()
    updated = fields.Int()
    skipped = fields.Int()
    error_count = fields.Int(metadata={"description": "bad rows; `errors` lists the first 1,000"})
    errors = fields.List(fields.Nested(ImportError_))
    failure = fields.Str(allow_none=True, metadata={
        "enum": ["bad_rows", "stopped", None],
        "description": "why a failed job failed: bad rows (nothing imported), or its runner stopped repeatedly"})
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    status_url = fields.Str(metadata={"description": "GET it for the job's progress"})


class KpiSchema(Schema):
    members_total = fields.Int()
    new_members = fields.Int()
    member_growth_rate = fields.Str(allow_none=True)
    checks = fields.Int()
    member_checks = fields.Int()
    card_issue_rate = fields.Str(allow_none=True)
    member_check_share = fields.Str(allow_none=True)
    member_revenue_share = fields.Str(allow_none=True)
    revenue = fields.Str()
    covers = fields.Int()
    spend_per_head = fields.Str(allow_none=True)
    spend_per_head_members = fields.Str(allow_none=True)
    spend_per_head_non_members = fields.Str(allow_none=True)
    topup_principal = fields.Str()
    topup_bonus = fields.Str()
    stored_value_growth = fields.Str(allow_none=True)
    wallet_outstanding_principal = fields.Str()
    wallet_outstanding_bonus = fields.Str()
    points_earned = fields.Int()
    points_redeemed = fields.Int()
    points_expired = fields.Int()
    points_outstanding = fields.Int()


class RoomSchema(Schema):
    available_rooms = fields.Int()
    rooms_sold = fields.Int()
    complimentary_rooms = fields.Int()
    rooms_occupied = fields.Int(metadata={"description": "rooms sold + complimentary: what occupancy and ADR count"})
    day_use_rooms = fields.Int()
    room_revenue = fields.Str()
    occupancy = fields.Str(allow_none=True)
    adr = fields.Str(allow_none=True)
    revpar = fields.Str(allow_none=True)


class YearQuery(Schema):
    store_code = fields.Str(load_default=None)
    year = Int(required=True, validate=validate.Range(min=2001, max=2100))  # last year's column too
    month = Int(load_default=None, validate=validate.Range(min=1, max=12))
    format = fields.Str(load_default=None, validate=validate.OneOf(FORMATS))


class RankingQuery(YearQuery):
    segment = fields.Str(required=True)
    by = fields.Str(load_default="revenue", validate=validate.OneOf(("revenue", "nights")))
    limit = Int(load_default=30, validate=validate.Range(min=1, max=500))


class PlanLine(Schema):
    segment = fields.Str(required=True)
    nights = Int(required=True, validate=validate.Range(min=0))
    adr = Money(required=True)


class PlansSchema(Schema):
    store_code = fields.Str(required=True)
    year = Int(required=True, validate=validate.Range(min=2000, max=2100))
    month = Int(load_default=None, allow_none=True, validate=validate.Range(min=1, max=12))
    plans = fields.List(fields.Nested(PlanLine), required=True, validate=validate.Length(min=1, max=100))


class CompetitorSchema(Schema):
    id = fields.Int(dump_only=True)
    store_code = fields.Str(required=True, load_only=True)
    name = fields.Str(required=True, validate=validate.Length(max=100))
    rooms = Int(required=True, validate=validate.Range(min=1, max=100000))


class CompetitorMonthSchema(Schema):
    year = Int(required=True, validate=validate.Range(min=2000, max=2100))
    month = Int(required=True, validate=validate.Range(min=1, max=12))
    available_rooms = Int(required=True, validate=validate.Range(min=0))
    rooms_sold = Int(required=True, validate=validate.Range(min=0))
    room_revenue = Money(required=True)


class StoreQuery(Schema):
    store_code = fields.Str(required=True)


class RfmQuery(Schema):
    group = fields.Str(load_default=None)
    format = fields.Str(load_default=None, validate=validate.OneOf(FORMATS))


class RoomCountSchema(Schema):
    store_code = fields.Str(required=True, load_only=True)
    effective_from = fields.Date(required=True)
    rooms = Int(required=True, validate=validate.Range(min=0, max=100000))
    reason = fields.Str(load_default="", validate=validate.Length(max=200))


_PERCENT = {"description": "per cent with up to two places, 0 to 100: \"12.50\"; null or \"\": no target",
            "example": "12.50"}
_AMOUNT = {"description": "money, 0 or more: \"1200.00\"; null or \"\": no target", "example": "1200.00"}


class KpiTargetMonth(Schema):
    """One month's targets; a target left out or null is not set (and clears a saved one)."""
    month = Int(required=True, validate=validate.Range(min=1, max=12))
    new_members = Int(load_default=None, allow_none=True, validate=validate.Range(min=0, max=10_000_000),
                      metadata={"description": "members who join at the store in the month"})
    stored_value_growth = fields.Str(load_default=None, allow_none=True, metadata={
        "example": "25.00", "description": "growth in per cent, 0 or more (over 100: more than double): top-up "
                                           "principal this month ÷ the same in the month compared with (last "
                                           "month, and the same month last year) − 1; null or \"\": no target"})
    card_issue_rate = fields.Str(load_default=None, allow_none=True, metadata={
        **_PERCENT, "description": "walk-in card-issue rate; " + _PERCENT["description"]})
    member_share = fields.Str(load_default=None, allow_none=True, metadata={
        **_PERCENT, "description": "member share of bills; " + _PERCENT["description"]})
    spend_per_head = fields.Str(load_default=None, allow_none=True, metadata=_AMOUNT)


class KpiTargetsSchema(Schema):
    store_code = fields.Str(dump_only=True)
    year = fields.Int(dump_only=True)
    months = fields.List(fields.Nested(KpiTargetMonth), required=True, validate=validate.Length(min=1, max=12))


class KpiTargetRow(Schema):
    key = fields.Str(metadata={"enum": ["new_members", "stored_value_growth_month_on_month",
                                        "stored_value_growth_year_on_year", "card_issue_rate", "member_share",
                                        "spend_per_head"]})
    target = fields.Raw(allow_none=True, metadata={"description": "a count, or \"12.50\" (money or per cent)"})
    actual = fields.Raw(allow_none=True)
    gap = fields.Raw(allow_none=True, metadata={"description": "actual − target (percentage points for rates and "
                                                               "growth)"})
    this_period = fields.Str(metadata={"description": "stored-value rows: top-up principal of the month"})
    compared_with = fields.Str(metadata={"description": "stored-value rows: last month's, or the same month "
                                                        "last year's (同比)"})
    growth_rate = fields.Str(allow_none=True, metadata={"description": "stored-value rows: growth in per cent, "
                                                                       "the same as actual (kept for clients)"})


class KpiTargetsBeside(Schema):
    store_code = fields.Str()
    year = fields.Int()
    month = fields.Int()
    rows = fields.List(fields.Nested(KpiTargetRow))


class KpiWithTargetsSchema(KpiSchema):
    targets = fields.Nested(KpiTargetsBeside, metadata={
        "description": "with a store and a period of one whole calendar month: that month's targets "
                       "beside its actual figures"})


class PrepaidQuery(Schema):
    year = Int(required=True, validate=validate.Range(min=2000, max=2100))
    store_code = fields.Str(load_default=None, metadata={"description": "empty: every store and the chain's total"})
    format = fields.Str(load_default=None, validate=validate.OneOf(FORMATS))


class PrepaidFigures(Schema):
    """Money as "12.34"; principal unless named bonus. spent is net of voids (may be negative)."""
    sold = fields.Str(metadata={"description": "principal topped up"})
    bonus_given = fields.Str()
    spent = fields.Str(metadata={"description": "principal paid for bills, less what voids gave back"})
    refunded = fields.Str(metadata={"description": "principal paid back (or written off at an erasure)"})
    opening = fields.Str(metadata={"description": "principal brought in from a legacy system"})
    outstanding = fields.Str(metadata={"description": "principal owed at the quarter's end"})
    bonus_outstanding = fields.Str()
    cards = fields.Int(metadata={"description": "members holding principal above zero at the quarter's end "
                                                "(by the store they registered at)"})


class PrepaidStoreRow(PrepaidFigures):
    store_code = fields.Str()
    store = fields.Str()


class PrepaidQuarter(Schema):
    quarter = fields.Int()
    from_ = fields.Str(data_key="from", attribute="from", metadata={"format": "date", "description": "first day"})
    to = fields.Str(metadata={"format": "date", "description": "last day"})
    stores = fields.List(fields.Nested(PrepaidStoreRow))
    total = fields.Nested(PrepaidFigures, allow_none=True, metadata={"description": "the chain; null for one store"})


class PrepaidReportSchema(Schema):
    year = fields.Int()
    store_code = fields.Str(allow_none=True)
    quarters = fields.List(fields.Nested(PrepaidQuarter), metadata={"description": "the quarters begun"})
