"""JSON API: a member's points."""
from flask import g
from flask.views import MethodView

from ..auth.access import allow
from ..auth.roles import COUNTER, MANAGERS
from ..core.api import Blueprint
from ..core.idempotency import unit_of_work
from ..core.paging import PageArgs, page_schema, paginate
from ..members import service as members
from ..stores import service as stores
from . import service
from .schemas import AdjustmentSchema, PointsEntrySchema, PointsSummarySchema

blp = Blueprint("points_api", __name__, url_prefix="/api/v1/members/<int:member_id>/points",
                description="Points ledger")


@blp.route("")
@allow(COUNTER)
@blp.response(200, PointsSummarySchema)
def summary(member_id):
    """Balance and the lots that make it up, soonest to expire first."""
    members.get_member(member_id)
    return {"balance": service.balance(member_id), "available": service.available(member_id),
            "lots": service.open_lots(member_id)}


@blp.route("/entries")
@allow(COUNTER)
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_schema(PointsEntrySchema, "PointsEntryPage"))
def entries(args, member_id):
    """Every change to the member's points, newest first."""
    members.get_member(member_id)
    items, total = paginate(service.entries_of(member_id), args["page"], args["per_page"])
    return {"items": items, "total": total, **args}


@blp.route("/adjustments", methods=["POST"])
class Adjustments(MethodView):
    @allow(MANAGERS)
    @unit_of_work(idempotent=True)
    @blp.arguments(AdjustmentSchema)
    @blp.response(201, PointsEntrySchema)
    def post(self, data, member_id):
        """A manager's correction (positive or negative), with a reason."""
        members.get_member(member_id)
        store = stores.get_by_code(data["store_code"]) if data["store_code"] else (
            stores.get_store(g.actor.store_id) if g.actor.store_id else None)
        return service.adjust(g.actor, member_id, data["points"], data["reason"], store=store)
