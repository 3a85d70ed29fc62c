"""Staff UI: log in, log out, language switch."""
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import login_user

from ..core import audit
from ..errors import Unauthorized
from ..extensions import db
from . import ratelimit, service, sessions
from .access import actor_for, allow, end_client_session, public
from .roles import ANY_STAFF

bp = Blueprint("auth", __name__)


# Where each role starts its shift after logging in (a `next` link still wins).
LANDING = {"cashier": "till.till", "marketing": "marketing.campaigns", "front_desk": "members.search",
           "manager": "reports.kpis", "admin": "members.search"}


def landing_for(role: str | None) -> str:
    return url_for(LANDING.get(role, "members.search"))


def _safe_next(target, default=None):
    """Only redirect within this site after login."""
    if not target or urlsplit(target).netloc or not target.startswith("/") or target.startswith("//"):
        return default or url_for("members.search")
    return target


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    error = None
    username = request.form.get("username", "")
    if request.method == "POST":
        # Failed logins are counted with the API's, per username and per address (ratelimit.py).
        refused = ratelimit.refusal(username, request.remote_addr)
        if refused:
            db.session.commit()  # the refusal's audit entry
            return render_template("auth/login.html", error=_("Too many failed attempts. Try again later."),
                                   username=username), 429, {"Retry-After": str(refused.retry_after)}
        try:
            staff = service.authenticate(username, request.form.get("password", ""))
        except Unauthorized:
            ratelimit.record_failure(username, request.remote_addr)
            db.session.commit()
            error = _("Wrong username or password.")
        else:
            lang = session.get("lang")  # the language chosen before logging in stays
            sessions.end()  # a session this browser had before is not left open
            session.clear()
            login_user(staff)
            sessions.start(staff)
            if lang:
                session["lang"] = lang
            audit.record(actor_for(staff), "auth.login", entity=staff)
            db.session.commit()
            return redirect(_safe_next(request.args.get("next"), default=landing_for(staff.role)))
    return render_template("auth/login.html", error=error, username=username)


@bp.post("/logout")
@allow(ANY_STAFF)
def logout():
    sessions.end()  # server-side: a copy of this cookie stops working too
    db.session.commit()
    end_client_session()
    flash(_("You have logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.get("/lang/<code>")
@public
def set_language(code):
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
    return redirect(_safe_next(request.args.get("next") or request.referrer and urlsplit(request.referrer).path))
