"""JSON API: catalogue items and promotions."""
from flask import g
from flask.views import MethodView

from ..auth.access import allow
from ..auth.roles import ANY_STAFF, MANAGERS
from ..core.api import Blueprint
from ..core.idempotency import unit_of_work
from ..core.paging import page_schema, paginate
from . import service
from .schemas import ItemQuery, ItemSchema, ItemUpdateSchema, PromotionSchema, PromotionUpdateSchema

blp = Blueprint("catalog_api", __name__, url_prefix="/api/v1", description="Catalogue and promotions")


@blp.route("/items")
class Items(MethodView):
    @allow(ANY_STAFF)
    @blp.arguments(ItemQuery, location="query")
    @blp.response(200, page_schema(ItemSchema, "ItemPage"))
    def get(self, args):
        """The catalogue, by category then SKU; `q` matches SKU, name or the name's pinyin (initials `swy` or
        full `sanwen` find 三文鱼刺身)."""
        items, total = paginate(service.list_items(args["q"], args["category"]), args["page"], args["per_page"])
        return {"items": items, "total": total, "page": args["page"], "per_page": args["per_page"]}

    @allow(MANAGERS)
    @unit_of_work()
    @blp.arguments(ItemSchema)
    @blp.response(201, ItemSchema)
    def post(self, data):
        """Add an item with its list and member prices."""
        return service.create_item(g.actor, data)


@blp.route("/items/<sku>")
class ItemDetail(MethodView):
    @allow(ANY_STAFF)
    @blp.response(200, ItemSchema)
    def get(self, sku):
        """One item."""
        return service.get_item(sku)

    @allow(MANAGERS)
    @unit_of_work()
    @blp.arguments(ItemUpdateSchema(partial=True, exclude=("sku",)))
    @blp.response(200, ItemSchema)
    def patch(self, data, sku):
        """Change prices, validity, stores or take an item off sale (active=false)."""
        return service.update_item(g.actor, sku, data)


@blp.route("/promotions")
class Promotions(MethodView):
    @allow(ANY_STAFF)
    @blp.response(200, PromotionSchema(many=True))
    def get(self):
        """All promotions, newest first."""
        return service.list_promotions()

    @allow(MANAGERS)
    @unit_of_work()
    @blp.arguments(PromotionSchema)
    @blp.response(201, PromotionSchema)
    def post(self, data):
        """Add a promotion (percentage of list price for categories and dates)."""
        return service.create_promotion(g.actor, data)


@blp.route("/promotions/<code>")
class PromotionDetail(MethodView):
    @allow(ANY_STAFF)
    @blp.response(200, PromotionSchema)
    def get(self, code):
        """One promotion."""
        return service.get_promotion(code)

    @allow(MANAGERS)
    @unit_of_work()
    @blp.arguments(PromotionUpdateSchema(partial=True, exclude=("code",)))
    @blp.response(200, PromotionSchema)
    def patch(self, data, code):
        """Change a promotion (e.g. end it early)."""
        return service.update_promotion(g.actor, code, data)
