"""JSON API of the cashier's day-end (日结): a store's day by cashier and tender, and checking it."""
from flask import g

from ..auth.access import allow
from ..auth.roles import COUNTER
from ..core.api import Blueprint
from ..core.idempotency import unit_of_work
from ..core.timeutil import local_today
from ..reports import exports
from . import service
from .schemas import DayEndCheckIn, DayEndCheckSchema, DayEndQuery, DayEndSchema

blp = Blueprint("dayend_api", __name__, url_prefix="/api/v1", description="Cashier's day-end (日结)")


@blp.route("/day-end")
@allow(COUNTER)
@blp.arguments(DayEndQuery, location="query")
@blp.response(200, DayEndSchema)
def day_end(args):
    """A store's local day: per cashier and in total the bills closed, voided (a void counts on the
    day it happened, whenever the bill closed) and net, by tender, with points and coupons beside
    them; card fees, top-ups by method, refunds with who and why, the money taken by method, and
    who checked the day (with what changed since). Managers see every store and cashier; a cashier
    or front desk their home store (403 `other_store`), its totals and their own figures.
    `format=csv|xlsx` for a file."""
    store = service.store_for(g.actor, args["store_code"])
    day = args["date"] or local_today(store.timezone)
    figures = service.for_viewer(service.figures(store.code, day), g.actor)
    if args["format"]:
        return exports.download(args["format"], f"day-end-{store.code}-{day.isoformat()}", service.header(),
                                service.table_rows(figures))
    return service.as_json(figures)


@blp.route("/day-end/checks", methods=["POST"])
@allow(COUNTER)
@unit_of_work(idempotent=True)
@blp.arguments(DayEndCheckIn)
@blp.response(201, DayEndCheckSchema)
def check(data):
    """Record that you checked the store's day now, with a note: the totals as they are now are
    kept, so the page can say what a later void changed. Locks nothing; checking again adds a
    record. A day not yet begun is 422 `day_not_begun`; another store's day, for a cashier or
    front desk, 403 `other_store`. With `seen` (the day-end's `fingerprint` as you read it), a
    day whose figures moved since is 409 `figures_changed` and nothing is recorded."""
    store = service.store_for(g.actor, data["store_code"])
    row = service.check_day(g.actor, store.code, data["date"], data["note"], data["seen"])
    return service.shown_check(row, store)
