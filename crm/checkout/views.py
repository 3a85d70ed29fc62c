"""Cashier UI: scan, build the bill, quote, redeem, close, print the receipt, void."""
import hashlib
import json
import uuid

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from itsdangerous import BadData, URLSafeTimedSerializer
from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict

from ..auth.access import allow
from ..auth.roles import COUNTER, MANAGERS
from ..cards import service as cards
from ..catalog import service as catalog
from ..core.forms import commit_or_errors, errors_of
from ..core.money import format_fen
from ..core.segments import SEGMENTS
from ..core.timeutil import local_today
from ..corporate import service as corporate
from ..coupons import service as coupons
from ..errors import DomainError, rollback_for
from ..extensions import db
from ..members import service as members
from ..points import service as points
from ..programme import service as programme
from ..stores import service as stores
from ..wallet import service as wallet
from . import service, till_form
from . import tenders as tendering
from .labels import CATEGORY_NAMES, COMPANY_METHOD_NAME, PAY_METHOD_NAMES, TENDER_NAMES

bp = Blueprint("till", __name__)


@bp.route("/till", methods=["GET", "POST"])
@allow(COUNTER)
def till():
    """The till: catalogue left, bill right. Every submit re-reads the whole bill from the form
    (till_form.read), prices it, and closes it only when "Confirm" is pressed on a bill this
    very submission did not change (a scan or a tap since pricing means: price again)."""
    form = request.form if request.method == "POST" else MultiDict()
    token = form.get("till_token") or uuid.uuid4().hex
    default_store = (g.actor.store_id and stores.get_store(g.actor.store_id).code) or next(
        (s.code for s in stores.list_stores() if s.active), None)  # staff without a home store: the first
    store = _store(form.get("store_code") or default_store)
    today = local_today(store.timezone) if store else local_today()
    state = till_form.read(form, store=store, today=today)
    errors, quote, member, priced = dict(state.errors), None, None, ""
    if request.method == "POST" and not errors.get("items"):
        try:
            if not state.lines:
                member = _scanned_member(state.fields.get("card_code", ""))
                if member is None and form.get("action") == "close":
                    errors["items"] = _("Add at least one item: scan it, search for it or tap it in the catalogue.")
            else:
                # The card the bill was priced with stands for the guest while they are served (a
                # phone code expires within a minute; a tap on the bill re-prices it).
                body = state.body(form.get("pin", ""))
                priced = _priced_digest(body)
                data = _keep_priced_member(body, form, state)
                if form.get("action") == "close" and not state.changed and form.get("priced", priced) != priced:
                    state.changed = True  # typed since pricing: show the new figures, close on the next Confirm
                    state.repriced = _("The bill changed since it was priced: check the new total, then confirm.")
                if form.get("action") == "close" and not state.changed:
                    done, errors = _close(data, form.get("till_token", ""))
                    if done:
                        return done
                    if errors.get("_details", {}).get("code") == "form_already_sent":
                        token = uuid.uuid4().hex  # this page's bill was closed: a new bill needs a new token
                    errors = _explained(errors)
                quote, tender_error = _price(data)
                member = quote.member
                if tender_error and "tenders" not in errors:
                    errors["tenders"] = tender_error
        except (ValidationError, DomainError) as exc:
            if isinstance(exc, DomainError):
                exc.details.setdefault("code", exc.code)  # for _explained
                rollback_for(exc)
            else:
                db.session.rollback()
            errors = {**errors, **_explained(errors_of(exc))}
            member = member or _member_for_display(state.fields.get("card_code", ""))
    return render_template("till/till.html", priced=priced, **_page(state, errors, quote, member, token, store,
                                                                    today, default_store)), (
        422 if _shown(errors) else 200)


_PRICED_FIELDS = ("store_code", "items", "card_code", "member_id", "coupon_codes", "promotion_codes",
                  "redeem_points", "wallet_amount")


