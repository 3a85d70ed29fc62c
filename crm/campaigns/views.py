"""Marketing UI: campaigns with preview and test send, audiences with a live count,
message templates, the outbox and the holiday calendar."""
from datetime import datetime

from flask import Blueprint, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError

from ..auth.access import allow
from ..auth.roles import ADMIN, MANAGER, MARKETERS
from ..core.forms import commit_or_errors, errors_of, form_to_dict
from ..core.paging import page_arg, paginate
from ..core.segments import SEGMENTS
from ..core.timeutil import local_today, zone
from ..coupons import service as coupons
from ..errors import DomainError
from ..extensions import db
from ..members import levels
from ..reports import exports, rfm
from ..stores import service as stores
from . import attribution, audiences, fanout, holidays, jobs, messages, service
from .models import (
    CHANNEL_LABELS,
    DELIVERY_LABELS,
    REASON_LABELS,
    RECURRENCES,
    SCHEDULE_FIELDS,
    SCHEDULE_LABELS,
    STATE_LABELS,
    is_technical,
    reason_text,
)
from .schemas import AttributionQuery, AudienceSchema, CampaignInSchema, CustomHolidaySchema, TemplateSchema

bp = Blueprint("marketing", __name__, url_prefix="/marketing")
TECHNICAL_ROLES = frozenset({ADMIN, MANAGER})
LABELS = {"channels": CHANNEL_LABELS, "schedules": SCHEDULE_LABELS, "states": STATE_LABELS,
          "statuses": DELIVERY_LABELS, "reasons": REASON_LABELS}


def _render(template, status=200, **context):
    # Every marketing page says so when no scheduler is running: nothing scheduled would go out.
    return render_template(template, labels=LABELS, address_for_viewer=messages.address_for_viewer,
                           reason_text=reason_text, technical_detail=_technical_detail,
                           scheduler_down=jobs.scheduler_down(), **context), status


def _technical_detail(reason: str | None) -> str:
    """A channel's own words about a failure, for whoever fixes the set-up (a manager or an
    administrator): marketing reads reason_text only."""
    return reason if is_technical(reason) and g.actor.role in TECHNICAL_ROLES else ""


def _save(fn, on_error):
    """Run a save and commit, or re-render the form with the errors beside the fields."""
    result, errors = commit_or_errors(fn)
    return (result, None) if not errors else (None, on_error(errors))


# Campaigns -------------------------------------------------------------------------------

@bp.get("/")
@allow(MARKETERS)
def campaigns():
    rows = service.list_campaigns()
    db.session.commit()  # the built-in birthday greeting, the first time
    return _render("campaigns/campaigns.html", campaigns=rows, counts=fanout.delivery_counts([c.id for c in rows]),
                   next_run=service.next_run)


def _campaign_form_data(form) -> dict:
    data = form_to_dict(form, checkboxes=("marketing",))
    if data.get("send_at"):  # a datetime-local input is the chain's wall clock
        try:
            data["send_at"] = datetime.fromisoformat(data["send_at"]).replace(tzinfo=zone()).isoformat()
        except ValueError:
            pass  # the schema names the field
    for key in ("audience_id", "coupon_type_code", "recurrence", "holiday_key"):
        data.setdefault(key, None)
    if "holdout_percent" in form and "holdout_percent" not in data:  # cleared: nobody held out
        data["holdout_percent"] = "0"
    # The form holds every schedule's fields; only the chosen schedule's are read (the others
    # are hidden by static/campaigns.js, or under their own heading without JavaScript), so a
    # leftover value in another schedule's field neither blocks the save nor is stored.
    chosen = SCHEDULE_FIELDS.get(data.get("schedule"), ())
    for key in {name for names in SCHEDULE_FIELDS.values() for name in names} - set(chosen):
        data.pop(key, None)
    return data


