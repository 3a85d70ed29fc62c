"""Staff UI: log in, log out, language switch."""
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import login_user, logout_user

from ..core import audit
from ..core.timeutil import now_ts
from ..errors import Unauthorized
from ..extensions import db
from . import service
from .access import actor_for, allow, public
from .ratelimit import login_rate_limited
from .roles import ANY_STAFF

bp = Blueprint("auth", __name__)


def _safe_next(target):
    """Only redirect within this site after login."""
    if not target or urlsplit(target).netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("members.search")
    return target


@bp.route("/login", methods=["GET", "POST"])
@public
@login_rate_limited
def login():
    error = None
    username = request.form.get("username", "")
    if request.method == "POST":
        try:
            staff = service.authenticate(username, request.form.get("password", ""))
        except Unauthorized:
            g.login_failed = True
            error = _("Wrong username or password.")
        else:
            lang = session.get("lang")  # the language chosen before logging in stays
            session.clear()
            login_user(staff)
            session["login_at"] = session["seen_at"] = now_ts()
            session["pw"] = service.password_fingerprint(staff)
            if lang:
                session["lang"] = lang
            audit.record(actor_for(staff), "auth.login", entity=staff)
            db.session.commit()
            return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", error=error, username=username)


@bp.post("/logout")
@allow(ANY_STAFF)
def logout():
    logout_user()
    lang = session.get("lang")
    session.clear()
    session["lang"] = lang
    flash(_("You have logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.get("/lang/<code>")
@public
def set_language(code):
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
    return redirect(_safe_next(request.args.get("next") or request.referrer and urlsplit(request.referrer).path))
