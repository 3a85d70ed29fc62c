"""The member's own account at /m/<link>: the rotating card code, balances, coupons, bills,
level, the programme's rules and their consents. The link is the only credential (as the
plastic card is): no log-in, nothing cached, no referrer, rate-limited per address."""
from datetime import timedelta

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..auth.access import public
from ..cards import codes, images, phone
from ..cards import service as cards
from ..core.actor import Actor
from ..core.timeutil import now_ts
from ..extensions import csrf, db
from ..members import consent, referrals
from ..notifications import service as notifications
from . import account, limit

bp = Blueprint("selfservice", __name__)

PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


@bp.before_request
def _rate_limit():
    wait = limit.retry_after(request.remote_addr)
    if wait is not None:
        page = render_template("selfservice/busy.html", seconds=wait)
        return Response(page, status=429, headers={**PRIVATE, "Retry-After": str(wait)})
    return None


def _private(body, status=200, mimetype=None, **headers) -> Response:
    return Response(body, status=status, mimetype=mimetype, headers={**PRIVATE, **headers})


def _seconds_to_next_code() -> int:
    return codes.STEP_SECONDS - int(now_ts()) % codes.STEP_SECONDS + 1


def _live_code(card):
    return codes.dynamic_payload(card.id) if card is not None and card.status == "active" else None


@bp.get("/m/<token>")
@public
def account_page(token):
    """The member's account; an unknown or revoked link says so (404) and shows nothing."""
    member = phone.member_for(token)
    if member is None:
        return _private(render_template("selfservice/account.html", member=None), 404)
    found = account.summary(member)
    code = _live_code(found.card)
    return _private(render_template(
        "selfservice/account.html", member=member, a=found, token=token, qr_svg=images.svg(code) if code else None,
        refresh=_seconds_to_next_code(), withdrawn=request.args.get("withdrawn"),
        referral_code=_referral_code(member), notifications=_notifications(member)))


@bp.get("/m/<token>/code.svg")
@public
def code_svg(token):
    """The code of this 30-second step, for the page to swap in without reloading; X-Refresh-In
    says when the next one is due."""
    member = phone.member_for(token)
    code = _live_code(cards.live_card(member.id)) if member is not None else None
    if code is None:
        abort(404)
    return _private(images.svg(code), mimetype="image/svg+xml", **{"X-Refresh-In": str(_seconds_to_next_code())})


@bp.post("/m/<token>/consent/<channel>")
@public
@csrf.exempt  # the secret link itself is what a forged form could not know
def withdraw_consent(token, channel):
    """The member withdraws one channel's consent (recorded with the time and source `member`)."""
    member = phone.member_for(token)
    if member is None:
        return _private(render_template("selfservice/account.html", member=None), 404)
    if channel not in consent.CHANNELS:
        abort(404)
    actor = Actor(staff_id=None, username="member", role="member", address=request.remote_addr)
    consent.withdraw(actor, member, channel, source="member")
    db.session.commit()
    return redirect(url_for("selfservice.account_page", token=token, withdrawn=channel, _anchor="consent"), 303)


def _referral_code(member):
    return referrals.code_for(member)


def _notifications(member):
    """The account messages sent to the member or on their way: what and when, not their text
    (whoever holds the link sees this page). Those never sent (no consent, failed) are left out."""
    return [n for n in notifications.for_member(member.id, limit=30) if n["status"] in _SHOWN][:10]


_SHOWN = {"sent", "queued", "sending"}


def labels():
    return {"sms": _("SMS offers"), "email": _("Email offers"), "service": _("Account messages")}


@bp.app_context_processor
def _consent_labels():
    return {"consent_labels": labels}


@bp.app_template_filter("local_date")
def local_date(value, tz: str) -> str:
    """A stored time as the date where the member's store is."""
    return account.local(value, tz).date().isoformat() if value else ""


@bp.app_template_filter("last_day")
def last_day(value, tz: str) -> str:
    """The last local day before a moment things expire (midnight on 1 January → 31 December)."""
    return (account.local(value, tz) - timedelta(microseconds=1)).date().isoformat()