def _campaign_page(campaign, form, errors, preview=None, test_errors=None):
    year = local_today().year
    holiday_options = {h["key"]: h["name"] for y in (year, year + 1) for h in holidays.for_year(y)}
    return _render("campaigns/campaign_form.html", 422 if errors or test_errors else 200, campaign=campaign, form=form,
                   errors=errors or {}, preview=preview, test_errors=test_errors or {},
                   audiences=[(str(a.id), a.name) for a in audiences.list_audiences()],
                   templates=[(str(t.id), t.name) for t in messages.list_templates()],
                   coupon_types=[(c.code, c.name) for c in coupons.list_definitions() if c.active],
                   holidays=sorted(holiday_options.items()), recurrences=RECURRENCES,
                   counts=fanout.delivery_counts([campaign.id]).get(campaign.id, {}) if campaign else {},
                   next_run=service.next_run(campaign) if campaign else None,
                   catch_up_days=current_app.config["SCHEDULER_CATCH_UP_DAYS"])


def _form_of(campaign) -> dict:
    local = service.send_at_local(campaign)
    return {"name": campaign.name, "audience_id": str(campaign.audience_id or ""),
            "template_id": str(campaign.template_id), "channel": campaign.channel,
            "coupon_type_code": campaign.coupon_type.code if campaign.coupon_type else "",
            "schedule": campaign.schedule, "send_at": local.strftime("%Y-%m-%dT%H:%M") if local else "",
            "send_time": campaign.send_time.strftime("%H:%M"), "recurrence": campaign.recurrence or "",
            "holiday_key": campaign.holiday_key or "", "days_before": campaign.days_before,
            "starts_on": campaign.starts_on or "", "ends_on": campaign.ends_on or "", "marketing": campaign.marketing,
            "holdout_percent": campaign.holdout_percent}


@bp.route("/campaigns/new", methods=["GET", "POST"])
@allow(MARKETERS)
def new_campaign():
    if request.method == "GET":
        return _campaign_page(None, {"channel": "sms", "schedule": "once", "send_time": "09:00", "days_before": 0,
                                     "marketing": True, "holdout_percent": 0},
                              {})
    created, page = _save(lambda: service.save(g.actor, CampaignInSchema().load(_campaign_form_data(request.form))),
                          lambda errors: _campaign_page(None, request.form, errors))
    if page:
        return page
    flash(_("Campaign saved as a draft. Check the preview, then schedule it."), "success")
    return redirect(url_for("marketing.campaign", campaign_id=created.id))


@bp.route("/campaigns/<int:campaign_id>", methods=["GET", "POST"])
@allow(MARKETERS)
def campaign(campaign_id):
    item = service.get_campaign(campaign_id)
    if request.method == "GET":
        return _campaign_page(item, _form_of(item), {}, preview=_preview(item))
    data = _campaign_form_data(request.form)
    saved, page = _save(lambda: service.save(g.actor, CampaignInSchema(partial=True).load(data), campaign_id),
                        lambda errors: _campaign_page(item, request.form, errors, preview=_preview(item)))
    if page:
        return page
    flash(_("Campaign saved."), "success")
    return redirect(url_for("marketing.campaign", campaign_id=saved.id))


def _preview(campaign):
    try:
        return service.preview(campaign.id)
    except DomainError as exc:  # e.g. an audience filter that no longer matches the programme
        return {"error": exc.message}


@bp.post("/campaigns/<int:campaign_id>/action")
@allow(MARKETERS)
def campaign_action(campaign_id):
    action = request.form.get("action", "")
    if action == "cancel" and request.form.get("confirmed") != "1":  # without JS no dialog asked: a page does
        return _render("campaigns/confirm.html", campaign=service.get_campaign(campaign_id))
    _done, errors = _save(lambda: service.act(g.actor, campaign_id, action), lambda errors: errors)
    if _done is None:  # what stopped it, in words: a state someone changed meanwhile, a template that broke...
        flash(" ".join(str(m) for k, m in errors.items() if k != "_details")
              or _("That cannot be done now: the campaign's state has changed."), "error")
    else:
        flash({"schedule": _("Campaign scheduled."),
               "pause": _("Campaign paused: nothing of it is sent until you resume it."),
               "resume": _("Campaign resumed: it carries on where it stopped."),
               "cancel": _("Campaign cancelled.")}[action], "success")
    return redirect(url_for("marketing.campaign", campaign_id=campaign_id))


