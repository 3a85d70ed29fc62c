"""JSON API: imports of checks and stays, and every report (as a CSV or Excel file with format=)."""
from flask import current_app, g, request, url_for
from flask.views import MethodView
from flask_babel import gettext as _

from ..auth.access import allow
from ..auth.roles import MANAGERS, MARKETING
from ..core.api import Blueprint
from ..core.idempotency import unit_of_work
from ..errors import Invalid
from ..extensions import db
from ..stores import service as stores
from . import competitors, exports, import_jobs, monthly, rankings, rfm, segments
from .figures import money, period
from .kpis import BILL_COLUMNS, bill_rows, member_kpis
from .prepaid import prepaid_report, report_table
from .rooms import record_room_count, room_kpis
from .schemas import (
    CompetitorMonthSchema,
    CompetitorSchema,
    ImportJobSchema,
    ImportQuery,
    KpiSchema,
    KpiTargetsSchema,
    KpiWithTargetsSchema,
    MemberImportQuery,
    PeriodQuery,
    PlansSchema,
    PrepaidQuery,
    PrepaidReportSchema,
    RankingQuery,
    RfmQuery,
    RoomCountSchema,
    RoomSchema,
    StoreQuery,
    YearQuery,
)
from .targets import beside_actuals, save_targets, whole_month, year_targets

blp = Blueprint("reports_api", __name__, url_prefix="/api/v1", description="Reports and imports")


def _report(args, compute, name, schema):
    figures = compute(args["store_code"], period(args["from_"], args["to"]))
    if args["format"]:
        return exports.download(args["format"], name, ("field", "value"), exports.key_value_rows(figures))
    return schema().dump(figures)


@blp.route("/reports/kpis")
@allow(MANAGERS)
@blp.arguments(PeriodQuery, location="query")
@blp.response(200, KpiWithTargetsSchema)
def kpis(args):
    """Member and restaurant KPIs for a period (`format=csv|xlsx` for a file). With a store and a
    period that is one whole calendar month, `targets` sets that month's targets beside its actual
    figures (absent otherwise)."""
    result = _report(args, member_kpis, "kpis", KpiSchema)
    if args["format"]:
        return result
    month = whole_month(args["from_"], args["to"]) if args["store_code"] else None
    return {**result, "targets": beside_actuals(args["store_code"], *month)} if month else result


@blp.route("/kpi-targets/<store_code>/<int:year>")
class KpiTargets(MethodView):
    @allow(MANAGERS)
    @blp.response(200, KpiTargetsSchema)
    def get(self, store_code, year):
        """A store's monthly KPI targets for a year: twelve months, null where no target is set."""
        months = year_targets(store_code, year)
        return {"store_code": stores.get_by_code(store_code).code, "year": year, "months": months}

    @allow(MANAGERS)
    @unit_of_work()
    @blp.arguments(KpiTargetsSchema)
    @blp.response(200, KpiTargetsSchema)
    def put(self, data, store_code, year):
        """Set a store's KPI targets for the months given (each month's five targets replaced as sent)."""
        save_targets(g.actor, store_code, year, data["months"])
        return {"store_code": stores.get_by_code(store_code).code, "year": year,
                "months": year_targets(store_code, year)}


@blp.route("/reports/room-counts", methods=["PUT"])
@allow(MANAGERS)
@unit_of_work()
@blp.arguments(RoomCountSchema)
@blp.response(200, RoomCountSchema)
def room_count(data):
    """Record that a hotel sells this many rooms from a date on (available rooms follow it)."""
    return record_room_count(g.actor, data["store_code"], data["effective_from"], data["rooms"], data["reason"])


@blp.route("/reports/bills")
@allow(MANAGERS)
@blp.arguments(PeriodQuery, location="query")
@blp.response(200, description="CSV or Excel only")
def bills(args):
    """Every bill of a period (checkouts and imported checks) as a file (`format=csv|xlsx`, CSV default),
    streamed: a million rows never sit in memory. `closed_at` is the store's local time to the
    second ("2026-03-05 19:00:00"); in Excel a date-time, and amounts are numbers."""
    p = period(args["from_"], args["to"])
    return exports.download(args["format"] or "csv", "bills", BILL_COLUMNS, bill_rows(args["store_code"], p))


@blp.route("/reports/rooms")
@allow(MANAGERS)
@blp.arguments(PeriodQuery, location="query")
@blp.response(200, RoomSchema)
def rooms(args):
    """Room KPIs: occupancy, ADR, RevPAR, revenue, sold, complimentary and day-use rooms."""
    return _report(args, room_kpis, "rooms", RoomSchema)


