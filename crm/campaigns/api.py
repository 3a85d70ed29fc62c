"""JSON API: holidays, audiences, message templates, campaigns and the outbox."""
from flask import g
from flask.views import MethodView

from ..auth.access import allow, read_only
from ..auth.roles import ANY_STAFF, MARKETERS
from ..core.api import Blueprint
from ..core.idempotency import unit_of_work
from ..core.paging import page_schema, paginate
from ..reports import exports
from . import attribution, audiences, holidays, messages, service
from .schemas import (
    ActionSchema,
    AttributionQuery,
    AttributionSchema,
    AudienceSchema,
    AudienceUpdateSchema,
    CampaignInSchema,
    CampaignSchema,
    CampaignUpdateSchema,
    CountSchema,
    CustomHolidaySchema,
    DeliveryQuery,
    DeliverySchema,
    FiltersSchema,
    HolidayQuery,
    HolidaySchema,
    PreviewSchema,
    TemplateSchema,
    TemplateUpdateSchema,
    TestSendSchema,
)

blp = Blueprint("campaigns_api", __name__, url_prefix="/api/v1", description="Greetings and campaigns")


def _with_count(audience):
    audience.count = audiences.count(audience.filters)
    return audience


@blp.route("/holidays")
class Holidays(MethodView):
    @allow(ANY_STAFF)
    @blp.arguments(HolidayQuery, location="query")
    @blp.response(200, HolidaySchema(many=True))
    def get(self, args):
        """Every holiday of a year: fixed, rule-based, lunar and one-off dates."""
        return holidays.for_year(args["year"])

    @allow(MARKETERS)
    @unit_of_work()
    @blp.arguments(CustomHolidaySchema)
    @blp.response(201, CustomHolidaySchema)
    def post(self, data):
        """Add a one-off date to the calendar."""
        return holidays.add(g.actor, data)


@blp.route("/holidays/<int:holiday_id>", methods=["DELETE"])
@allow(MARKETERS)
@unit_of_work()
@blp.response(204)
def delete_holiday(holiday_id):
    """Remove a one-off date."""
    holidays.remove(g.actor, holiday_id)


@blp.route("/audiences")
class Audiences(MethodView):
    @allow(MARKETERS)
    @blp.response(200, AudienceSchema(many=True))
    def get(self):
        """Saved audiences with their live counts."""
        return [_with_count(a) for a in audiences.list_audiences()]

    @allow(MARKETERS)
    @unit_of_work()
    @blp.arguments(AudienceSchema)
    @blp.response(201, AudienceSchema)
    def post(self, data):
        """Save an audience."""
        return _with_count(audiences.save(g.actor, data))


@blp.route("/audiences/count", methods=["POST"])
@allow(MARKETERS)
@read_only
@blp.arguments(FiltersSchema)
@blp.response(200, CountSchema)
def count_audience(filters):
    """How many members a filter selects right now (nothing saved)."""
    return {"count": audiences.count(filters)}


@blp.route("/audiences/<int:audience_id>")
class AudienceItem(MethodView):
    @allow(MARKETERS)
    @blp.response(200, AudienceSchema)
    def get(self, audience_id):
        return _with_count(audiences.get_audience(audience_id))

    @allow(MARKETERS)
    @unit_of_work()
    @blp.arguments(AudienceUpdateSchema)
    @blp.response(200, AudienceSchema)
    def patch(self, data, audience_id):
        return _with_count(audiences.save(g.actor, data, audience_id))

    @allow(MARKETERS)
    @unit_of_work()
    @blp.response(204)
    def delete(self, audience_id):
        """Delete an audience no campaign uses."""
        audiences.delete(g.actor, audience_id)


@blp.route("/message-templates")
class Templates(MethodView):
    @allow(MARKETERS)
    @blp.response(200, TemplateSchema(many=True))
    def get(self):
        return messages.list_templates()

    @allow(MARKETERS)
    @unit_of_work()
    @blp.arguments(TemplateSchema)
    @blp.response(201, TemplateSchema)
    def post(self, data):
        """Save a template; one that does not render for a sample member is a 422 `template_invalid`."""
        return messages.save(g.actor, data)


@blp.route("/message-templates/<int:template_id>")
class TemplateItem(MethodView):
    @allow(MARKETERS)
    @blp.response(200, TemplateSchema)
    def get(self, template_id):
        return messages.get_template(template_id)

    @allow(MARKETERS)
    @unit_of_work()
    @blp.arguments(TemplateUpdateSchema)
    @blp.response(200, TemplateSchema)
    def patch(self, data, template_id):
        return messages.save(g.actor, data, template_id)


