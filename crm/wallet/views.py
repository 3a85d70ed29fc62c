"""Staff UI for stored value on the member page: top-up (with a preview of bonus and
gifts), refund (managers), payment PIN, unlock; and the liability page for managers."""
from flask import Blueprint, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from ..auth.access import allow
from ..auth.roles import COUNTER, MANAGERS
from ..core.forms import commit_or_errors, errors_of
from ..core.money import format_fen
from ..core.timeutil import local_today
from ..coupons import service as coupons
from ..errors import DomainError
from ..extensions import db
from ..members import notices
from ..members import service as members
from ..points import service as points
from ..programme import service as programme
from ..stores import service as stores
from . import service
from .schemas import TopUpInSchema

bp = Blueprint("wallet", __name__)


def _back(member_id, anchor="wallet"):
    return redirect(url_for("members.detail", member_id=member_id, _anchor=anchor))


def _failed(member_id, errors, anchor="wallet"):
    notices.notify(member_id, anchor, " ".join(str(m) for k, m in errors.items() if k != "_details"), "error")
    return _back(member_id, anchor)


def _done(member_id, result, anchor="wallet"):
    """Show the outcome (the first one's, for a form sent twice) next to the form that acted,
    back on the member page scrolled to it."""
    if result.get("replayed"):
        notices.notify(member_id, anchor, _(
            "This form had already been sent; nothing was done twice. The first time: %(message)s",
            message=result["message"]), "info")
    else:
        notices.notify(member_id, anchor, result["message"])
    return _back(member_id, anchor)


@bp.post("/members/<int:member_id>/wallet/top-up")
@allow(COUNTER)
def top_up(member_id):
    member = members.get_member(member_id)
    if request.form.get("action") != "confirm":  # first press: show what the guest will get
        try:
            data = TopUpInSchema().load({k: request.form.get(k, "") for k in ("store_code", "amount",
                                                                              "payment_method")})
            store = stores.get_by_code(data["store_code"], active_only=True)
        except (ValidationError, DomainError) as exc:
            db.session.rollback()
            return _failed(member_id, errors_of(exc))
        preview = service.top_up_preview(data["amount"], local_today(store.timezone))
        return render_template("wallet/confirm_top_up.html", member=member, form=request.form, data=data,
                               preview=preview, store=store)

    def save():
        data = TopUpInSchema().load({k: request.form.get(k, "") for k in ("store_code", "amount", "payment_method")})
        store = stores.get_by_code(data["store_code"], active_only=True)
        topup, result = service.top_up(g.actor, member.id, store=store, amount=data["amount"],
                                       payment_method=data["payment_method"])
        return {"message": _top_up_message(topup, result)}
    result, errors = commit_or_errors(save, once=request.form.get("form_token", ""))
    return _failed(member_id, errors) if errors else _done(member_id, result)


def _top_up_message(topup, result) -> str:
    message = _("Topped up %(amount)s; bonus %(bonus)s.", amount=format_fen(topup.amount),
                bonus=format_fen(topup.bonus))
    for gift in result["gifts"]:
        message += " " + _("Gift: %(name)s (%(code)s).", name=gift.definition.name, code=gift.code)
    for missed in result["gifts_unavailable"]:
        message += " " + (_("The gift “%(rule)s” has run out.", rule=missed["rule"])
                          if missed.get("reason") == "out_of_stock"
                          else _("The gift “%(rule)s” is no longer given.", rule=missed["rule"]))
    return message


@bp.post("/members/<int:member_id>/wallet/refund")
@allow(MANAGERS)
def refund(member_id):
    members.get_member(member_id)

    def save():
        store = stores.get_by_code(request.form.get("store_code", ""), active_only=True)
        result = service.refund(g.actor, member_id, store=store, reason=request.form.get("reason", ""))
        return {"message": _("Refunded %(principal)s; bonus %(bonus)s forfeited.",
                             principal=format_fen(result["refunded_principal"]),
                             bonus=format_fen(result["forfeited_bonus"]))}
    result, errors = commit_or_errors(save, once=request.form.get("form_token", ""))
    return _failed(member_id, errors) if errors else _done(member_id, result)


@bp.post("/members/<int:member_id>/wallet/pin")
@allow(COUNTER)
def set_pin(member_id):
    members.get_member(member_id)
    _result, errors = commit_or_errors(lambda: service.set_pin(  # once: a resent change must not count a wrong PIN
        g.actor, member_id, request.form.get("pin", ""), request.form.get("current_pin") or None),
        once=request.form.get("form_token", ""))
    return _failed(member_id, errors) if errors else _done(member_id, {"message": _("Payment PIN saved.")})


@bp.post("/members/<int:member_id>/wallet/pin/unlock")
@allow(MANAGERS)
def unlock_pin(member_id):
    members.get_member(member_id)
    _result, errors = commit_or_errors(lambda: service.unlock_pin(g.actor, member_id))
    return _failed(member_id, errors) if errors else _done(member_id, {"message": _("Wallet payments unlocked.")})


@bp.post("/members/<int:member_id>/draw")
@allow(COUNTER)
def draw(member_id):
    members.get_member(member_id)

    def save():
        ticket = coupons.draw(g.actor, member_id, local_today())
        return {"message": _("Prize: %(prize)s — issued as a coupon.", prize=coupons.get_prize(ticket.prize_id).name)}
    result, errors = commit_or_errors(save, once=request.form.get("form_token", ""))
    return _failed(member_id, errors, "coupons") if errors else _done(member_id, result, "coupons")


@bp.get("/reports/liability")
@allow(MANAGERS)
def liability():
    owed = service.liability()
    outstanding = points.outstanding()
    return render_template("wallet/liability.html", owed=owed, points_outstanding=outstanding,
                           points_value=outstanding * programme.get("point_value"),
                           coupons_value=coupons.unused_face_value(local_today()))


@bp.app_context_processor
def _coupon_labels():
    from ..coupons.models import STATUS_LABELS
    return {"coupon_status": STATUS_LABELS}
