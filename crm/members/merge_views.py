"""Staff pages for merging duplicates (members/merge.py): the side-by-side page where a manager
picks, field by field, what the survivor keeps; and, on every member page, the duplicates
suggested (members/duplicates.py) or the survivor a tombstone was merged into."""
from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..auth.access import allow
from ..auth.roles import MANAGERS
from ..core.forms import commit_or_errors
from ..errors import DomainError
from . import duplicates, merge, service
from .views import bp


@bp.app_template_global("merge_box")
def merge_box(member) -> dict:
    """What the member page shows about merges: the survivor of a tombstone, or likely duplicates."""
    if member.merged_into_id is not None:
        return {"survivor": service.find_member(member.merged_into_id), "merge": merge.merge_of(member.id)}
    if member.anonymised_at is not None:
        return {}
    # The duplicates merged into this member: their pages keep what stayed theirs (messages sent to them).
    return {"duplicates": duplicates.find(member), "merged": merge.merged_into(member.id)}


@bp.route("/members/<int:member_id>/merge", methods=["GET", "POST"])
@allow(MANAGERS)
def merge_page(member_id):
    """Merge `from` (a query or form field: the duplicate) into this member, side by side."""
    into = service.get_member(member_id)
    form = request.form if request.method == "POST" else request.args
    errors = {}
    dup = None
    try:
        from_id = int(form.get("from", ""))
    except ValueError:
        from_id = None
        errors["from"] = _("Enter the number of the duplicate member.") if form.get("from") else None
    if from_id is not None:
        dup = service.find_member(from_id)
        if dup is None:
            errors["from"] = _("No such member.")
    errors = {k: v for k, v in errors.items() if v}
    if request.method == "POST" and dup is not None and not errors:
        chosen = {name: form.get(f"field_{name}", "into") for name in merge.FIELDS}
        done, errors = commit_or_errors(lambda: merge.merge(g.actor, into.id, dup.id, form.get("reason"), chosen),
                                        once=form.get("form_token"))
        if not errors:
            flash(_("Member %(dup)d was merged into this member.", dup=dup.id), "success")
            return redirect(url_for("members.detail", member_id=into.id))
        errors = {_FIELD_OF.get(k, k): v for k, v in errors.items()}
    rows = merge.side_by_side(into, dup) if dup is not None and dup.merged_into_id is None else []
    if dup is not None and dup.merged_into_id is not None:
        errors.setdefault("from", _("Member %(id)d was already merged into member %(into)d.", id=dup.id,
                                    into=dup.merged_into_id))
    if into.merged_into_id is not None:
        errors.setdefault("_form", str(_error(into)))
    return render_template("members/merge.html", member=into, dup=dup, rows=rows, form=form, errors=errors), \
        (422 if errors and request.method == "POST" else 200)


# The service names the duplicate `from_member_id`, the form calls it `from`.
_FIELD_OF = {"from_member_id": "from", "into_member_id": "_form", "fields": "_form"}


def _error(member) -> DomainError:
    try:
        merge.refuse_tombstone(member)
    except DomainError as exc:
        return exc.message
    return ""
