"""Staff pages: bulk work on an audience (marketing, managers), its progress and its reversal."""
from flask import Blueprint, abort, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user

from ..auth.access import allow
from ..auth.roles import MANAGERS, MARKETERS
from ..campaigns import audiences
from ..core.forms import commit_or_errors, form_to_dict
from ..core.paging import page_arg, paginate
from ..coupons import service as coupons
from ..extensions import db
from ..members import levels
from . import service
from .schemas import BulkJobCreateSchema

bp = Blueprint("bulk", __name__, url_prefix="/bulk")

ACTION_LABELS = {"points": _l("Grant points"), "coupon": _l("Issue a coupon"), "tag_add": _l("Add a tag"),
                 "tag_remove": _l("Remove a tag"), "level": _l("Set the level")}
STATUS_LABELS = {"queued": _l("Waiting"), "running": _l("Running"), "done": _l("Done"), "failed": _l("Failed"),
                 "reversing": _l("Reversing"), "reversed": _l("Reversed")}
SKIP_LABELS = {"out_of_stock": _l("Out of stock"), "coupon_type_inactive": _l("Coupon type retired"),
               "already_tagged": _l("Already had the tag"), "not_tagged": _l("Did not have the tag"),
               "already_at_level": _l("Already at the level"), "member_gone": _l("Merged or anonymised")}
UNDO_LABELS = {"reversed": _l("Reversed"), "partly": _l("Partly: points already spent"),
               "kept_used": _l("Kept: coupon already used"), "unchanged": _l("Left: changed since")}
PER_PAGE = 100


def summary(job: dict) -> str:
    """One line saying where a job is, in the page's language."""
    if job["status"] in ("reversing", "reversed"):
        line = _("%(undone)s of %(applied)s undone.", undone=f"{job['undone']:,}", applied=f"{job['applied']:,}")
        if job["shortfall"]:
            line += " " + _("%(points)s points had already been spent and were not taken back.",
                            points=f"{job['shortfall']:,}")
        return line
    if job["status"] == "failed":
        return _("The job stopped repeatedly and was given up after %(done)s of %(total)s members.",
                 done=f"{job['done']:,}", total=f"{job['total']:,}")
    if job["status"] == "queued":
        return ngettext("%(num)d member, waiting to start.", "%(num)d members, waiting to start.", job["total"])
    return _("%(done)s of %(total)s members: %(applied)s done, %(skipped)s skipped.", done=f"{job['done']:,}",
             total=f"{job['total']:,}", applied=f"{job['applied']:,}", skipped=f"{job['skipped']:,}")


def _row(job) -> dict:
    return {**service.status(job), "progress": service.progress(job)}


def _form_context():
    may_set_level = current_user.role in MANAGERS | {"admin"}
    actions = [(k, v) for k, v in ACTION_LABELS.items() if k != "level" or may_set_level]
    return {"actions": actions, "audiences": [(str(a.id), a.name) for a in audiences.list_audiences()],
            "coupon_types": [(d.code, f"{d.name} ({d.code})") for d in coupons.list_definitions() if d.active],
            "levels": [(lv.code, lv.name) for lv in levels.list_levels()] if may_set_level else [],
            "labels": _labels()}


def _labels():
    return {"audience_id": _("Audience"), "action": _("What to do"), "points": _("Points"),
            "expires_on": _("Points usable until"), "coupon_type": _("Coupon type"), "tag": _("Tag"),
            "level": _("Level"), "reason": _("Reason")}


def _context():
    return {"statuses": STATUS_LABELS, "summary": summary, "action_labels": ACTION_LABELS,
            "skip_labels": SKIP_LABELS, "undo_labels": UNDO_LABELS}


@bp.route("/", methods=["GET", "POST"])
@allow(MARKETERS)
def jobs_page():
    """The form (audience, action, its parameters, reason) and the recent jobs with their progress."""
    errors, form = {}, request.form
    if request.method == "POST":
        data = form_to_dict(form)
        if "audience_id" in data and not data["audience_id"].isdigit():
            data.pop("audience_id")
        done, errors = commit_or_errors(lambda: {"id": service.create(g.actor, BulkJobCreateSchema().load(
            {k: v for k, v in data.items() if k in _labels()})).id}, once=form.get("form_token", ""))
        if not errors:
            if not done.get("replayed"):
                service.start(done["id"])
            return redirect(url_for("bulk.job_page", job_id=done["id"]), 303)
    items, _total = paginate(service.jobs(), 1, 30)
    return render_template("bulk/jobs.html", errors=errors, form=form, jobs=[_row(j) for j in items],
                           **_form_context(), **_context()), (422 if errors else 200)


def _detail(job_id, errors=None, status=200):
    job = service.get(job_id)
    page = page_arg()
    rows = db.session.execute(service.effects(job_id).limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    return render_template("bulk/job.html", job=_row(job), effects=rows, page=page,
                           pages=max((job.total + PER_PAGE - 1) // PER_PAGE, 1), errors=errors or {},
                           form=request.form, may_reverse=current_user.role in MANAGERS | {"admin"},
                           **_context()), status


@bp.get("/<int:job_id>")
@allow(MARKETERS)
def job_page(job_id):
    """One job: its progress, what it did to each member, and (managers) the reverse button."""
    return _detail(job_id)


@bp.post("/<int:job_id>/reverse")
@allow(MANAGERS)
def reverse(job_id):
    """Reverse the job as a whole, with a reason (once)."""
    done, errors = commit_or_errors(lambda: {"id": service.request_reversal(
        g.actor, job_id, request.form.get("reason", "")).id}, once=request.form.get("form_token", ""))
    if errors:
        if errors.get("_details", {}).get("code") == "bulk_job_not_found":
            abort(404)
        return _detail(job_id, errors, 409 if "_form" in errors else 422)
    if not done.get("replayed"):
        service.start(job_id)
    return redirect(url_for("bulk.job_page", job_id=job_id), 303)


@bp.get("/<int:job_id>/progress")
@allow(MARKETERS)
def progress(job_id):
    """The figures static/imports.js moves the progress bar with (polled while the job runs)."""
    job = service.get(job_id)
    value, maximum = service.progress(job)
    running = job.status in ("queued", "running", "reversing")
    return jsonify({"status": "running" if running else job.status, "status_label": str(STATUS_LABELS[job.status]),
                    "value": value, "max": maximum, "summary": summary(service.status(job))})