@bp.post("/campaigns/<int:campaign_id>/test-send")
@allow(MARKETERS)
def test_send(campaign_id):
    item = service.get_campaign(campaign_id)
    sent, page = _save(lambda: service.test_send(g.actor, campaign_id, request.form.get("address", "")),
                       lambda errors: _campaign_page(item, _form_of(item), {}, preview=_preview(item),
                                                     test_errors=errors))
    if page:
        return page
    if sent.status == "sent":
        flash(_("Test message sent to %(address)s.", address=sent.address), "success")
    else:
        flash(_("The test message could not be sent: %(reason)s", reason=reason_text(sent.reason)), "error")
    return redirect(url_for("marketing.campaign", campaign_id=campaign_id))


ATTRIBUTION_LABELS = {
    "occurrence": _l("Send"), "days": _l("Days after the send"), "treated": _l("Treated"),
    "holdout": _l("Held out"), "members": _l("Members"), "visitors": _l("Visited"), "visit_rate": _l("Visit rate %"),
    "spend": _l("Spend"), "spend_per_member": _l("Spend per member"),
    "coupon_redemptions": _l("Redeemed the coupon"), "coupon_redemption_rate": _l("Coupon redemption rate %"),
    "holdout_share": _l("Holdout share %"), "difference_per_member": _l("Difference per member"),
    "incremental_revenue": _l("Incremental revenue"), "confidence_interval": _l("Confidence interval (95 per cent)"),
    "low": _l("low"), "high": _l("high"), "field": _l("Figure"), "value": _l("Value"),
}


def _attribution_label(key: str) -> str:
    """"treated.visit_rate" -> "Treated · Visit rate %"."""
    return " · ".join(str(ATTRIBUTION_LABELS.get(part, part)) for part in str(key).split("."))


@bp.get("/campaigns/<int:campaign_id>/attribution")
@allow(MARKETERS)
def attribution_page(campaign_id):
    """The holdout report of a campaign's sends: the page, or its figures as a file with `format`."""
    item = service.get_campaign(campaign_id)
    result, errors = None, {}
    try:
        args = AttributionQuery().load({k: v for k, v in request.args.items() if v != ""})
        result = attribution.report(campaign_id, args["occurrence"], args["days"])
    except (ValidationError, DomainError) as exc:
        args, errors = {"days": request.args.get("days", ""), "format": None}, errors_of(exc)
    if result is not None and args.get("format"):
        return exports.download(args["format"], f"campaign-{campaign_id}-attribution",
                                [_attribution_label("field"), _attribution_label("value")],
                                exports.key_value_rows(attribution.figures(result), name=_attribution_label))
    return _render("campaigns/attribution.html", 422 if errors else 200, campaign=item, result=result,
                   errors=errors, form=request.args, sends=attribution.occurrences(campaign_id),
                   label=_attribution_label)


# Audiences -------------------------------------------------------------------------------

def _audience_form_data(form) -> dict:
    filters = {key: form.getlist(key) for key in ("levels", "segments", "stores", "rfm") if form.getlist(key)}
    text = form_to_dict(form)
    if text.get("tags"):
        filters["tags"] = [t.strip() for t in text["tags"].replace("，", ",").split(",") if t.strip()]
    for key in ("birthday_month", "last_visit_after", "last_visit_before", "spend_min", "spend_max", "consent"):
        if text.get(key):
            filters[key] = text[key]
    return {"name": text.get("name", ""), "filters": filters}


