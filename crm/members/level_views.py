"""Admin UI: member levels (tiers) — multiplier and the spend or top-up that reaches each."""
from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..auth.access import allow
from ..auth.roles import ADMINS
from ..core.forms import commit_or_errors, form_to_dict
from ..core.money import format_fen
from . import levels
from .schemas import LevelSchema, LevelUpdateSchema

bp = Blueprint("levels_admin", __name__, url_prefix="/admin/levels")


def _page(status=200, **context):
    return render_template("members/levels.html", levels=levels.list_levels(), money=format_fen, **context), status


def _form_data():
    """Empty thresholds mean "not by this path" (None), not "missing"."""
    data = form_to_dict(request.form, drop_empty=False)
    for key in ("upgrade_spend", "upgrade_topup"):
        data[key] = data.get(key) or None
    return data


@bp.route("/", methods=["GET", "POST"])
@allow(ADMINS)
def level_list():
    if request.method == "GET":
        return _page(form={"points_multiplier": "1.00"}, errors={}, editing=None)
    created, errors = commit_or_errors(lambda: levels.create_level(g.actor, **LevelSchema().load(_form_data())))
    if errors:
        return _page(422, form=request.form, errors=errors, editing=None)
    flash(_("Level %(name)s added.", name=created.name), "success")
    return redirect(url_for("levels_admin.level_list"))


@bp.route("/<code>", methods=["GET", "POST"])
@allow(ADMINS)
def edit(code):
    level = levels.get_by_code(code, as_404=True)
    if request.method == "GET":
        form = {"name": level.name, "rank": level.rank, "points_multiplier": f"{level.points_multiplier:.2f}",
                "upgrade_spend": format_fen(level.upgrade_spend) or "", "upgrade_topup": format_fen(level.upgrade_topup)
                or ""}
        return _page(form=form, errors={}, editing=level)
    data = _form_data()
    data.pop("code", None)
    _saved, errors = commit_or_errors(
        lambda: levels.update_level(g.actor, level.code, **LevelUpdateSchema(partial=True).load(data)))
    if errors:
        return _page(422, form=request.form, errors=errors, editing=levels.get_by_code(code, as_404=True))
    flash(_("Level %(name)s saved.", name=level.name), "success")
    return redirect(url_for("levels_admin.level_list"))
