"""JSON API: hotel stays posted by the PMS at check-out, and what stays earn per segment."""
from flask import g
from flask.views import MethodView

from ..auth.access import allow
from ..auth.roles import ADMINS, MEMBER_DESK
from ..core.api import Blueprint
from ..core.idempotency import unit_of_work
from ..extensions import db
from ..members.models import Member
from ..points import service as points
from ..programme import service as programme
from ..stores.models import Store
from . import service
from .schemas import RatesSchema, StayPostSchema, StayResultSchema

blp = Blueprint("stays_api", __name__, url_prefix="/api/v1", description="stays")


def _result(stay, outcome):
    store = db.session.get(Store, stay.store_id)
    earning = service.earning_of(stay.id)
    member = db.session.get(Member, stay.member_id) if stay.member_id else None
    return {"stay": {**{c: getattr(stay, c) for c in (
                "id", "stay_no", "arrival", "departure", "rooms", "room_revenue", "fb_revenue", "segment",
                "member_id", "complimentary", "day_use", "cancelled")},
                     "store_code": store.code, "company": stay.company_name},
            "points": {**outcome.as_json(), "total": earning.points if earning else 0},
            "member": {"id": member.id, "level": member.level.code, "level_name": member.level.name,
                       "points_balance": points.balance(member.id)} if member else None}


@blp.route("/stays", methods=["POST"])
@allow(MEMBER_DESK)
@unit_of_work(idempotent=True)
@blp.arguments(StayPostSchema)
@blp.response(200, StayResultSchema, description="an update of a stay posted before")
@blp.alt_response(201, schema=StayResultSchema, description="a new stay")
def post_stay(data):
    """One stay at check-out, from the PMS (front desk and managers): inserted, or updated by
    (hotel, stay_no) as a CSV re-import does. A stay of a member earns points on its room revenue
    and the F&B posted to the room at its segment's rate (`GET /api/v1/stays/rates`) × the
    member's level multiplier, usable at once; its revenue counts toward level spend and may lift
    the level. Posting it again unchanged writes nothing; changed or `cancelled`, what it earned
    is taken back (`reversed`; what was already spent is the `shortfall`) and it earns anew.
    The member is named by `member_id`, `member_mobile` or `card_code` (one); a merged member's
    stay goes to the survivor; an erased member is 409 `member_anonymised`. 422: `not_a_hotel`,
    `invalid_dates`, `unknown_member`, `ambiguous_member`, `unknown_store`."""
    stay, outcome, new = service.post_stay(g.actor, data)
    return _result(stay, outcome), (201 if new else 200)


@blp.route("/stays/rates")
class Rates(MethodView):
    @allow(MEMBER_DESK)
    @blp.response(200, RatesSchema)
    def get(self):
        """Points a stay earns per full `points_earn_unit` of room + F&B revenue, by guest segment."""
        return {"rates": service.rates(), "points_earn_unit": programme.get("points_earn_unit")}

    @allow(ADMINS)
    @unit_of_work()
    @blp.arguments(RatesSchema)
    @blp.response(200, RatesSchema)
    def put(self, data):
        """Set some segments' rates (admins); the others keep theirs. Stays posted before keep
        what they earned."""
        return {"rates": service.set_rates(g.actor, data["rates"]),
                "points_earn_unit": programme.get("points_earn_unit")}
