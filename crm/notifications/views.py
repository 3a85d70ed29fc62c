"""Staff pages: the service-message templates (admin and marketing), and the member page's
list of a member's service messages (templates/notifications/_member_list.html)."""
from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..auth.access import allow
from ..core.forms import commit_or_errors, form_to_dict
from . import service
from .api import EDITORS
from .models import CHANNELS, DEFAULTS, FIELDS, IMMEDIATE, KIND_LABELS, KINDS
from .schemas import NotificationTemplateUpdateSchema

bp = Blueprint("notifications", __name__, url_prefix="/admin")


def _page(posted=None, errors=None):
    """Every kind with its two channels; `posted` ((kind, channel), form) keeps what was typed."""
    found = service.templates()
    kinds = []
    for kind in KINDS:
        channels = []
        for channel in CHANNELS:
            t = found[(kind, channel)]
            form = {"subject": t["subject"], "body": t["body"], "enabled": t["enabled"]}
            errs = {}
            if posted and posted[0] == (kind, channel):
                form, errs = posted[1], errors or {}
            channels.append({"channel": channel, "form": form, "errors": errs, "customised": t["customised"],
                             "default": DEFAULTS[(kind, channel)][1]})
        kinds.append({"kind": kind, "label": KIND_LABELS[kind], "fields": FIELDS[kind],
                      "immediate": kind in IMMEDIATE, "channels": channels})
    return render_template("notifications/templates.html", kinds=kinds,
                           days=service.expiry_notice_days()), (422 if errors else 200)


@bp.get("/notifications")
@allow(EDITORS)
def templates_page():
    return _page()


@bp.post("/notifications/<kind>/<channel>")
@allow(EDITORS)
def save_template(kind, channel):
    service._key(kind, channel)  # 404 for a kind or channel that does not exist
    data = form_to_dict(request.form, checkboxes=("enabled",), drop_empty=False)
    data.pop("reset", None)
    _saved, errors = commit_or_errors(lambda: service.update_template(g.actor, kind, channel,
                                                                      NotificationTemplateUpdateSchema().load(data)))
    if errors:
        form = {"subject": request.form.get("subject", ""), "body": request.form.get("body", ""),
                "enabled": bool(request.form.get("enabled"))}
        return _page(((kind, channel), form), errors)
    flash(_("Message template saved."), "success")
    return redirect(url_for("notifications.templates_page", _anchor=f"t-{kind}-{channel}"))


@bp.post("/notifications/<kind>/<channel>/reset")
@allow(EDITORS)
def reset_template(kind, channel):
    service._key(kind, channel)
    _done, errors = commit_or_errors(lambda: service.reset_template(g.actor, kind, channel))
    if not errors:
        flash(_("Back to the default text."), "success")
    return redirect(url_for("notifications.templates_page", _anchor=f"t-{kind}-{channel}"))
