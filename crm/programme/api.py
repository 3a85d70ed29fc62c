"""JSON API: programme rules."""
from flask import g
from flask.views import MethodView

from ..auth.access import allow
from ..auth.roles import ADMINS, ANY_STAFF
from ..core.api import Blueprint
from ..core.idempotency import unit_of_work
from . import service
from .schemas import ProgrammeSchema, ProgrammeUpdateSchema

blp = Blueprint("programme_api", __name__, url_prefix="/api/v1/programme", description="Programme rules")


@blp.route("")
class Programme(MethodView):
    @allow(ANY_STAFF)
    @blp.response(200, ProgrammeSchema)
    def get(self):
        """The programme rules in force."""
        return service.all_rules()

    @allow(ADMINS)
    @unit_of_work()
    @blp.arguments(ProgrammeUpdateSchema(partial=True))
    @blp.response(200, ProgrammeSchema)
    def patch(self, data):
        """Change programme rules."""
        return service.update(g.actor, data)
