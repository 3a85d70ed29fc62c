"""JSON API: imports of checks and stays, member KPIs and room KPIs (CSV or Excel with format=)."""
from flask import g, request
from flask_smorest import Blueprint

from ..auth.access import allow
from ..auth.roles import MANAGERS
from ..core.idempotency import unit_of_work
from . import exports, imports
from .figures import period
from .kpis import member_kpis
from .rooms import room_kpis
from .schemas import ImportQuery, ImportResultSchema, KpiSchema, PeriodQuery, RoomSchema

blp = Blueprint("reports_api", __name__, url_prefix="/api/v1", description="Reports and imports")


def _report(args, compute, name, schema):
    figures = compute(args["store_code"], period(args["from_"], args["to"]))
    if args["format"]:
        return exports.download(args["format"], name, ("field", "value"), exports.key_value_rows(figures))
    return schema().dump(figures)


@blp.route("/reports/kpis")
@allow(MANAGERS)
@blp.arguments(PeriodQuery, location="query")
@blp.response(200, KpiSchema)
def kpis(args):
    """Member and restaurant KPIs for a period (`format=csv|xlsx` for a file)."""
    return _report(args, member_kpis, "kpis", KpiSchema)


@blp.route("/reports/rooms")
@allow(MANAGERS)
@blp.arguments(PeriodQuery, location="query")
@blp.response(200, RoomSchema)
def rooms(args):
    """Room KPIs: occupancy, ADR, RevPAR, revenue, sold, complimentary and day-use rooms."""
    return _report(args, room_kpis, "rooms", RoomSchema)


def _import(kind, args):
    result = imports.run(g.actor, kind, request.get_data(), skip_bad_rows=args["skip_bad_rows"])
    return result, (422 if result["errors"] and not args["skip_bad_rows"] else 200)


@blp.route("/imports/checks", methods=["POST"])
@allow(MANAGERS)
@unit_of_work()
@blp.arguments(ImportQuery, location="query")
@blp.response(200, ImportResultSchema)
@blp.alt_response(422, schema=ImportResultSchema, description="bad rows; nothing imported")
def import_checks(args):
    """Checks from a POS: a UTF-8 CSV body (columns check_no, store_code, closed_at, amount, covers,
    segment, member_mobile?, joined_at_visit?; any order)."""
    return _import("checks", args)


@blp.route("/imports/stays", methods=["POST"])
@allow(MANAGERS)
@unit_of_work()
@blp.arguments(ImportQuery, location="query")
@blp.response(200, ImportResultSchema)
@blp.alt_response(422, schema=ImportResultSchema, description="bad rows; nothing imported")
def import_stays(args):
    """Stays from a PMS: a UTF-8 CSV body (stay_no, store_code, arrival, departure, rooms, room_revenue,
    segment, member_mobile?, company?, sales_rep?, complimentary?, day_use?; any order)."""
    return _import("stays", args)


