"""Admin UI: the chain's stores — add a restaurant or hotel, change its details, close it."""
from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..auth.access import allow
from ..auth.roles import ADMINS
from ..core.forms import commit_or_errors, form_to_dict
from . import service
from .models import KINDS
from .schemas import StoreSchema, StoreUpdateSchema

bp = Blueprint("stores_admin", __name__, url_prefix="/admin/stores")


def _page(status=200, **context):
    return render_template("stores/stores.html", stores=service.list_stores(), kinds=KINDS, **context), status


@bp.route("/", methods=["GET", "POST"])
@allow(ADMINS)
def stores():
    if request.method == "GET":
        return _page(form={"kind": "restaurant"}, errors={}, editing=None)
    created, errors = commit_or_errors(
        lambda: service.create_store(g.actor, **StoreSchema().load(form_to_dict(request.form))))
    if errors:
        return _page(422, form=request.form, errors=errors, editing=None)
    flash(_("Store %(code)s added.", code=created.code), "success")
    return redirect(url_for("stores_admin.stores"))


@bp.route("/<code>", methods=["GET", "POST"])
@allow(ADMINS)
def edit(code):
    store = service.get_by_code(code, as_404=True)
    if request.method == "GET":
        form = {"name": store.name, "rooms": store.rooms or "", "timezone": store.timezone, "address": store.address,
                "phone": store.phone, "active": store.active}
        return _page(form=form, errors={}, editing=store)
    data = form_to_dict(request.form, checkboxes=("active",))
    if store.kind != "hotel":
        data.pop("rooms", None)
    _saved, errors = commit_or_errors(lambda: service.update_store(g.actor, store.code,
                                                                    **StoreUpdateSchema().load(data)))
    if errors:
        return _page(422, form=request.form, errors=errors, editing=service.get_by_code(code, as_404=True))
    flash(_("Store %(code)s saved.", code=store.code), "success")
    return redirect(url_for("stores_admin.stores"))
