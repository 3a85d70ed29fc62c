"""JSON API: the service-message templates (per kind and channel) and a member's service messages."""
from flask import g
from flask.views import MethodView

from ..auth.access import allow
from ..auth.roles import ADMINS, MARKETERS, MEMBER_LOOKUP
from ..core.api import Blueprint
from ..core.idempotency import unit_of_work
from ..members import service as members
from . import service
from .schemas import NotificationQuery, NotificationSchema, NotificationTemplateSchema, NotificationTemplateUpdateSchema

blp = Blueprint("notifications_api", __name__, url_prefix="/api/v1",
                description="Service notifications: receipts, payment alerts, points and level messages")
EDITORS = ADMINS | MARKETERS


@blp.route("/notification-templates")
class Templates(MethodView):
    @allow(EDITORS)
    @blp.response(200, NotificationTemplateSchema(many=True))
    def get(self):
        """Every kind's template on each channel (the default text until an admin changes it)."""
        return service.template_list()


@blp.route("/notification-templates/<kind>/<channel>")
class TemplateItem(MethodView):
    @allow(EDITORS)
    @unit_of_work()
    @blp.arguments(NotificationTemplateUpdateSchema)
    @blp.response(200, NotificationTemplateSchema)
    def patch(self, data, kind, channel):
        """Change a template's subject, text or switch. A placeholder the kind does not fill is
        422 `unknown_placeholder` on its field; a stray brace 422 `invalid_template`."""
        return service.update_template(g.actor, kind, channel, data)

    @allow(EDITORS)
    @unit_of_work()
    @blp.response(200, NotificationTemplateSchema)
    def delete(self, kind, channel):
        """Back to the default text and switch."""
        return service.reset_template(g.actor, kind, channel)


@blp.route("/members/<int:member_id>/notifications")
class MemberNotifications(MethodView):
    @allow(MEMBER_LOOKUP)
    @blp.arguments(NotificationQuery, location="query")
    @blp.response(200, NotificationSchema(many=True))
    def get(self, args, member_id):
        """The member's recent service messages, newest first (kind, channel, status, text)."""
        members.get_member(member_id)
        return service.for_member(member_id, args["limit"])