@blp.route("/campaigns")
class Campaigns(MethodView):
    @allow(MARKETERS)
    @unit_of_work()  # the first listing creates the built-in birthday greeting
    @blp.response(200, CampaignSchema(many=True))
    def get(self):
        """Every campaign, the built-in birthday greeting first."""
        return service.list_campaigns()

    @allow(MARKETERS)
    @unit_of_work()
    @blp.arguments(CampaignInSchema)
    @blp.response(201, CampaignSchema)
    def post(self, data):
        """Create a draft campaign (schedule it with an action)."""
        return service.save(g.actor, data)


@blp.route("/campaigns/<int:campaign_id>")
class CampaignItem(MethodView):
    @allow(MARKETERS)
    @blp.response(200, CampaignSchema)
    def get(self, campaign_id):
        return service.get_campaign(campaign_id)

    @allow(MARKETERS)
    @unit_of_work()
    @blp.arguments(CampaignUpdateSchema(partial=True))
    @blp.response(200, CampaignSchema)
    def patch(self, data, campaign_id):
        """Change a campaign that has not finished."""
        return service.save(g.actor, data, campaign_id)


@blp.route("/campaigns/<int:campaign_id>/actions", methods=["POST"])
@allow(MARKETERS)
@unit_of_work()
@blp.arguments(ActionSchema)
@blp.response(200, CampaignSchema)
def campaign_action(data, campaign_id):
    """Schedule, pause, resume or cancel a campaign.

    schedule: draft → scheduled. pause: scheduled or running → paused (nothing of it is fanned out or
    sent; queued messages wait). resume: paused → scheduled, or running if an occurrence had started; the
    scheduler carries on where it stopped, sends that fell due meanwhile go out within
    SCHEDULER_CATCH_UP_DAYS, and nothing is sent twice. cancel: for good (a done campaign only while
    messages still wait). 409 `invalid_transition` from a state the action does not start from."""
    return service.act(g.actor, campaign_id, data["action"])


@blp.route("/campaigns/<int:campaign_id>/preview")
@allow(MARKETERS)
@blp.response(200, PreviewSchema)
def campaign_preview(campaign_id):
    """The audience's size now, sample messages and the next send time."""
    return service.preview(campaign_id)


@blp.route("/campaigns/<int:campaign_id>/test-sends", methods=["POST"])
@allow(MARKETERS)
@unit_of_work()
@blp.arguments(TestSendSchema)
@blp.response(201, DeliverySchema)
def campaign_test_send(data, campaign_id):
    """Send the message for a sample member to a staff address now."""
    return service.test_send(g.actor, campaign_id, data["address"])


@blp.route("/campaigns/<int:campaign_id>/attribution")
@allow(MARKETERS)
@blp.arguments(AttributionQuery, location="query")
@blp.response(200, AttributionSchema)
def campaign_attribution(args, campaign_id):
    """The treated group against the holdout over `days` after a send (`format=csv|xlsx` for a file).

    For one occurrence, or every occurrence of the campaign (each member once per occurrence):
    members, visit rate (a closed bill in the window), spend per member, coupon redemption rate
    (a coupon of the campaign's type redeemed in the window; null for a campaign without a coupon),
    and incremental revenue = (spend per treated − spend per held-out member) × treated members,
    with its 95 % interval (normal approximation, Welch standard error). Without a holdout the
    revenue and interval are null and `note` says `no_holdout`. 404 `occurrence_not_found` for a
    send the campaign never made."""
    result = attribution.report(campaign_id, args["occurrence"], args["days"])
    if args["format"]:
        return exports.download(args["format"], f"campaign-{campaign_id}-attribution", ("field", "value"),
                                exports.key_value_rows(attribution.figures(result)))
    return result


@blp.route("/deliveries")
@allow(MARKETERS)
@blp.arguments(DeliveryQuery, location="query")
@blp.response(200, page_schema(DeliverySchema, "DeliveryPage"))
def list_deliveries(args):
    """The outbox: every message, newest first, filtered by status, channel, campaign or member."""
    stmt = service.deliveries(status=args.get("status"), channel=args.get("channel"),
                              campaign_id=args.get("campaign_id"), member_id=args.get("member_id"))
    items, total = paginate(stmt, args["page"], args["per_page"])
    return {"items": items, "total": total, "page": args["page"], "per_page": args["per_page"]}
