"""JSON API: stores."""
from flask import g
from flask.views import MethodView

from ..auth.access import allow
from ..auth.roles import ADMINS, ANY_STAFF
from ..core.api import Blueprint
from ..core.idempotency import unit_of_work
from . import service
from .schemas import StoreSchema, StoreUpdateSchema

blp = Blueprint("stores_api", __name__, url_prefix="/api/v1/stores", description="Stores")


@blp.route("")
class Stores(MethodView):
    @allow(ANY_STAFF)
    @blp.response(200, StoreSchema(many=True))
    def get(self):
        """All stores of the chain."""
        return service.list_stores()

    @allow(ADMINS)
    @unit_of_work()
    @blp.arguments(StoreSchema)
    @blp.response(201, StoreSchema)
    def post(self, data):
        """Add a restaurant or hotel."""
        return service.create_store(g.actor, **data)


@blp.route("/<code>")
class StoreItem(MethodView):
    @allow(ANY_STAFF)
    @blp.response(200, StoreSchema)
    def get(self, code):
        """One store."""
        return service.get_by_code(code, as_404=True)

    @allow(ADMINS)
    @unit_of_work()
    @blp.arguments(StoreUpdateSchema)
    @blp.response(200, StoreSchema)
    def patch(self, data, code):
        """Change a store."""
        return service.update_store(g.actor, code, **data)
