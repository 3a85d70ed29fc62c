"""Staff pages for PIPL requests (members/pipl.py): the printable copy of a member's data,
the erasure with its confirmation step, and the request log. Managers (and admins) only."""
import json

from flask import Response, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..auth.access import allow
from ..auth.roles import MANAGERS
from ..core import reasons
from ..core.forms import commit_or_errors
from ..core.money import format_fen
from ..core.paging import page_arg, paginate
from ..core.timeutil import local_today
from ..stores import service as stores
from . import pipl, service
from .pipl_models import REQUEST_KINDS
from .schemas import MemberExportSchema
from .views import bp


@bp.route("/members/<int:member_id>/export", methods=["GET", "POST"])
@allow(MANAGERS)
def export(member_id):
    """GET: the form asking why; POST: the copy as a printable page (print it or "Save as
    PDF" from the browser) or, with format=json, the JSON file. Each copy is logged."""
    member = service.get_member(member_id)
    errors, form = {}, request.form
    if request.method == "POST":
        fmt = "json" if form.get("format") == "json" else "html"

        def save():
            reason = reasons.required(form.get("reason"), _("Say why the copy is made (the member's request)."))
            pipl.log_request(g.actor, member.id, "export", reason, format=fmt)
            return {}
        _done, errors = commit_or_errors(save)
        if not errors:
            data = MemberExportSchema().dump(pipl.export(member.id))
            if fmt == "json":
                filename = f"member-{member.id}-{local_today().isoformat()}.json"
                return Response(json.dumps(data, ensure_ascii=False, indent=1), mimetype="application/json",
                                headers={"Content-Disposition": f'attachment; filename="{filename}"'})
            return render_template("members/pipl_export.html", member=member, data=data)
    return render_template("members/pipl_export_form.html", member=member, form=form, errors=errors), \
        (422 if errors else 200)


@bp.route("/members/<int:member_id>/erase", methods=["GET", "POST"])
@allow(MANAGERS)
def erase(member_id):
    """The erasure: the balances to be settled, the rule for the stored value and the reason;
    the balances the manager saw travel with the form, so a bill in between stops it."""
    member = service.get_member(member_id)
    held = pipl.balances(member.id)
    errors, form = {}, request.form
    if request.method == "POST":
        def save():
            store = stores.get_store(g.actor.store_id) if g.actor.store_id else None
            confirm = {k: form.get(f"seen_{k}", "-1") for k in ("points", "principal", "bonus")}
            try:
                confirm = {k: int(v) for k, v in confirm.items()}
            except ValueError:
                confirm = {"points": -1}
            pipl.anonymise(g.actor, member.id, reason=form.get("reason"), wallet_rule=form.get("wallet_rule"),
                           store=store, confirm=confirm)
            return {}
        _done, errors = commit_or_errors(save, once=form.get("form_token", ""))
        if not errors:
            flash(_("The member was anonymised."), "success")
            return redirect(url_for("members.detail", member_id=member.id))
        held = pipl.balances(member.id)  # as they are now (a bill may have moved them)
    return render_template("members/pipl_erase.html", member=member, held=held, form=form, errors=errors,
                           format_fen=format_fen), (422 if errors else 200)


@bp.get("/privacy-requests")
@allow(MANAGERS)
def requests_log():
    kind = request.args.get("kind") or None
    kind = kind if kind in REQUEST_KINDS else None
    page = page_arg()
    rows, total = paginate(pipl.requests_page(kind), page, 50)
    return render_template("members/pipl_requests.html", rows=rows, total=total, page=page, kind=kind,
                           kinds=REQUEST_KINDS, per_page=50)