def _import(kind, args):
    """Store the file as a job (header checked now: 422) and answer 202; the job runs after the commit.
    The file is the body (text/csv), or the part `file` of a multipart/form-data body."""
    request.max_content_length = current_app.config["IMPORT_MAX_BYTES"]  # larger than other bodies
    upload = request.files.get("file") if request.mimetype == "multipart/form-data" else None
    if request.mimetype == "multipart/form-data" and upload is None:
        raise Invalid(_("Choose a CSV file."), code="missing_file", field="file")
    raw, filename = (upload.read(), upload.filename or "") if upload is not None else (request.get_data(), "")
    job = import_jobs.create(g.actor, kind, raw, filename=filename, skip_bad_rows=args["skip_bad_rows"],
                             dry_run=args.get("dry_run", False))
    db.session.commit()  # before the runner starts: it may be another thread
    import_jobs.start(job.id)
    url = url_for("reports_api.import_status", job_id=job.id)
    return {**import_jobs.status(import_jobs.get(job.id)), "status_url": url}, 202, {"Location": url}


_CSV_BODY = {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}


@blp.route("/imports/checks", methods=["POST"])
@allow(MANAGERS)
@blp.arguments(ImportQuery, location="query")
@blp.response(202, ImportJobSchema, description="queued; follow `status_url` (also in Location)")
@blp.doc(requestBody=_CSV_BODY)
def import_checks(args):
    """Checks from a POS: a CSV body in UTF-8 or GBK/GB18030 (detected; `encoding` says which)
    (columns check_no, store_code, closed_at, amount, covers,
    segment, member_mobile?, joined_at_visit?; any order), imported in the background. A bad
    encoding or header is 422 at once; bad rows fail the job with nothing imported unless
    `skip_bad_rows`. Files up to IMPORT_MAX_BYTES (32 MB by default, about 500,000 checks)."""
    return _import("checks", args)


@blp.route("/imports/stays", methods=["POST"])
@allow(MANAGERS)
@blp.arguments(ImportQuery, location="query")
@blp.response(202, ImportJobSchema, description="queued; follow `status_url` (also in Location)")
@blp.doc(requestBody=_CSV_BODY)
def import_stays(args):
    """Stays from a PMS: a CSV body in UTF-8 or GBK/GB18030
    (stay_no, store_code, arrival, departure, rooms, room_revenue,
    segment, member_mobile?, company?, sales_rep?, complimentary?, day_use?; any order), imported in
    the background like checks, up to IMPORT_MAX_BYTES."""
    return _import("stays", args)


_FILE_BODY = {"required": True, "content": {
    "text/csv": {"schema": {"type": "string"}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}}}}


@blp.route("/imports/members", methods=["POST"])
@allow(MANAGERS)
@blp.arguments(MemberImportQuery, location="query")
@blp.response(202, ImportJobSchema, description="queued; follow `status_url` (also in Location)")
@blp.doc(requestBody=_FILE_BODY)
def import_members(args):
    """Members from a legacy system: a CSV in UTF-8 or GBK/GB18030, as the body or as the part
    `file` of a form (mobile, name, card_no, store_code, level?, birthday?, gender?, email?,
    sms_consent?, email_consent?, opening_points?, points_expire_on?, opening_principal?,
    opening_bonus?; any order), imported in the background with their cards and opening
    balances (ledger entries of kind `opening`). A bad encoding or header is 422 at once; bad
    rows fail the job with nothing saved unless `skip_bad_rows`; `dry_run` only checks. A row
    whose mobile and card belong to one member already was imported before and is skipped, so
    the same file sent again changes nothing."""
    return _import("members", args)


@blp.route("/imports/<int:job_id>")
@allow(MANAGERS)
@blp.response(200, ImportJobSchema)
def import_status(job_id):
    """An import's progress: status (queued, running, done, failed), rows checked and written of
    the total, new, updated and skipped rows, and the bad rows with their line numbers."""
    return {**import_jobs.status(import_jobs.get(job_id)),
            "status_url": url_for("reports_api.import_status", job_id=job_id)}


def _table(args, name, rows):
    """JSON rows, or the same rows as a CSV / Excel file."""
    if args.get("format"):
        header, body = exports.table(rows)
        return exports.download(args["format"], name, header, body)
    return rows


@blp.route("/reports/segments")
@allow(MANAGERS)
@blp.arguments(YearQuery, location="query")
@blp.response(200)
def segment_report(args):
    """Segment revenue table: last year's actual, plan and actual for a year or month."""
    result = segments.segment_table(args["store_code"], args["year"], args["month"])
    if args["format"]:
        rows = [{"row": r["key"], **r["values"]} for r in result["rows"]]
        return _table(args, "segments", rows)
    return result


