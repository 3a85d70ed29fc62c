"""JSON API: a member's stored value, bonus tiers, and the liability figure."""
from flask import g
from flask.views import MethodView

from ..auth.access import allow
from ..auth.roles import ADMINS, ANY_STAFF, COUNTER, MANAGERS
from ..core.api import Blueprint
from ..core.idempotency import unit_of_work
from ..core.paging import PageArgs, page_schema, paginate
from ..core.timeutil import local_today
from ..coupons import service as coupons
from ..members import service as members
from ..points import service as points
from ..programme import service as programme
from ..stores import service as stores
from . import service
from .schemas import (
    LiabilitySchema,
    PinInSchema,
    RefundInSchema,
    RefundSchema,
    TierSchema,
    TierUpdateSchema,
    TopUpInSchema,
    TopUpSchema,
    WalletEntrySchema,
    WalletSchema,
)

blp = Blueprint("wallet_api", __name__, url_prefix="/api/v1", description="Stored value")


def _wallet(member_id):
    return {**service.balances(member_id), **service.pin_state(member_id)}


@blp.route("/members/<int:member_id>/wallet")
@allow(COUNTER)
@blp.response(200, WalletSchema)
def wallet(member_id):
    """Balance and its principal and bonus parts."""
    members.get_member(member_id)
    return _wallet(member_id)


@blp.route("/members/<int:member_id>/wallet/top-ups", methods=["POST"])
@allow(COUNTER)
@unit_of_work(idempotent=True)
@blp.arguments(TopUpInSchema)
@blp.response(201, TopUpSchema)
def top_up(data, member_id):
    """Top up; the highest bonus tier the amount reaches is added once."""
    store = stores.get_by_code(data["store_code"], active_only=True)
    topup, result = service.top_up(g.actor, member_id, store=store, amount=data["amount"],
                                   payment_method=data["payment_method"])
    balances = {"principal": result["principal"], "bonus": result["bonus"],  # as the top-up left them, locked
                "balance": result["principal"] + result["bonus"]}
    return {"id": topup.id, "principal_added": topup.amount, "bonus_added": topup.bonus, "coupons": result["gifts"],
            "gifts_unavailable": result["gifts_unavailable"], "wallet": {**balances, **service.pin_state(member_id)}}


@blp.route("/members/<int:member_id>/wallet/refunds", methods=["POST"])
@allow(MANAGERS)
@unit_of_work(idempotent=True)
@blp.arguments(RefundInSchema)
@blp.response(201, RefundSchema)
def refund(data, member_id):
    """Refund the unspent principal; the bonus is forfeited; the wallet stays open at zero."""
    members.get_member(member_id)
    store = stores.get_by_code(data["store_code"], active_only=True)
    result = service.refund(g.actor, member_id, store=store, reason=data["reason"])
    return {**result, "wallet": _wallet(member_id)}


@blp.route("/members/<int:member_id>/wallet/entries")
@allow(COUNTER)
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_schema(WalletEntrySchema, "WalletEntryPage"))
def entries(args, member_id):
    """Every change to the member's stored value, newest first."""
    members.get_member(member_id)
    items, total = paginate(service.entries_of(member_id), args["page"], args["per_page"])
    return {"items": items, "total": total, **args}


@blp.route("/members/<int:member_id>/wallet/pin", methods=["PUT"])
@allow(COUNTER)
@unit_of_work(idempotent=True)
@blp.arguments(PinInSchema)
@blp.response(200, WalletSchema)
def set_pin(data, member_id):
    """Set the member's 6-digit payment PIN (changing it needs the current PIN)."""
    members.get_member(member_id)
    service.set_pin(g.actor, member_id, data["pin"], data["current_pin"])
    return _wallet(member_id)


@blp.route("/members/<int:member_id>/wallet/pin/unlock", methods=["POST"])
@allow(MANAGERS)
@unit_of_work()
@blp.response(200, WalletSchema)
def unlock_pin(member_id):
    """Unlock wallet payments after too many wrong PINs."""
    members.get_member(member_id)
    service.unlock_pin(g.actor, member_id)
    return _wallet(member_id)


@blp.route("/wallet/bonus-tiers")
class Tiers(MethodView):
    @allow(ANY_STAFF)
    @blp.response(200, TierSchema(many=True))
    def get(self):
        """Top-up bonus tiers."""
        return service.list_tiers()

    @allow(ADMINS)
    @unit_of_work()
    @blp.arguments(TierSchema)
    @blp.response(201, TierSchema)
    def post(self, data):
        """Add a bonus tier (optionally for a date range)."""
        return service.create_tier(g.actor, data)


@blp.route("/wallet/bonus-tiers/<int:tier_id>", methods=["PATCH"])
@allow(ADMINS)
@unit_of_work()
@blp.arguments(TierUpdateSchema(partial=True))
@blp.response(200, TierSchema)
def update_tier(data, tier_id):
    """Change or retire (active=false) a bonus tier."""
    return service.update_tier(g.actor, tier_id, data)


@blp.route("/reports/liability")
@allow(MANAGERS)
@blp.response(200, LiabilitySchema)
def liability():
    """What the business owes its guests: stored value and outstanding points."""
    owed = service.liability()
    outstanding = points.outstanding()
    return {"wallet_principal": owed["principal"], "wallet_bonus": owed["bonus"],
            "wallet_total": owed["principal"] + owed["bonus"], "points_outstanding": outstanding,
            "points_value": outstanding * programme.get("point_value"),
            "coupons_face_value": coupons.unused_face_value(local_today())}
