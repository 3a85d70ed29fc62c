"""Cashier UI: scan, build the bill, quote, redeem, close, print the receipt, void."""
import re
import uuid

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from itsdangerous import BadData, URLSafeTimedSerializer
from marshmallow import ValidationError

from ..auth.access import allow
from ..auth.roles import COUNTER, MANAGERS
from ..cards import service as cards
from ..core.forms import commit_or_errors, errors_of
from ..core.segments import SEGMENTS
from ..core.timeutil import local_today
from ..coupons import service as coupons
from ..errors import DomainError, rollback_for
from ..extensions import db
from ..members import search_limit
from ..members import service as members
from ..points import service as points
from ..programme import service as programme
from ..stores import service as stores
from ..wallet import service as wallet
from . import service
from .schemas import CheckoutInSchema

bp = Blueprint("till", __name__)
_LINE = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*(?:[x×*\s]\s*(\d+))?\s*$")


def parse_bill(text: str):
    """'SALMON 2' / 'SALMON×2' / 'TEA' per line -> [{"sku", "qty"}]; raises ValidationError."""
    lines, bad = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        match = _LINE.match(raw)
        if not match:
            bad.append(number)
            continue
        lines.append({"sku": match[1].upper(), "qty": int(match[2] or 1)})
    if bad:
        raise ValidationError({"items": [_("Lines %(lines)s are not 'SKU quantity'.",
                                           lines=", ".join(map(str, bad)))]})
    return lines


def _member_reference(code: str) -> dict:
    """A scanned or typed card code, or a full mobile number, as the checkout body expects."""
    code = code.strip()
    if not code:
        return {}
    if members.is_exact_query(code) and not cards.card_no_from_code(code):
        search_limit.spend(g.actor, code, field="card_code")  # a mobile can be guessed: it is a member search
        found = db.session.scalars(members.search(code)).first()
        if found is None:
            raise ValidationError({"card_code": [_("No member has this mobile number.")]})
        return {"member_id": found.id}
    return {"card_code": code}


def _body(form) -> dict:
    body = {"store_code": form.get("store_code", ""), "items": parse_bill(form.get("items", "")),
            "redeem_points": form.get("redeem_points") or 0, **_member_reference(form.get("card_code", ""))}
    if form.get("covers"):
        body["covers"] = form["covers"]
    if form.get("segment"):
        body["segment"] = form["segment"]
    for key in ("promotion_codes", "coupon_codes"):
        codes = [c for c in re.split(r"[,\s，]+", form.get(key, "")) if c]
        if codes:
            body[key] = codes
    if form.get("wallet_amount", "").strip():
        body["wallet_amount"] = form["wallet_amount"].strip()
    if form.get("pin", "").strip():
        body["pin"] = form["pin"].strip()
    return CheckoutInSchema().load(body)  # counts typed as text are read by crm.core.fields.Int


@bp.route("/till", methods=["GET", "POST"])
@allow(COUNTER)
def till():
    form = request.form if request.method == "POST" else {}
    errors, quote, member = {}, None, None
    token = form.get("till_token") or uuid.uuid4().hex
    if request.method == "POST":
        try:
            if not form.get("items", "").strip():  # a scan alone: show who it is
                ref = _member_reference(form.get("card_code", ""))
                if "card_code" in ref:
                    member = cards.scan(ref["card_code"], field="card_code").member
                elif "member_id" in ref:
                    member = members.get_member(ref["member_id"])
                if member is None:
                    errors["items"] = _("Add at least one item.")
            else:
                data = _body(form)
                if form.get("action") == "close":
                    done, errors = _close(_keep_priced_member(data, form), form.get("till_token", ""))
                    if done:
                        return done
                    if errors.get("_details", {}).get("code") == "form_already_sent":
                        token = uuid.uuid4().hex  # this page's bill was closed: a new bill needs a new token
                else:
                    quote = service.price(data)
                    member = quote.member
        except (ValidationError, DomainError) as exc:
            if isinstance(exc, DomainError):
                rollback_for(exc)
            else:
                db.session.rollback()
            errors = errors_of(exc)
    default_store = g.actor.store_id and stores.get_store(g.actor.store_id).code
    return render_template(
        "till/till.html", form=form, errors=errors, quote=quote, member=member, token=token,
        member_ref=_sign_member(quote, form, token) if quote else "",
        member_points=points.available(member.id) if member else None, default_store=default_store,
        member_wallet=wallet.balances(member.id) if member else None,
        member_coupons=coupons.coupons_of(member.id, usable_on=local_today()) if member else [],
        store_options=[(s.code, s.name) for s in stores.list_stores() if s.active], segments=SEGMENTS,
        birthday_today=cards.birthday_today(member) if member else False, point_value=programme.get("point_value"),
        pin_threshold=programme.get("wallet_pin_threshold"),
    ), (422 if errors else 200)


def _close(data, token):
    """Close the bill once per form: a resubmitted form (double tap, four tabs) shows the
    receipt the first one made, never a second bill (core/forms.commit_or_errors).
    Returns (redirect to the receipt, {}) or (None, errors)."""
    def save():
        return {"checkout_id": service.close(g.actor, data).id}
    done, errors = commit_or_errors(save, once=token)
    if errors:
        return None, errors
    flash(_("This bill was already closed; here is its receipt.") if done.get("replayed") else _("Bill closed."),
          "info" if done.get("replayed") else "success")
    return redirect(url_for("till.receipt", checkout_id=done["checkout_id"])), {}


_MEMBER_REF_SECONDS = 900  # a bill priced a quarter of an hour ago is closed with a fresh scan


def _signer():
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="till-member")


def _sign_member(quote, form, till_token: str) -> str:
    """The card the bill was priced with, signed into the form: a phone code rotates every
    30 s and is accepted for about a minute, but a guest may take longer to pay. It is bound
    to this bill's till token and this cashier, so it closes this bill only (once)."""
    if quote.card is None:
        return ""
    return _signer().dumps({"card": quote.card.id, "code": form.get("card_code", "").strip(),
                            "till": till_token, "staff": g.actor.staff_id})


def _keep_priced_member(data: dict, form) -> dict:
    """Close with the card the bill was priced with, if the card field still holds the code
    that was scanned then (a new scan means a new guest)."""
    try:
        ref = _signer().loads(form.get("member_ref", ""), max_age=_MEMBER_REF_SECONDS)
    except BadData:
        return data
    same_bill = (ref.get("code"), ref.get("till"), ref.get("staff")) == (
        form.get("card_code", "").strip(), form.get("till_token", ""), g.actor.staff_id)
    if not same_bill or "card_code" not in data:
        return data
    return {**{k: v for k, v in data.items() if k != "card_code"}, "card_id": int(ref["card"])}


@bp.get("/till/receipts/<int:checkout_id>")
@allow(COUNTER)
def receipt(checkout_id):
    checkout = service.get_checkout(checkout_id)
    return render_template("till/receipt.html", c=checkout, errors={})


@bp.post("/till/receipts/<int:checkout_id>/void")
@allow(MANAGERS)
def void(checkout_id):
    def save():
        service.void(g.actor, checkout_id, request.form.get("reason", ""))
        return {"checkout_id": checkout_id}
    done, errors = commit_or_errors(save, once=request.form.get("form_token", ""))
    if errors:
        return render_template("till/receipt.html", c=service.get_checkout(checkout_id), errors=errors), 422
    flash(_("This void was already done.") if done.get("replayed") else _("Bill voided; points were reversed."),
          "info" if done.get("replayed") else "success")
    return redirect(url_for("till.receipt", checkout_id=checkout_id))
