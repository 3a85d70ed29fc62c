"""Front-desk UI: issue, freeze, report lost, replace and print cards; give a member the
phone card link. The phone card page itself is public: its link is the member's secret."""

from flask import (
    Blueprint,
    Response,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..auth.access import allow
from ..auth.roles import MEMBER_DESK
from ..core.forms import commit_or_errors
from ..extensions import db
from ..members import notices
from ..members import service as members
from ..programme import service as programme
from . import images, phone, privacy, service

bp = Blueprint("cards", __name__)

_DONE = {"freeze": _l("Card frozen."), "unfreeze": _l("Card unfrozen."), "lost": _l("Card reported lost."),
         "cancel": _l("Card cancelled.")}
# Actions that stop a card working ask first. The member page's button opens this question
# as a page of its own (so it works without JavaScript); with JavaScript the same question
# is a dialog, and the form then carries confirmed=1 and skips the page.
_ASK = {"freeze": (_l("Freeze card %(no)s? It cannot be used until it is unfrozen."), _l("Yes, freeze the card")),
        "lost": (_l("Report card %(no)s lost? It stops working at once and cannot be found again; "
                    "the member keeps points and stored value on a replacement card."),
                 _l("Yes, report it lost")),
        "cancel": (_l("Cancel card %(no)s for good? It stops working at once."), _l("Yes, cancel the card"))}


def _back_to_member(member_id, errors=None, message=None):
    if errors:  # the message; details come after it
        notices.notify(member_id, "cards", next(iter(errors.values())), "error")
    else:
        notices.notify(member_id, "cards", message)
    return redirect(url_for("members.detail", member_id=member_id, _anchor="cards"))


def _print_new_card(member_id, issue, message):
    """Issue a card for its fee once per form (a form sent twice issues one card and takes
    one fee), then show it for printing."""
    def save():
        return {"card_no": issue(store_code=request.form.get("store_code", ""),
                                 payment_method=request.form.get("payment_method", "")).card_no}
    done, errors = commit_or_errors(save, once=request.form.get("form_token", ""))
    if errors:
        return _back_to_member(member_id, errors)
    flash(message, "success")
    return redirect(url_for("cards.print_card", card_no=done["card_no"]))


@bp.post("/members/<int:member_id>/cards")
@allow(MEMBER_DESK)
def issue(member_id):
    return _print_new_card(member_id, lambda **form: service.issue(
        g.actor, member_id, fee_paid=programme.get("card_fee"), **form), _("Card issued."))


@bp.post("/cards/<card_no>/<action>")
@allow(MEMBER_DESK)
def change(card_no, action):
    card = service.get_card(card_no)
    member_id = card.member_id
    if action in _ASK and request.form.get("confirmed") != "1":
        question, button = _ASK[action]
        return render_template("cards/confirm.html", card=card, action=action, button=button,
                               question=str(question) % {"no": privacy.card_no_for_viewer(card.card_no)},
                               reason=request.form.get("reason", ""))
    if action == "replace":
        return _print_new_card(member_id, lambda **form: service.replace(
            g.actor, card_no, fee_paid=programme.get("replacement_fee"), reason=request.form.get("reason", ""),
            **form), _("New card issued; the old card no longer works."))
    _done, errors = commit_or_errors(lambda: service.change_state(g.actor, card_no, action,
                                                                  request.form.get("reason", "")))
    return _back_to_member(member_id, errors, message=str(_DONE.get(action, _("Done."))))


@bp.get("/cards/<card_no>/print")
@allow(MEMBER_DESK)
def print_card(card_no):
    card = service.get_card(card_no)
    return render_template("cards/print.html", card=card, qr_svg=images.svg(service.qr_payload(card.card_no)))


@bp.get("/cards/<card_no>/qr.png")
@allow(MEMBER_DESK)
def qr_png(card_no):
    card = service.get_card(card_no)
    return Response(images.png(service.qr_payload(card.card_no)), mimetype="image/png")


@bp.post("/members/<int:member_id>/phone-card")
@allow(MEMBER_DESK)
def phone_link(member_id):
    """Issue (or replace) the member's phone card link and show it once, with a QR to scan."""
    token = phone.issue_link(g.actor, member_id)
    db.session.commit()
    url = url_for("selfservice.account_page", token=token, _external=True)
    member = members.get_member(member_id)  # not through the token: another desk may have revoked it already
    response = Response(render_template("cards/phone_link.html", member=member, url=url, qr_svg=images.svg(url)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/members/<int:member_id>/phone-card/revoke")
@allow(MEMBER_DESK)
def revoke_phone_link(member_id):
    """Cancel the member's phone card link (a lost phone): the page stops working at once."""
    revoked = phone.revoke_link(g.actor, member_id)
    db.session.commit()
    flash(_("The phone card link is cancelled.") if revoked else _("This member has no phone card link."),
          "success" if revoked else "info")
    return redirect(url_for("members.detail", member_id=member_id))


@bp.app_context_processor
def _card_labels():
    from .models import STATUS_LABELS
    return {"card_status": STATUS_LABELS, "transitions": service.TRANSITIONS,
            "card_no_for_viewer": privacy.card_no_for_viewer, "prints_cards": privacy.prints_cards}
