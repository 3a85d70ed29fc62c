"""Manager UI: the catalogue (items and their member prices) and promotions."""
from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..auth.access import allow
from ..auth.roles import MANAGERS
from ..core.forms import commit_or_errors, form_to_dict
from ..core.paging import page_arg, paginate
from ..members import levels
from ..stores import service as stores
from . import service
from .schemas import ItemSchema, ItemUpdateSchema, PromotionSchema, PromotionUpdateSchema

bp = Blueprint("catalog", __name__, url_prefix="/catalog")


def _item_form_data(form, *, creating):
    """The item form as the API schema expects it: level prices come as price_<level> inputs."""
    data = form_to_dict(form, lists=("store_codes",), checkboxes=("active",))
    data["member_prices"] = {key[6:]: data.pop(key) for key in list(data) if key.startswith("price_")}
    if not creating:
        data.pop("sku", None)
    return data


def _item_page(item, form, errors, creating):
    return render_template("catalog/item_form.html", item=item, form=form, errors=errors, creating=creating,
                           levels=levels.list_levels(), stores=stores.list_stores()), (422 if errors else 200)


@bp.get("/")
@allow(MANAGERS)
def items():
    q = request.args.get("q", "").strip()
    page = page_arg()
    rows, total = paginate(service.list_items(q), page, 50)
    return render_template("catalog/items.html", items=rows, total=total, page=page, q=q)


@bp.route("/items/new", methods=["GET", "POST"])
@allow(MANAGERS)
def new_item():
    if request.method == "GET":
        return _item_page(None, {"active": True}, {}, True)
    item, errors = commit_or_errors(lambda: service.create_item(
        g.actor, ItemSchema().load(_item_form_data(request.form, creating=True))))
    if errors:
        return _item_page(None, request.form, errors, True)
    flash(_("Item %(sku)s saved.", sku=item.sku), "success")
    return redirect(url_for("catalog.items"))


@bp.route("/items/<sku>", methods=["GET", "POST"])
@allow(MANAGERS)
def edit_item(sku):
    item = service.get_item(sku)
    if request.method == "GET":
        form = {**ItemSchema().dump(item), "active": item.active, "store_codes": ", ".join(item.store_codes)}
        form.update({f"price_{code}": price for code, price in form.pop("member_prices").items()})
        return _item_page(item, form, {}, False)
    _saved, errors = commit_or_errors(lambda: service.update_item(g.actor, sku, ItemUpdateSchema(partial=True).load(
        _item_form_data(request.form, creating=False))))
    if errors:
        return _item_page(item, request.form, errors, False)
    flash(_("Item %(sku)s saved.", sku=sku), "success")
    return redirect(url_for("catalog.items"))


@bp.route("/promotions", methods=["GET", "POST"])
@allow(MANAGERS)
def promotions():
    form, errors = {}, {}
    if request.method == "POST":
        form = request.form
        data = form_to_dict(form, lists=("categories",), checkboxes=("members_only", "auto_apply"))
        promo, errors = commit_or_errors(lambda: service.create_promotion(g.actor, PromotionSchema().load(data)))
        if not errors:
            flash(_("Promotion %(code)s saved.", code=promo.code), "success")
            return redirect(url_for("catalog.promotions"))
    return render_template("catalog/promotions.html", promotions=service.list_promotions(), form=form,
                           errors=errors, store_options=[(s.code, s.name) for s in stores.list_stores()]), \
        (422 if errors else 200)


@bp.route("/promotions/<code>", methods=["GET", "POST"])
@allow(MANAGERS)
def edit_promotion(code):
    """Change a promotion's name, rate, categories, dates or audience (e.g. end it early)."""
    promo = service.get_promotion(code)
    options = [(s.code, s.name) for s in stores.list_stores()]
    if request.method == "GET":
        form = {"name": promo.name, "rate": f"{promo.rate_pct:.2f}", "categories": ", ".join(promo.categories or ()),
                "starts_on": promo.starts_on, "ends_on": promo.ends_on, "store_code": promo.store.code if promo.store
                else "", "members_only": promo.members_only, "auto_apply": promo.auto_apply}
        return render_template("catalog/promotion_edit.html", promo=promo, form=form, errors={},
                               store_options=options)
    data = form_to_dict(request.form, lists=("categories",), checkboxes=("members_only", "auto_apply"))
    data.setdefault("categories", [])
    data["store_code"] = data.get("store_code") or None
    data.pop("code", None)
    _saved, errors = commit_or_errors(lambda: service.update_promotion(
        g.actor, code, PromotionUpdateSchema(partial=True).load(data)))
    if errors:
        return render_template("catalog/promotion_edit.html", promo=service.get_promotion(code), form=request.form,
                               errors=errors, store_options=options), 422
    flash(_("Promotion %(code)s saved.", code=promo.code), "success")
    return redirect(url_for("catalog.promotions"))
