"""JSON API: bulk work on an audience (grant points, issue a coupon, tag, set a level) and its reversal."""
from flask import after_this_request, g, url_for
from flask.views import MethodView

from ..auth.access import allow
from ..auth.roles import MANAGERS, MARKETERS
from ..core.api import Blueprint
from ..core.idempotency import unit_of_work
from ..core.paging import PageArgs, page_schema, paginate
from . import service
from .schemas import BulkJobCreateSchema, BulkJobSchema, BulkReverseSchema

blp = Blueprint("bulk_api", __name__, url_prefix="/api/v1/bulk-jobs", description="Bulk work on an audience")


def _shown(job) -> dict:
    return {**service.status(job), "status_url": url_for("bulk_api.job", job_id=job.id)}


def _run_after_commit(job_id):
    """Start the runner once the unit of work has committed (it may be another thread)."""
    @after_this_request
    def _start(response):
        service.start(job_id)
        return response


def _accepted(job):
    _run_after_commit(job.id)
    url = url_for("bulk_api.job", job_id=job.id)
    return _shown(job), 202, {"Location": url}


@blp.route("")
class Jobs(MethodView):
    @allow(MARKETERS)
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(BulkJobSchema, "BulkJobPage"))
    def get(self, args):
        """Bulk jobs, newest first, with their progress."""
        items, total = paginate(service.jobs(), args["page"], args["per_page"])
        return {"items": [_shown(j) for j in items], "total": total, **args}

    @allow(MARKETERS)
    @unit_of_work(idempotent=True)
    @blp.arguments(BulkJobCreateSchema)
    @blp.response(202, BulkJobSchema, description="queued; follow `status_url` (also in Location)")
    def post(self, data):
        """Do one thing to every member of a saved audience, in the background. The members are
        the audience's as it is now (merged and anonymised members left out); each is done once
        however often the job is run. Marketing and managers; setting a level is for managers
        (403 `level_change_forbidden`). Bad parameters are 422 naming the field
        (`invalid_points`, `invalid_expiry`, `unknown_coupon_type`, `coupon_type_inactive`,
        `invalid_tag`, `unknown_level`, `audience_not_found`, `audience_empty`)."""
        return _accepted(service.create(g.actor, data))


@blp.route("/<int:job_id>")
@allow(MARKETERS)
@blp.response(200, BulkJobSchema)
def job(job_id):
    """A job's progress: members done of the total, applied and skipped (with why), and after a
    reversal what it undid and what it could not (points already spent, coupons already used)."""
    return _shown(service.get(job_id))


@blp.route("/<int:job_id>/reverse", methods=["POST"])
@allow(MANAGERS)
@unit_of_work(idempotent=True)
@blp.arguments(BulkReverseSchema)
@blp.response(202, BulkJobSchema, description="reversal queued; follow `status_url`")
def reverse(data, job_id):
    """Undo a finished job as a whole, in the background (managers, with a reason): granted points
    taken back (what was spent since is reported as `shortfall`), unused coupons cancelled, tags
    undone where the job changed them, levels restored where the member is still at the job's
    level. Once: again is 409 `bulk_job_already_reversed`; before the job ends, 409
    `bulk_job_not_finished`."""
    return _accepted(service.request_reversal(g.actor, job_id, data["reason"]))
