"""JSON API: tokens and staff accounts."""
from flask import current_app, g, request
from flask.views import MethodView

from ..core.api import Blueprint
from ..core.idempotency import unit_of_work
from ..core.paging import PageArgs, page_schema, paginate
from ..errors import Unauthorized, error_response
from ..extensions import db
from ..stores import service as stores
from . import ratelimit, service
from .access import allow, public
from .roles import ADMINS, ANY_STAFF
from .schemas import (
    StaffCreateSchema,
    StaffSchema,
    StaffUpdateSchema,
    TokenRequestSchema,
    TokenSchema,
)

blp = Blueprint("auth_api", __name__, url_prefix="/api/v1", description="Staff and tokens")


@blp.route("/auth/token", methods=["POST"])
@public
@unit_of_work()
@blp.arguments(TokenRequestSchema)
@blp.response(200, TokenSchema)
def create_token(data):
    """Exchange username and password for a Bearer token.

    Failed logins are counted with the UI's: 5 per username or 30 per address in 15 minutes,
    then 429 `rate_limited` with Retry-After (seconds), even for the right password."""
    refused = ratelimit.refusal(data["username"], request.remote_addr)
    if refused:
        db.session.commit()  # the refusal's audit entry
        resp = error_response(429, "rate_limited", "Too many failed logins; try again later.",
                              {"retry_after": refused.retry_after})
        resp.headers["Retry-After"] = str(refused.retry_after)
        return resp
    try:
        staff = service.authenticate(data["username"], data["password"])
    except Unauthorized:
        ratelimit.record_failure(data["username"], request.remote_addr)
        db.session.commit()
        raise
    token, row = service.issue_token(staff, current_app.config["API_TOKEN_HOURS"])
    return {"token": token, "role": staff.role, "expires_at": row.expires_at}


@blp.route("/auth/token", methods=["DELETE"])
@allow(ANY_STAFF)
@unit_of_work()
@blp.response(204)
def revoke_token():
    """Log out: the token stops working at once."""
    service.revoke_token(request.headers["Authorization"][7:].strip())


@blp.route("/auth/me")
@allow(ANY_STAFF)
@blp.response(200, StaffSchema)
def me():
    """The staff account behind the token."""
    return g.staff


def _store_id(code):
    return stores.get_by_code(code).id if code else None


@blp.route("/staff")
class StaffCollection(MethodView):
    @allow(ADMINS)
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(StaffSchema, "StaffPage"))
    def get(self, args):
        """List staff accounts."""
        items, total = paginate(service.list_staff(), args["page"], args["per_page"])
        return {"items": items, "total": total, **args}

    @allow(ADMINS)
    @unit_of_work()
    @blp.arguments(StaffCreateSchema)
    @blp.response(201, StaffSchema)
    def post(self, data):
        """Create a staff account."""
        store_id = _store_id(data.pop("store_code"))
        return service.create_staff(g.actor, store_id=store_id, **data)


@blp.route("/staff/<int:staff_id>")
class StaffItem(MethodView):
    @allow(ADMINS)
    @blp.response(200, StaffSchema)
    def get(self, staff_id):
        """One staff account."""
        return service.get_staff(staff_id)

    @allow(ADMINS)
    @unit_of_work()
    @blp.arguments(StaffUpdateSchema)
    @blp.response(200, StaffSchema)
    def patch(self, data, staff_id):
        """Change role, name, store, active flag or reset the password."""
        if "store_code" in data:
            data["store_id"] = _store_id(data.pop("store_code"))
        return service.update_staff(g.actor, staff_id, **data)
