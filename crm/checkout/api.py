"""JSON API: quotes, checkouts, voids."""
from flask import g
from flask.views import MethodView

from ..auth.access import allow, read_only
from ..auth.roles import COUNTER, MANAGERS
from ..core.api import Blueprint
from ..core.idempotency import unit_of_work
from ..core.paging import page_schema, paginate
from . import service
from .schemas import CheckoutInSchema, CheckoutQuery, CheckoutSchema, QuoteSchema, VoidInSchema, VoidSchema

blp = Blueprint("checkout_api", __name__, url_prefix="/api/v1/checkouts", description="Checkout")


@blp.route("/quote", methods=["POST"])
@allow(COUNTER)
@read_only
@blp.arguments(CheckoutInSchema)
@blp.response(200, QuoteSchema)
def quote(data):
    """Price a bill at member prices with points; nothing is saved."""
    return service.price(data)


@blp.route("")
class Checkouts(MethodView):
    @allow(COUNTER)
    @blp.arguments(CheckoutQuery, location="query")
    @blp.response(200, page_schema(CheckoutSchema, "CheckoutPage"))
    def get(self, args):
        """Closed and voided bills, newest first."""
        items, total = paginate(service.list_checkouts(args["store_code"], args["member_id"]),
                                args["page"], args["per_page"])
        return {"items": items, "total": total, "page": args["page"], "per_page": args["per_page"]}

    @allow(COUNTER)
    @unit_of_work(idempotent=True)
    @blp.arguments(CheckoutInSchema)
    @blp.response(201, CheckoutSchema)
    def post(self, data):
        """Close a bill: member prices, points redeemed (oldest first) and earned on what was paid."""
        return service.close(g.actor, data)


@blp.route("/<int:checkout_id>")
@allow(COUNTER)
@blp.response(200, CheckoutSchema)
def get_checkout(checkout_id):
    """One bill."""
    return service.get_checkout(checkout_id)


@blp.route("/<int:checkout_id>/void", methods=["POST"])
@allow(MANAGERS)
@unit_of_work(idempotent=True)
@blp.arguments(VoidInSchema)
@blp.response(201, VoidSchema)
def void(data, checkout_id):
    """Reverse everything the checkout did, with new ledger entries (409 if already voided)."""
    checkout, result = service.void(g.actor, checkout_id, data["reason"])
    return {"checkout": checkout, "points_restored": result["restored"], "points_reclaimed": result["reclaimed"],
            "points_written_off": result["written_off"], "wallet_restored": result["wallet_restored"],
            "wallet_paid_back": result["wallet_paid_back"], "coupons_restored": result["coupons_restored"],
            "company_account_reversed": result["company_reversed"]}