@blp.route("/reports/plans", methods=["PUT"])
@allow(MANAGERS)
@unit_of_work()
@blp.arguments(PlansSchema)
@blp.response(200)
def save_plans(data):
    """Enter a hotel's plan per segment (room nights, ADR) for a year or a month."""
    count = segments.save_plans(g.actor, data["store_code"], data["year"], data["month"],
                                {p["segment"]: (p["nights"], p["adr"]) for p in data["plans"]})
    return {"saved": count}


@blp.route("/reports/rankings")
@allow(MANAGERS)
@blp.arguments(RankingQuery, location="query")
@blp.response(200)
def ranking_report(args):
    """Top-N companies or members of a segment by revenue or room nights, with last year's rank."""
    return _table(args, "rankings", rankings.rankings(args["store_code"], args["year"], args["segment"], args["by"],
                                                      args["limit"]))


@blp.route("/reports/monthly")
@allow(MANAGERS)
@blp.arguments(YearQuery, location="query")
@blp.response(200)
def monthly_report(args):
    """Each month this year against last year, per segment, with the differences."""
    return _table(args, "monthly", monthly.monthly_comparison(args["store_code"], args["year"]))


@blp.route("/reports/competitors")
class Competitors(MethodView):
    @allow(MANAGERS)
    @blp.arguments(StoreQuery, location="query")
    @blp.response(200, CompetitorSchema(many=True))
    def get(self, args):
        """The hotels in a store's competitive set."""
        return competitors.competitors_of(args["store_code"])

    @allow(MANAGERS)
    @unit_of_work()
    @blp.arguments(CompetitorSchema)
    @blp.response(201, CompetitorSchema)
    def post(self, data):
        """Add a hotel to the competitive set."""
        return competitors.add_competitor(g.actor, data["store_code"], data["name"], data["rooms"])


@blp.route("/reports/competitors/<int:competitor_id>/months", methods=["PUT"])
@allow(MANAGERS)
@unit_of_work()
@blp.arguments(CompetitorMonthSchema)
@blp.response(200, CompetitorMonthSchema)
def competitor_month(data, competitor_id):
    """A competitor's figures for a month (replaces what was entered before)."""
    return competitors.set_month(g.actor, competitor_id, data.pop("year"), data.pop("month"), **data)


@blp.route("/reports/competitor-share")
@allow(MANAGERS)
@blp.arguments(YearQuery, location="query")
@blp.response(200)
def competitor_share(args):
    """Fair share, actual share, revenue share, occupancy, ADR and RevPAR across the set."""
    if not args["store_code"]:
        raise Invalid("Choose the hotel.", code="store_required", field="store_code")
    result = competitors.competitor_table(args["store_code"], args["year"], args["month"])
    if args["format"]:
        return _table(args, "competitor-share", result["rows"] + [result["total"]])
    return result


@blp.route("/reports/rfm")
@allow(MANAGERS | {MARKETING})
@blp.arguments(RfmQuery, location="query")
@blp.response(200)
def rfm_report(args):
    """Members per RFM group; with `group`, that group's members by spend."""
    if args["group"]:
        if args["group"] not in rfm.GROUPS:
            raise Invalid("Unknown RFM group.", code="unknown_group", field="group")
        rows = [{"member_id": r.id, "name": r.name, "last_bill": r.last_bill.isoformat() if r.last_bill else None,
                 "frequency": r.frequency, "monetary": money(r.monetary), "r": r.r, "f": r.f, "m": r.m}
                for r in rfm.top(args["group"], limit=500)]
        return _table(args, f"rfm-{args['group']}", rows)
    counts = rfm.group_counts()
    return _table(args, "rfm", [{"group": key, "members": n} for key, n in counts.items()]) if args["format"] \
        else counts


@blp.route("/reports/prepaid")
@allow(MANAGERS)
@blp.arguments(PrepaidQuery, location="query")
@blp.response(200, PrepaidReportSchema)
def prepaid(args):
    """The prepaid-card report (单用途商业预付卡) of a year: per quarter begun and per store, stored value
    sold, spent (net of voids), refunded, brought in and outstanding (principal), bonus given and
    outstanding, and the cards holding a balance; the chain's total unless `store_code` is given.
    `format=csv|xlsx` for a file."""
    report = prepaid_report(args["year"], args["store_code"])
    if args["format"]:
        return exports.download(args["format"], "prepaid", *report_table(report))
    return report
