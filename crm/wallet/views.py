"""Staff UI for stored value on the member page: top-up (with a preview of bonus and
gifts), refund (managers), payment PIN, unlock; and the liability page for managers."""
from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from ..auth.access import allow
from ..auth.roles import COUNTER, MANAGERS
from ..core.forms import errors_of
from ..core.money import format_fen
from ..core.timeutil import local_today
from ..coupons import service as coupons
from ..errors import DomainError, rollback_for
from ..extensions import db
from ..members import service as members
from ..points import service as points
from ..programme import service as programme
from ..stores import service as stores
from . import service
from .schemas import TopUpInSchema

bp = Blueprint("wallet", __name__)


def _back(member_id, anchor="wallet"):
    return redirect(url_for("members.detail", member_id=member_id, _anchor=anchor))


def _failed(member_id, exc):
    if isinstance(exc, DomainError):
        rollback_for(exc)
    else:
        db.session.rollback()
    flash(" ".join(str(m) for k, m in errors_of(exc).items() if k != "_details"), "error")
    return _back(member_id)


@bp.post("/members/<int:member_id>/wallet/top-up")
@allow(COUNTER)
def top_up(member_id):
    member = members.get_member(member_id)
    try:
        data = TopUpInSchema().load({k: request.form.get(k, "") for k in ("store_code", "amount", "payment_method")})
        store = stores.get_by_code(data["store_code"], active_only=True)
        if request.form.get("action") != "confirm":  # first press: show what the guest will get
            preview = service.top_up_preview(data["amount"], local_today(store.timezone))
            return render_template("wallet/confirm_top_up.html", member=member, form=request.form, data=data,
                                   preview=preview, store=store)
        topup, result = service.top_up(g.actor, member.id, store=store, amount=data["amount"],
                                       payment_method=data["payment_method"])
        db.session.commit()
    except (ValidationError, DomainError) as exc:
        return _failed(member_id, exc)
    message = _("Topped up %(amount)s; bonus %(bonus)s.", amount=format_fen(topup.amount),
                bonus=format_fen(topup.bonus))
    for gift in result["gifts"]:
        message += " " + _("Gift: %(name)s (%(code)s).", name=gift.definition.name, code=gift.code)
    for missed in result["gifts_unavailable"]:
        message += " " + _("The gift “%(rule)s” has run out.", rule=missed["rule"])
    flash(message, "success")
    return _back(member_id)


@bp.post("/members/<int:member_id>/wallet/refund")
@allow(MANAGERS)
def refund(member_id):
    members.get_member(member_id)
    try:
        store = stores.get_by_code(request.form.get("store_code", ""), active_only=True)
        result = service.refund(g.actor, member_id, store=store, reason=request.form.get("reason", ""))
        db.session.commit()
    except (ValidationError, DomainError) as exc:
        return _failed(member_id, exc)
    flash(_("Refunded %(principal)s; bonus %(bonus)s forfeited.", principal=format_fen(result["refunded_principal"]),
            bonus=format_fen(result["forfeited_bonus"])), "success")
    return _back(member_id)


@bp.post("/members/<int:member_id>/wallet/pin")
@allow(COUNTER)
def set_pin(member_id):
    members.get_member(member_id)
    try:
        service.set_pin(g.actor, member_id, request.form.get("pin", ""), request.form.get("current_pin") or None)
        db.session.commit()
    except (ValidationError, DomainError) as exc:
        return _failed(member_id, exc)
    flash(_("Payment PIN saved."), "success")
    return _back(member_id)


@bp.post("/members/<int:member_id>/wallet/pin/unlock")
@allow(MANAGERS)
def unlock_pin(member_id):
    members.get_member(member_id)
    try:
        service.unlock_pin(g.actor, member_id)
        db.session.commit()
    except DomainError as exc:
        return _failed(member_id, exc)
    flash(_("Wallet payments unlocked."), "success")
    return _back(member_id)


@bp.post("/members/<int:member_id>/draw")
@allow(COUNTER)
def draw(member_id):
    members.get_member(member_id)
    try:
        ticket = coupons.draw(g.actor, member_id, local_today())
        prize = coupons.get_prize(ticket.prize_id)
        db.session.commit()
    except DomainError as exc:
        return _failed(member_id, exc)
    flash(_("Prize: %(prize)s — issued as a coupon.", prize=prize.name), "success")
    return _back(member_id, "coupons")


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
