"""Manager UI: coupon types (with stock), top-up gift rules and lucky-draw prizes."""
from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..auth.access import allow
from ..auth.roles import MANAGERS
from ..core.forms import commit_or_errors, form_to_dict
from ..core.money import format_fen
from . import service
from .models import KINDS
from .schemas import (
    CouponTypeSchema,
    CouponTypeUpdateSchema,
    GiftRuleSchema,
    GiftRuleUpdateSchema,
    PrizeSchema,
    PrizeUpdateSchema,
)

bp = Blueprint("coupons", __name__, url_prefix="/catalog/coupons")

# form name -> (schema, service call, success message)
FORMS = {
    "type": (CouponTypeSchema, service.create_definition, lambda name: _("Coupon type %(name)s added.", name=name)),
    "gift": (GiftRuleSchema, service.create_gift_rule, lambda name: _("Gift rule %(name)s added.", name=name)),
    "prize": (PrizeSchema, service.create_prize, lambda name: _("Prize %(name)s added.", name=name)),
}
KIND_LABELS = {"cash": _l("Cash off"), "item": _l("A dish"), "gift": _l("Gift"), "percent": _l("Percent off")}


def _page(status=200, forms=None, errors=None):
    types = service.list_definitions()
    return render_template("coupons/coupons.html", types=types, rules=service.list_gift_rules(),
                           prizes=service.list_prizes(), kinds=KINDS, money=format_fen, forms=forms or {},
                           errors=errors or {}, type_options=[(t.code, t.name) for t in types if t.active],
                           kind_labels=KIND_LABELS), status


@bp.get("/")
@allow(MANAGERS)
def coupons():
    return _page()


@bp.post("/<form_name>")
@allow(MANAGERS)
def add(form_name):
    if form_name not in FORMS:
        return _page(404)
    schema, create, message = FORMS[form_name]
    data = form_to_dict(request.form, checkboxes=("active",) if form_name == "type" else ())
    created, errors = commit_or_errors(lambda: create(g.actor, schema().load(data)))
    if errors:
        return _page(422, forms={form_name: request.form}, errors={form_name: errors})
    flash(message(created.name), "success")
    return redirect(url_for("coupons.coupons", _anchor=form_name))


@bp.post("/types/<code>")
@allow(MANAGERS)
def change_type(code):
    """Add stock to a limited type, or stop / resume issuing it."""
    data = form_to_dict(request.form)
    if "active" in data:
        data["active"] = data["active"] == "1"
    _saved, errors = commit_or_errors(
        lambda: service.update_definition(g.actor, code, CouponTypeUpdateSchema().load(data)), once=_once(data))
    if errors:
        flash(next(iter(v for k, v in errors.items() if k != "_details"), ""), "error")
    else:
        flash(_("Coupon type %(code)s saved.", code=code), "success")
    return redirect(url_for("coupons.coupons", _anchor="type"))


def _once(data: dict) -> str | None:
    """Adding stock is done once per form (a form sent twice adds it once); stop / resume and
    renames are the same however often they are sent."""
    return request.form.get("form_token", "") if data.get("add_stock") else None


def _active_from_form(data: dict) -> dict:
    """The stop / resume controls send active=1 or active=0."""
    if "active" in data:
        data["active"] = data["active"] == "1"
    return data


def _edit(row, *, template, form, schema, save, message, anchor):
    """Show a gift rule's or prize's edit page, or save it: back to the list, or the page
    again with each error beside its field. The row's stop / resume button posts here too."""
    if request.method == "GET":
        return render_template(template, row=row, form=form, errors={})
    data = _active_from_form(form_to_dict(request.form, drop_empty=False))  # an emptied name is an error
    if not data.get("add_stock"):
        data.pop("add_stock", None)
    _saved, errors = commit_or_errors(lambda: save(g.actor, row.id, schema().load(data)), once=_once(data))
    if errors:
        return render_template(template, row=row, form=request.form, errors=errors), 422
    flash(message(row.name), "success")
    return redirect(url_for("coupons.coupons", _anchor=anchor))


@bp.route("/gifts/<int:rule_id>", methods=["GET", "POST"])
@allow(MANAGERS)
def edit_gift_rule(rule_id):
    """Change a gift rule's name, threshold or dates, stop / resume it, or add stock."""
    rule = service.get_gift_rule(rule_id)
    form = {"name": rule.name, "min_topup": format_fen(rule.min_topup), "starts_on": rule.starts_on,
            "ends_on": rule.ends_on, "active": "1" if rule.active else "0"}
    return _edit(rule, template="coupons/gift_rule_edit.html", form=form, schema=GiftRuleUpdateSchema,
                 save=service.update_gift_rule, message=lambda name: _("Gift rule %(name)s saved.", name=name),
                 anchor="gift")


@bp.route("/prizes/<int:prize_id>", methods=["GET", "POST"])
@allow(MANAGERS)
def edit_prize(prize_id):
    """Change a prize's name or weight, stop / resume it, or add stock."""
    prize = service.get_prize(prize_id)
    form = {"name": prize.name, "weight": prize.weight, "active": "1" if prize.active else "0"}
    return _edit(prize, template="coupons/prize_edit.html", form=form, schema=PrizeUpdateSchema,
                 save=service.update_prize, message=lambda name: _("Prize %(name)s saved.", name=name),
                 anchor="prize")
