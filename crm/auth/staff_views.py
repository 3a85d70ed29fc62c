"""Admin UI: staff accounts — create, change role or home store, reset a password, deactivate.
The same schemas and service rules as /api/v1/staff."""
from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..core.forms import commit_or_errors, form_to_dict
from ..core.paging import page_arg, paginate
from ..stores import service as stores
from . import service
from .access import allow
from .roles import ADMINS, ROLE_NAMES
from .schemas import StaffCreateSchema, StaffUpdateSchema

bp = Blueprint("staff_admin", __name__, url_prefix="/admin/staff")


def _store_id(code):
    return stores.get_by_code(code).id if code else None


def _page(template, status=200, **context):
    return render_template(template, roles=list(ROLE_NAMES.items()),
                           store_options=[(s.code, s.name) for s in stores.list_stores()], **context), status


@bp.route("/", methods=["GET", "POST"])
@allow(ADMINS)
def staff_list():
    form, errors = {"role": "cashier"}, {}
    if request.method == "POST":
        form = request.form

        def create():
            data = StaffCreateSchema().load(form_to_dict(form))
            return service.create_staff(g.actor, store_id=_store_id(data.pop("store_code")), **data)
        created, errors = commit_or_errors(create)
        if not errors:
            flash(_("Account %(username)s created.", username=created.username), "success")
            return redirect(url_for("staff_admin.staff_list"))
    page = page_arg()
    rows, total = paginate(service.list_staff(), page, 100)
    return _page("auth/staff.html", 422 if errors else 200, staff=rows, total=total, page=page, form=form,
                 errors=errors)


@bp.route("/<int:staff_id>", methods=["GET", "POST"])
@allow(ADMINS)
def staff_edit(staff_id):
    person = service.get_staff(staff_id)
    if request.method == "GET":
        form = {"name": person.name, "role": person.role, "store_code": person.store.code if person.store else "",
                "active": person.active}
        return _page("auth/staff_edit.html", person=person, form=form, errors={})
    data = form_to_dict(request.form, checkboxes=("active",))
    data["store_code"] = data.get("store_code") or None
    if not data.get("password"):
        data.pop("password", None)
    def save():
        changes = StaffUpdateSchema().load(data)
        if "store_code" in changes:
            changes["store_id"] = _store_id(changes.pop("store_code"))
        return service.update_staff(g.actor, staff_id, **changes)
    _saved, errors = commit_or_errors(save)
    if errors:
        return _page("auth/staff_edit.html", 422, person=service.get_staff(staff_id), form=request.form, errors=errors)
    flash(_("Account %(username)s saved.", username=person.username), "success")
    return redirect(url_for("staff_admin.staff_list"))