def _audience_page(audience, form, errors, count=None):
    return _render("campaigns/audience_form.html", 422 if errors else 200, audience=audience, form=form,
                   errors=errors, count=count, months=[(str(m), str(m)) for m in range(1, 13)],
                   level_options=[(lv.code, lv.name) for lv in levels.list_levels()],
                   segment_options=list(SEGMENTS.items()), rfm_options=list(rfm.GROUPS.items()),
                   store_options=[(s.code, s.name) for s in stores.list_stores()])


def _audience_errors(errors: dict) -> dict:
    """Errors of the filters (nested in the schema, "filters.x" from the service) beside their inputs."""
    return {key.split(".", 1)[1] if key.startswith("filters.") else key: message for key, message in errors.items()}


def _audience_form(audience_id=None):
    item = audiences.get_audience(audience_id) if audience_id else None
    data, form = _audience_form_data(request.form), request.form
    wants_json = request.accept_mimetypes.best == "application/json"
    try:
        if form.get("op") == "count":
            loaded = AudienceSchema().load({**data, "name": data["name"] or "-"})
            count = audiences.count(loaded["filters"])
            if wants_json:  # the live count as filters change (static/app.js)
                return jsonify(count=count, text=_("%(count)d members match now.", count=count))
            return _audience_page(item, form, {}, count=count)
    except (ValidationError, DomainError) as exc:
        db.session.rollback()
        errors = _audience_errors(errors_of(exc, flatten=("filters",)))
        if wants_json:
            return jsonify(error=next(iter(errors.values()), "")), 422
        return _audience_page(item, form, errors)
    saved, errors = commit_or_errors(lambda: audiences.save(g.actor, AudienceSchema().load(data), audience_id),
                                     flatten=("filters",))
    if errors:
        return _audience_page(item, form, _audience_errors(errors))
    flash(_("Audience %(name)s saved.", name=saved.name), "success")
    return redirect(url_for("marketing.audiences_page"))


def _describe(filters: dict) -> list[str]:
    """A saved filter in words: "Levels: 金卡会员, 银卡会员", "Birthday month: 5"."""
    names = {"levels": dict((lv.code, lv.name) for lv in levels.list_levels()),
             "stores": dict((s.code, s.name) for s in stores.list_stores()),
             "segments": {k: str(v) for k, v in SEGMENTS.items()}, "rfm": {k: str(v) for k, v in rfm.GROUPS.items()},
             "consent": {"sms": _("SMS"), "email": _("Email"), "any": _("SMS or email")}}
    labels = {"levels": _("Levels"), "stores": _("Registered at"), "segments": _("Segments"),
              "tags": _("Tags (any of)"), "birthday_month": _("Birthday month"),
              "last_visit_after": _("Visited on or after"), "last_visit_before": _("Last visit before"),
              "spend_min": _("Spent at least (12 months)"), "spend_max": _("Spent at most (12 months)"),
              "consent": _("Agreed to"), "rfm": _("RFM groups")}
    out = []
    for key, value in filters.items():
        values = value if isinstance(value, list) else [value]
        shown = [f"{v / 100:.2f}" if key.startswith("spend") else names.get(key, {}).get(v, str(v)) for v in values]
        out.append(f"{labels.get(key, key)}: {', '.join(shown)}")
    return out


@bp.get("/audiences")
@allow(MARKETERS)
def audiences_page():
    rows = audiences.list_audiences()
    return _render("campaigns/audiences.html", audiences=rows, counts={a.id: audiences.count(a.filters) for a in rows},
                   describe=_describe)


@bp.route("/audiences/new", methods=["GET", "POST"])
@allow(MARKETERS)
def new_audience():
    if request.method == "GET":
        return _audience_page(None, {}, {})
    return _audience_form()


@bp.route("/audiences/<int:audience_id>", methods=["GET", "POST"])
@allow(MARKETERS)
def audience(audience_id):
    item = audiences.get_audience(audience_id)
    if request.method == "GET":
        form = _AudienceForm(item)
        return _audience_page(item, form, {}, count=audiences.count(item.filters))
    return _audience_form(audience_id)


