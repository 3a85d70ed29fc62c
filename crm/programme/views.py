"""Admin UI: the programme rules (fees, points, stored value, draws, quiet hours) and the
top-up bonus tiers, validated by the same schemas and rules as the API."""
import re

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..auth.access import allow
from ..auth.roles import ADMINS
from ..core.forms import commit_or_errors, form_to_dict
from ..core.money import format_fen
from ..core.segments import SEGMENT_KEYS, SEGMENTS
from ..coupons import service as coupons
from ..wallet import service as wallet
from ..wallet.schemas import TierSchema
from . import service
from .schemas import ProgrammeSchema, ProgrammeUpdateSchema

bp = Blueprint("programme", __name__, url_prefix="/admin")

# (rule, label, input) in the order an admin reads them; input: money, number, time, mode or flag
FIELDS = (
    ("card_fee", _l("Card fee"), "money"), ("replacement_fee", _l("Replacement card fee"), "money"),
    ("points_earn_unit", _l("Spend that earns points"), "money"), ("points_per_unit", _l("Points for it"), "number"),
    ("point_value", _l("Value of one point"), "money"),
    ("points_expiry_months", _l("Points expire after (months, 0 = never)"), "number"),
    ("level_window_months", _l("Level upgrade window (months)"), "number"),
    ("wallet_spend_mode", _l("Stored value pays"), "mode"),
    ("wallet_pin_threshold", _l("PIN needed above"), "money"),
    ("points_on_wallet_bonus", _l("The bonus part of a payment earns points"), "flag"),
    ("draw_min_spend", _l("A bill of at least this earns a lucky draw (0 = none)"), "money"),
    ("quiet_hours_start", _l("Quiet hours from"), "time"), ("quiet_hours_end", _l("Quiet hours until"), "time"),
)
# The referral programme 老带新, in its own section of the page.
REFERRAL_FIELDS = (
    ("referral_reward", _l("Referral reward"), "choice"),
    ("referral_min_spend", _l("The new member's first bill of at least (0 = any)"), "money"),
    ("referral_yearly_cap", _l("Rewards per referrer per year (0 = no cap)"), "number"),
    ("referral_referrer_points", _l("Points for the referrer"), "number"),
    ("referral_referee_points", _l("Points for the new member"), "number"),
    ("referral_referrer_coupon", _l("Coupon type for the referrer"), "coupon"),
    ("referral_referee_coupon", _l("Coupon type for the new member"), "coupon"),
)
CHOICES = {"referral_reward": (("none", _l("No referral reward")), ("points", _l("Points")),
                               ("coupon", _l("A coupon")))}
MODES = (("proportional", _l("Principal and bonus in proportion")), ("principal_first", _l("Principal first")))


def _stay_rates_form() -> dict:
    from ..stays import service as stays
    return {f"rate_{segment}": str(rate) for segment, rate in stays.rates().items()}


def _page(form, errors, tier_form=None, tier_errors=None, stay_form=None, stay_errors=None):
    return render_template("programme/rules.html", fields=FIELDS, modes=MODES,
                           segments=SEGMENTS, stay_form=stay_form or _stay_rates_form(),
                           stay_errors=stay_errors or {}, stay_unit=service.get("points_earn_unit"),
                           referral_fields=REFERRAL_FIELDS, choices=CHOICES,
                           coupon_types=[(d.code, f"{d.code} · {d.name}") for d in coupons.list_definitions()],
                           form=form, errors=errors,
                           tiers=wallet.list_tiers(), tier_form=tier_form or {}, tier_errors=tier_errors or {},
                           money=format_fen), (422 if errors or tier_errors or stay_errors else 200)


@bp.route("/programme", methods=["GET", "POST"])
@allow(ADMINS)
def rules():
    current = ProgrammeSchema().dump(service.all_rules())
    if request.method == "GET":
        return _page(current, {})
    data = form_to_dict(request.form, checkboxes=("points_on_wallet_bonus",))
    for key in service.REFERRAL_COUPON_RULES:  # an emptied coupon type means "none", not "unchanged"
        if key in request.form and key not in data:
            data[key] = ""
    _saved, errors = commit_or_errors(lambda: service.update(g.actor, ProgrammeUpdateSchema(partial=True).load(data)))
    if errors:
        return _page(request.form, errors)
    flash(_("Programme rules saved."), "success")
    return redirect(url_for("programme.rules"))


@bp.post("/programme/tiers")
@allow(ADMINS)
def add_tier():
    data = form_to_dict(request.form, checkboxes=("active",))
    _tier, errors = commit_or_errors(lambda: wallet.create_tier(g.actor, TierSchema().load(data)))
    if errors:
        return _page(ProgrammeSchema().dump(service.all_rules()), {}, request.form, errors)
    flash(_("Bonus tier added."), "success")
    return redirect(url_for("programme.rules", _anchor="tiers"))


@bp.post("/programme/tiers/<int:tier_id>/active")
@allow(ADMINS)
def toggle_tier(tier_id):
    tier = next((t for t in wallet.list_tiers() if t.id == tier_id), None)
    if tier is not None:
        _tier, errors = commit_or_errors(lambda: wallet.update_tier(g.actor, tier_id, {"active": not tier.active}))
        flash(next(iter(errors.values())) if errors else _("Bonus tier updated."), "error" if errors else "success")
    return redirect(url_for("programme.rules", _anchor="tiers"))


@bp.post("/programme/stay-rates")
@allow(ADMINS)
def stay_rates():
    """Hotel stays' points per earn unit, by guest segment (crm/stays): each a whole number 0–1000."""
    from ..stays import service as stays
    rates, errors = {}, {}
    for segment in SEGMENT_KEYS:
        raw = request.form.get(f"rate_{segment}", "").strip()
        if not re.fullmatch(r"[0-9]{1,4}", raw) or int(raw) > 1000:
            errors[f"rate_{segment}"] = _("Enter a whole number of points from 0 to 1000.")
        else:
            rates[segment] = int(raw)
    if not errors:
        _saved, errors = commit_or_errors(lambda: stays.set_rates(g.actor, rates))
    if errors:
        return _page(ProgrammeSchema().dump(service.all_rules()), {}, stay_form=request.form, stay_errors=errors)
    flash(_("Stay points saved."), "success")
    return redirect(url_for("programme.rules", _anchor="stay-rates"))
