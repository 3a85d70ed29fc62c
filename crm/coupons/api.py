"""JSON API: coupon types, members' coupons, top-up gift rules, the lucky draw."""
from types import SimpleNamespace

from flask import g
from flask.views import MethodView

from ..auth.access import allow
from ..auth.roles import ANY_STAFF, COUNTER, MANAGERS
from ..core.api import Blueprint
from ..core.idempotency import unit_of_work
from ..core.timeutil import local_today
from ..members import service as members
from . import service
from .schemas import (
    CouponSchema,
    CouponTypeSchema,
    CouponTypeUpdateSchema,
    DrawResultSchema,
    GiftRuleSchema,
    GiftRuleUpdateSchema,
    IssueSchema,
    PrizeSchema,
    PrizeUpdateSchema,
)

blp = Blueprint("coupons_api", __name__, url_prefix="/api/v1", description="Coupons, gifts and the lucky draw")


@blp.route("/coupon-types")
class CouponTypes(MethodView):
    @allow(ANY_STAFF)
    @blp.response(200, CouponTypeSchema(many=True))
    def get(self):
        """Coupon types with their stock."""
        return service.list_definitions()

    @allow(MANAGERS)
    @unit_of_work()
    @blp.arguments(CouponTypeSchema)
    @blp.response(201, CouponTypeSchema)
    def post(self, data):
        """Add a coupon type (cash, item, gift or percent; stock optional)."""
        return service.create_definition(g.actor, data)


@blp.route("/coupon-types/<code>", methods=["PATCH"])
@allow(MANAGERS)
@unit_of_work()
@blp.arguments(CouponTypeUpdateSchema)
@blp.response(200, CouponTypeSchema)
def update_type(data, code):
    """Rename, change validity, retire, or add stock."""
    return service.update_definition(g.actor, code, data)


@blp.route("/members/<int:member_id>/coupons")
class MemberCoupons(MethodView):
    @allow(COUNTER)
    @blp.response(200, CouponSchema(many=True))
    def get(self, member_id):
        """All of a member's coupons, usable ones first."""
        members.get_member(member_id)
        return service.coupons_of(member_id)

    @allow(MANAGERS)
    @unit_of_work(idempotent=True)
    @blp.arguments(IssueSchema)
    @blp.response(201, CouponSchema)
    def post(self, data, member_id):
        """Issue a coupon by hand (a manager, with a reason)."""
        members.get_member(member_id)
        return service.issue(g.actor, member_id, service.get_definition(data["coupon_type"]), source="manual",
                             today=local_today(), source_ref=data["reason"][:64])


@blp.route("/coupons/<code>")
@allow(COUNTER)
@blp.response(200, CouponSchema)
def get_coupon(code):
    """One coupon by its code."""
    return service.get_coupon(code)


@blp.route("/gift-rules")
class GiftRules(MethodView):
    @allow(ANY_STAFF)
    @blp.response(200, GiftRuleSchema(many=True))
    def get(self):
        """Top-up gift rules."""
        return service.list_gift_rules()

    @allow(MANAGERS)
    @unit_of_work()
    @blp.arguments(GiftRuleSchema)
    @blp.response(201, GiftRuleSchema)
    def post(self, data):
        """Add a time-boxed top-up gift with limited stock."""
        return service.create_gift_rule(g.actor, data)


@blp.route("/gift-rules/<int:rule_id>", methods=["PATCH"])
@allow(MANAGERS)
@unit_of_work()
@blp.arguments(GiftRuleUpdateSchema)
@blp.response(200, GiftRuleSchema)
def update_gift_rule(data, rule_id):
    """Rename, change the threshold or dates, stop / resume, or add stock."""
    return service.update_gift_rule(g.actor, rule_id, data)


@blp.route("/draw-prizes")
class Prizes(MethodView):
    @allow(ANY_STAFF)
    @blp.response(200, PrizeSchema(many=True))
    def get(self):
        """Lucky-draw prizes with weights and stock."""
        return service.list_prizes()

    @allow(MANAGERS)
    @unit_of_work()
    @blp.arguments(PrizeSchema)
    @blp.response(201, PrizeSchema)
    def post(self, data):
        """Add a prize."""
        return service.create_prize(g.actor, data)


@blp.route("/draw-prizes/<int:prize_id>", methods=["PATCH"])
@allow(MANAGERS)
@unit_of_work()
@blp.arguments(PrizeUpdateSchema)
@blp.response(200, PrizeSchema)
def update_prize(data, prize_id):
    """Rename, reweight, stop / resume, or add stock."""
    return service.update_prize(g.actor, prize_id, data)


@blp.route("/members/<int:member_id>/draws", methods=["POST"])
@allow(COUNTER)
@unit_of_work(idempotent=True)
@blp.response(201, DrawResultSchema)
def draw(member_id):
    """Use one of the member's draws: the prize is issued as a coupon."""
    members.get_member(member_id)
    ticket = service.draw(g.actor, member_id, local_today())
    coupon = service.get_coupon_by_id(ticket.coupon_id)
    prize = service.get_prize(ticket.prize_id)
    return SimpleNamespace(prize_name=prize.name, coupon=coupon,
                           draws_left=service.tickets_left(member_id))