def _priced_digest(body: dict) -> str:
    """What decides the figures the Confirm button shows (not the PIN, nor how the rest is
    paid): a close whose form differs from the priced one prices again instead of closing."""
    decisive = {key: body.get(key) for key in _PRICED_FIELDS}
    return hashlib.sha256(json.dumps(decisive, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _shown(errors) -> bool:
    return any(key != "_details" for key in errors)


def _store(code):
    try:
        return stores.get_by_code(code, active_only=True) if code else None
    except DomainError:
        return None


def _scanned_member(code: str):
    ref = till_form.member_reference(code)
    if "card_code" in ref:
        return cards.holder(cards.scan(ref["card_code"], field="card_code"))  # a merged duplicate's: the survivor
    if "member_id" in ref:
        return members.get_member(ref["member_id"])
    return None


def _member_for_display(code: str):
    """Whom the card field names, to keep their coupons and balances on a page that shows an
    error (none if the card itself is the problem)."""
    try:
        return _scanned_member(code)
    except (ValidationError, DomainError):
        db.session.rollback()
        return None


def _price(data):
    """The quote to show, and the tenders' error if they do not add up yet (the bill is
    still shown: the cashier is typing the split)."""
    quote = service.price({**data, "tenders": None})
    try:
        quote.tenders = tendering.settle(data.get("tenders"), quote.wallet_paid, quote.due)
        return quote, ""
    except DomainError as exc:
        return quote, str(exc.message)


def _explained(errors: dict) -> dict:
    """Errors that say what to do next where the service's words are for the API."""
    details, code = errors.get("_details") or {}, (errors.get("_details") or {}).get("code")
    if code == "wallet_locked" or (code == "wrong_pin" and details.get("locked")):
        errors["pin"] = _("The stored value is locked after too many wrong PINs. Ask a manager to unlock it "
                          "on the member's page, or take another payment.")
    elif code == "wrong_pin":
        errors["pin"] = _("Wrong PIN: %(left)d tries left before the stored value locks. Ask the member to "
                          "type it again.", left=details.get("tries_left", 0))
    elif code == "pin_required":
        errors["pin"] = _("This payment needs the member's 6-digit PIN: ask the member to type it.")
    elif code == "insufficient_wallet":
        errors["wallet_amount"] = _("Only %(balance)s stored value is left: lower the amount or take the rest "
                                    "another way.", balance=details.get("balance", ""))
    return errors


def _page(state, errors, quote, member, token, store, today, default_store):
    items = catalog.sellable_items(store, today) if store else []
    categories = sorted({item.category for item in items})
    search = state.search
    shown = catalog.sellable_items(store, today, q=search) if (store and search) else items
    point_value = programme.get("point_value")
    payable = quote.member_total - quote.coupon_discount if quote else 0
    available = points.available(member.id) if member else None
    wallet_now = wallet.balances(member.id) if member else None
    company_account = corporate.signer_account(member)  # sign-for-bill (挂账) is offered to signers only
    pay_methods = dict(PAY_METHOD_NAMES)
    if company_account is not None and company_account.active:
        pay_methods["company_account"] = COMPANY_METHOD_NAME
    return dict(
        form=state.fields, state=state, errors=errors, quote=quote, member=member, token=token,
        member_ref=_sign_member(quote, state.fields, token) if quote else "",
        member_points=available, default_store=default_store, member_wallet=wallet_now,
        pin=wallet.pin_state(member.id) if member else None,
        member_coupons=[c for c in coupons.coupons_of(member.id, usable_on=today) if c.valid_from <= today]
        if member else [],
        max_points=min(available, payable // point_value) if quote and member else None,
        max_wallet=min(wallet_now["balance"], payable - quote.points_value) if quote and member else None,
        items=shown, categories=categories, category_names=CATEGORY_NAMES,
        store_options=[(s.code, s.name) for s in stores.list_stores() if s.active], segments=SEGMENTS,
        birthday_today=cards.birthday_today(member) if member else False, point_value=point_value,
        pin_threshold=programme.get("wallet_pin_threshold"), pay_methods=pay_methods,
        tender_names=TENDER_NAMES, company_account=company_account)


def _close(data, token):
    """Close the bill once per form: a resubmitted form (double tap, four tabs) shows the
    receipt the first one made, never a second bill (core/forms.commit_or_errors).
    Returns (redirect to the receipt, {}) or (None, errors)."""
    def save():
        try:
            return {"checkout_id": service.close(g.actor, data).id}
        except DomainError as exc:
            exc.details.setdefault("code", exc.code)  # for _explained
            raise
    done, errors = commit_or_errors(save, once=token)
    if errors:
        return None, errors
    flash(_("This bill was already closed; here is its receipt.") if done.get("replayed") else _("Bill closed."),
          "info" if done.get("replayed") else "success")
    return redirect(url_for("till.receipt", checkout_id=done["checkout_id"])), {}


_MEMBER_REF_SECONDS = 900  # a bill priced a quarter of an hour ago is closed with a fresh scan


def _signer():
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="till-member")


def _sign_member(quote, fields, till_token: str) -> str:
    """The card the bill was priced with, signed into the form: a phone code rotates every
    30 s and is accepted for about a minute, but a guest may take longer to pay. It is bound
    to this bill's till token and this cashier, so it closes this bill only (once)."""
    if quote.card is None:
        return ""
    return _signer().dumps({"card": quote.card.id, "code": fields.get("card_code", "").strip(),
                            "till": till_token, "staff": g.actor.staff_id})


def _keep_priced_member(data: dict, form, state) -> dict:
    """Close with the card the bill was priced with, if the card field still holds the code
    that was scanned then (a new scan means a new guest)."""
    try:
        ref = _signer().loads(form.get("member_ref", ""), max_age=_MEMBER_REF_SECONDS)
    except BadData:
        return data
    same_bill = (ref.get("code"), ref.get("till"), ref.get("staff")) == (
        state.fields.get("card_code", "").strip(), form.get("till_token", ""), g.actor.staff_id)
    if not same_bill or "card_code" not in data:
        return data
    return {**{k: v for k, v in data.items() if k != "card_code"}, "card_id": int(ref["card"])}


@bp.get("/till/receipts/<int:checkout_id>")
@allow(COUNTER)
def receipt(checkout_id):
    checkout = service.get_checkout(checkout_id)
    return render_template("till/receipt.html", c=checkout, errors={}, tender_names=TENDER_NAMES,
                           signed_to=corporate.signed_company(checkout.id))


@bp.post("/till/receipts/<int:checkout_id>/void")
@allow(MANAGERS)
def void(checkout_id):
    if request.form.get("confirmed") != "1":  # without JS no dialog asked: the receipt asks, nothing is done yet
        return render_template("till/receipt.html", c=service.get_checkout(checkout_id), errors={},
                               tender_names=TENDER_NAMES, confirm_void=True)

    def save():
        _checkout, result = service.void(g.actor, checkout_id, request.form.get("reason", ""))
        return {"checkout_id": checkout_id, "paid_back": result["wallet_paid_back"]}
    done, errors = commit_or_errors(save, once=request.form.get("form_token", ""))
    if errors:
        return render_template("till/receipt.html", c=service.get_checkout(checkout_id), errors=errors,
                               tender_names=TENDER_NAMES), 422
    flash(_("This void was already done.") if done.get("replayed") else _("Bill voided; points were reversed."),
          "info" if done.get("replayed") else "success")
    if done.get("paid_back") and not done.get("replayed"):  # an erased member's stored value: cash back now
        flash(_("Pay %(amount)s back to the guest: their account was erased, so stored value cannot go back "
                "on it.", amount=format_fen(done["paid_back"])), "warning")
    return redirect(url_for("till.receipt", checkout_id=checkout_id))
