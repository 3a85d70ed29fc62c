"""Staff pages of the hotel front desk: today's and tomorrow's arrivals (issue 17.2)."""
from datetime import timedelta

from flask import Blueprint, g, render_template, request
from flask_babel import gettext as _

from ..auth.access import allow
from ..auth.roles import MEMBER_DESK
from ..errors import DomainError
from . import service

bp = Blueprint("frontdesk", __name__, url_prefix="/frontdesk")

DAYS = ("today", "tomorrow")


@bp.get("/arrivals")
@allow(MEMBER_DESK)
def arrivals():
    """A hotel's arrivals for today or tomorrow (its time zone), frequent guests first, with what
    the desk should know: level, stays this year, a birthday in the stay, preferences, notes."""
    hotels = service.hotels()
    errors, store = {}, None
    code = request.args.get("store_code", "").strip()
    if code:
        try:
            store = service.hotel(code)
        except DomainError as exc:
            errors["store_code"] = exc.message
    if store is None:
        store = service.default_hotel(g.actor)
    which = request.args.get("day", "today")
    if which not in DAYS:
        errors["day"], which = _("Choose today or tomorrow."), "today"
    rows, today, day, tomorrow = [], None, None, None
    if store is not None:
        today = service.today_of(store)
        tomorrow = today + timedelta(days=1)
        day = tomorrow if which == "tomorrow" else today
        rows = service.arrivals(store, day)
    return render_template("frontdesk/arrivals.html", hotels=hotels, store=store, which=which, day=day,
                           today=today, tomorrow=tomorrow, rows=rows, errors=errors,
                           frequent_stays=service.FREQUENT_STAYS,
                           members_seen=sum(1 for r in rows if r.member_id)), (422 if errors else 200)