class _AudienceForm(dict):
    """A saved audience as its form reads it (getlist for the checkbox groups)."""

    def __init__(self, item):
        f = item.filters
        super().__init__(name=item.name, tags=", ".join(f.get("tags", ())), **{
            k: str(f[k] if not k.startswith("spend") else f"{f[k] / 100:.2f}") for k in (
                "birthday_month", "last_visit_after", "last_visit_before", "spend_min", "spend_max", "consent")
            if k in f})
        self.lists = {k: f.get(k, []) for k in ("levels", "segments", "stores", "rfm")}

    def getlist(self, key):
        return self.lists.get(key, [])


# Templates -------------------------------------------------------------------------------

@bp.route("/templates", methods=["GET", "POST"])
@allow(MARKETERS)
def templates_page():
    return _template_form(None)


@bp.route("/templates/<int:template_id>", methods=["GET", "POST"])
@allow(MARKETERS)
def template(template_id):
    return _template_form(template_id)


def _template_form(template_id):
    item = messages.get_template(template_id) if template_id else None
    form = request.form if request.method == "POST" else (
        {"name": item.name, "subject": item.subject, "body": item.body} if item else {})

    def page(errors):
        sample, shown = None, errors
        if item and not errors:
            context = messages.sample_context(True)
            try:
                sample = {"subject": messages.render(item.subject, context, field="subject"),
                          "body": messages.render(item.body, context, field="body")}
            except DomainError as exc:  # a saved template that no longer renders (or was written in the database)
                shown = errors_of(exc)
        return _render("campaigns/templates.html", 422 if errors else 200, templates=messages.list_templates(),
                       item=item, form=form, errors=shown, sample=sample, variables=messages.VARIABLES)
    if request.method == "GET":
        return page({})
    data = form_to_dict(request.form, drop_empty=False)
    saved, error_page = _save(lambda: messages.save(g.actor, TemplateSchema(partial=bool(template_id)).load(data),
                                                    template_id), page)
    if error_page:
        return error_page
    flash(_("Template %(name)s saved.", name=saved.name), "success")
    return redirect(url_for("marketing.template", template_id=saved.id))


# Outbox and calendar ---------------------------------------------------------------------

@bp.get("/outbox")
@allow(MARKETERS)
def outbox():
    args = {k: request.args.get(k) or None for k in ("status", "channel")}
    campaign_id = request.args.get("campaign_id", type=int)
    page = page_arg()
    rows, total = paginate(service.deliveries(campaign_id=campaign_id, **args), page, 50)
    return _render("campaigns/outbox.html", deliveries=rows, total=total, page=page, args=args,
                   campaign_id=campaign_id, totals=service.status_totals(campaign_id))


@bp.route("/holidays", methods=["GET", "POST"])
@allow(MARKETERS)
def calendar():
    year = request.args.get("year", type=int) or local_today().year
    form, errors = {}, {}
    if request.method == "POST":
        form = request.form
        added, page = _save(lambda: holidays.add(g.actor, CustomHolidaySchema().load(form_to_dict(form))),
                            lambda errs: errs)
        if page is None:
            flash(_("%(name)s added to the calendar.", name=added.name), "success")
            return redirect(url_for("marketing.calendar", year=added.date.year))
        errors = page
    try:
        days = holidays.for_year(year)
    except DomainError as exc:
        flash(exc.message, "error")
        year, days = local_today().year, holidays.for_year(local_today().year)
    return _render("campaigns/holidays.html", 422 if errors else 200, year=year, days=days, form=form,
                   errors=errors)


@bp.post("/holidays/<int:holiday_id>/delete")
@allow(MARKETERS)
def delete_holiday(holiday_id):
    _ok, page = _save(lambda: holidays.remove(g.actor, holiday_id) or True, lambda errors: errors)
    flash(_("Holiday removed.") if page is None else page.get("_form", ""), "success" if page is None else "error")
    return redirect(url_for("marketing.calendar", year=request.form.get("year", type=int)))
