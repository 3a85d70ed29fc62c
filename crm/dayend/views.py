"""Staff pages of the cashier's day-end (日结): a store's day per cashier and tender, printable and
as CSV or Excel, and "checked by" records (service.py has the rules)."""
from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import Schema, ValidationError, fields, validate

from ..auth.access import allow
from ..auth.roles import COUNTER
from ..core.forms import commit_or_errors, errors_of
from ..core.timeutil import local_today
from ..errors import DomainError, Forbidden
from ..reports import exports
from ..stores import service as stores
from . import service
from .schemas import DayEndCheckIn

bp = Blueprint("dayend", __name__, url_prefix="/day-end")


class PageQuery(Schema):
    store_code = fields.Str(load_default=None, validate=validate.Length(max=32))
    date = fields.Date(load_default=None)
    format = fields.Str(load_default=None, validate=validate.OneOf(exports.FORMATS))


def figure_label(key: str) -> str:
    """A kept total's name: "net.tender.cash" -> "Net · Cash"."""
    names = {"net": _("Net"), "voided": _("Voided"), "bills": _("Bills"), "covers": _("Covers"), "sales": _("Sales"),
             "coupon_discount": _("Coupons"), "points_value": _("Points"), "paid": _("Paid (all tenders)"),
             "card_fees": _("Card fees"), "top_ups": _("Top-ups"), "principal": _("Principal"), "bonus": _("Bonus"),
             "refunds": _("Refunds"), "takings": _("Money taken")}
    parts = key.split(".")
    if len(parts) == 3 and parts[1] == "tender":
        return f"{names['net']} · {service.method_label(parts[2])}"
    if parts[0] == "takings" and len(parts) == 2:
        return f"{names['takings']} · {service.method_label(parts[1])}"
    return " · ".join(names.get(p, p) for p in parts)


def _status(exc) -> int:
    return 403 if isinstance(exc, Forbidden) else 422


def _render(args, errors, status, check_form=None, check_errors=None):
    day_end = shown = None
    store_options = [(s.code, s.name) for s in stores.list_stores()]
    if not errors:
        try:
            store = service.store_for(g.actor, args["store_code"])
            day_end = service.for_viewer(service.figures(store.code, args["date"]), g.actor)
        except DomainError as exc:
            errors, status = errors_of(exc), _status(exc)
    if day_end is not None and args.get("format"):  # a download: the page's own figures are not needed
        return exports.download(args["format"], f"day-end-{day_end['store'].code}-{args['date'].isoformat()}",
                                service.header(), service.table_rows(day_end))
    if day_end is not None:
        shown = service.as_json(day_end)
    for key, message in errors.items():
        if key not in ("store_code", "date", "_details"):
            flash(message, "error")
    return render_template("dayend/day.html", form=request.args, errors=errors, day_end=day_end, shown=shown,
                           store_options=store_options, method_label=service.method_label,
                           figure_label=figure_label, counts=service.COUNTS, check_form=check_form or {},
                           check_errors=check_errors or {}, local=service.local_time,
                           sees_all=service.sees_every_cashier(g.actor)), status


@bp.get("/")
@allow(COUNTER)
def day():
    """A store's day-end: today at the user's home store unless a store and day are asked for."""
    if not request.args.get("store_code") or not request.args.get("date"):
        try:
            store = service.store_for(g.actor, request.args.get("store_code") or None)
        except DomainError as exc:
            return _render({}, errors_of(exc), _status(exc))
        return redirect(url_for("dayend.day", **{**request.args.to_dict(), "store_code": store.code,
                                                 "date": request.args.get("date") or
                                                 local_today(store.timezone).isoformat()}))
    try:
        args = PageQuery().load(request.args)
    except ValidationError as exc:
        return _render({}, errors_of(exc), 422)
    return _render(args, {}, 200)


@bp.post("/check")
@allow(COUNTER)
def check():
    """Record that the day was checked (who, when, a note, the totals now); a resent form records once."""
    fields_in = {k: request.form.get(k, "") for k in ("store_code", "date", "note")}
    if request.form.get("seen"):  # the figures the page showed (a page from before this field: none)
        fields_in["seen"] = request.form["seen"]

    def save():
        data = DayEndCheckIn().load(fields_in)
        store = service.store_for(g.actor, data["store_code"])
        row = service.check_day(g.actor, store.code, data["date"], data["note"], data["seen"])
        return {"id": row.id}
    result, errors = commit_or_errors(save, once=request.form.get("form_token", ""))
    if errors:  # shown beside their fields: the store and day above, the note and the rest by the button
        page_errors = {k: errors.pop(k) for k in ("store_code", "date") if k in errors}
        if "seen" in errors:  # a hidden field the page filled: said by the button
            errors["_form"] = _("This form is out of date; reload the page and try again.")
            errors.pop("seen")
        try:
            args = PageQuery().load({k: fields_in[k] for k in ("store_code", "date")})
        except ValidationError:
            args, page_errors = {}, page_errors or {"date": _("Not a valid date.")}
        changed = (errors.get("_details") or {}).get("fingerprint") is not None
        response, _code = _render(args, page_errors, 422, check_form=request.form, check_errors=errors)
        return response, 409 if changed else 422
    flash(_("Day-end checked.") if not result.get("replayed") else _("This check was already recorded."), "success")
    return redirect(url_for("dayend.day", store_code=fields_in["store_code"].strip().upper(),
                            date=fields_in["date"]))
