"""Manager UI: the report pages (each also as CSV and Excel), plans, the competitive set and imports.

Every page reads its query with the API's schema, so a bad period shows the same message,
beside its field, and `format=csv|xlsx` downloads what the page shows."""
import re
from datetime import date

from flask import Blueprint, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from marshmallow import ValidationError

from ..auth.access import allow
from ..auth.roles import ADMIN, MANAGERS, MARKETING
from ..core.bounds import MAX_ID
from ..core.forms import commit_or_errors, errors_of, form_to_dict
from ..core.money import parse_amount
from ..core.segments import SEGMENTS
from ..core.timeutil import local_today
from ..errors import DomainError, Invalid
from ..stores import service as stores
from . import competitors, exports, import_jobs, monthly, rankings, rfm, segments
from .figures import FIRST_DAY, money, period
from .kpis import BILL_COLUMNS, bill_rows, member_kpis
from .liability import liability_figures
from .prepaid import prepaid_report, report_table
from .rooms import record_room_count, room_kpis
from .schemas import (
    CompetitorMonthSchema,
    CompetitorSchema,
    PeriodQuery,
    PrepaidQuery,
    RankingQuery,
    RoomCountSchema,
    YearQuery,
)
from .targets import FIELDS as TARGET_FIELDS
from .targets import beside_actuals, month_of, save_targets, whole_month, year_targets

bp = Blueprint("reports", __name__, url_prefix="/reports")

LABELS = {
    "members_total": _l("Members"), "new_members": _l("New members"), "member_growth_rate": _l("Member growth %"),
    "checks": _l("Bills"), "member_checks": _l("Member bills"), "card_issue_rate": _l("Walk-in card-issue rate %"),
    "member_check_share": _l("Member share of bills %"), "member_revenue_share": _l("Member share of revenue %"),
    "revenue": _l("Revenue"), "covers": _l("Covers"), "spend_per_head": _l("Spend per head"),
    "spend_per_head_members": _l("Spend per head, members"),
    "spend_per_head_non_members": _l("Spend per head, others"), "topup_principal": _l("Top-ups"),
    "topup_bonus": _l("Top-up bonus given"), "stored_value_growth": _l("Top-up growth %"),
    "wallet_outstanding_principal": _l("Stored value owed: principal"),
    "wallet_outstanding_bonus": _l("Stored value owed: bonus"), "points_earned": _l("Points earned"),
    "points_redeemed": _l("Points redeemed"), "points_expired": _l("Points expired"),
    "points_outstanding": _l("Points outstanding"),
    "available_rooms": _l("Available rooms"), "rooms_sold": _l("Rooms sold"),
    "complimentary_rooms": _l("Complimentary rooms"), "day_use_rooms": _l("Day-use rooms"),
    "room_revenue": _l("Room revenue"), "occupancy": _l("Occupancy %"), "adr": _l("ADR"), "revpar": _l("RevPAR"),
    "room_nights": _l("Room nights"), "share": _l("Share of nights %"), "last_year_actual": _l("Last year"),
    "plan": _l("Plan"), "actual": _l("Actual"), "rank": _l("Rank"), "name": _l("Company or member"),
    "kind": _l("Kind"), "nights": _l("Room nights"), "average_rate": _l("Average rate"),
    "sales_rep": _l("Sales rep"), "last_year_rank": _l("Last year's rank"), "month": _l("Month"),
    "segment": _l("Segment"), "this_year": _l("This year"), "last_year": _l("Last year"),
    "difference": _l("Difference"), "hotel": _l("Hotel"), "fair_share": _l("Fair share %"),
    "actual_share": _l("Actual share %"), "revenue_share": _l("Revenue share %"), "row": _l("Row"),
    "total": _l("Total"), "repeat_guests": _l("Repeat guests"), "company": _l("Company"), "member": _l("Member"),
    "group": _l("Group"), "members": _l("Members"), "member_id": _l("Member no."), "last_bill": _l("Last bill"),
    "frequency": _l("Bills (12 months)"), "monetary": _l("Spend (12 months)"), "r": "R", "f": "F", "m": "M",
    "store": _l("Store"), "closed_at": _l("Closed at"), "amount": _l("Amount"), "joined_at_visit": _l("Joined here"),
    "rooms_occupied": _l("Rooms occupied (sold + complimentary)"), "field": _l("Figure"), "value": _l("Value"),
    "wallet_principal": _l("Stored value: principal"), "wallet_bonus": _l("Stored value: bonus"),
    "points_value": _l("Points outstanding: value"), "coupons_face_value": _l("Unused coupons (face value)"),
}


def label(key: str) -> str:
    """"this_year.nights" -> "This year · Room nights"; segments and RFM groups by their names."""
    names = {**LABELS, **SEGMENTS, **rfm.GROUPS}
    return " · ".join(str(names.get(part, part)) for part in str(key).split("."))


def _args(schema):
    try:
        return schema.load(request.args), {}
    except ValidationError as exc:
        return None, errors_of(exc)


def _this_month(endpoint):
    """Pages with a period open on this month so far (keeping the store asked for)."""
    today = local_today()
    return redirect(url_for(endpoint, **{**request.args.to_dict(), "from": today.replace(day=1).isoformat(),
                                         "to": today.isoformat()}))


def _hotels():
    return [(s.code, s.name) for s in stores.list_stores() if s.kind == "hotel"]


def _page(template, args, errors, header=(), rows=(), name="report", **context):
    """The page, or its table as a file when `format` is asked for (and nothing is wrong)."""
    if args and args.get("format") and not errors:
        return exports.download(args["format"], name, [label(h) for h in header], rows)
    beside = {"store_code", "from", "to", "year", "_details"} | (  # the fields the page's form shows
        {"segment", "by"} if context.get("ranking_form") else {"month"})
    for key, message in errors.items():  # e.g. format=pdf, limit=2147483648: no field to show it beside
        if key not in beside and not (key == "_form" and template == "reports/table.html"):
            flash(message, "error")
    return render_template(template, form=request.args, errors=errors, header=list(header), rows=list(rows),
                           label=label, store_options=[(s.code, s.name) for s in stores.list_stores()],
                           hotel_options=_hotels(), segment_options=list(SEGMENTS.items()), **context), \
        (422 if errors else 200)


def _period_figures(compute):
    """(query args, errors, figures) of a page over a period (KPIs, rooms)."""
    args, errors = _args(PeriodQuery())
    figures = {}
    if not errors:
        try:
            figures = compute(args["store_code"], period(args["from_"], args["to"]))
        except DomainError as exc:
            errors = errors_of(exc)
    return args, errors, figures


def _figure_rows(args, figures):
    """Each figure's name in the page's language with its value: empty for a missing rate in a
    download, — on the page."""
    if args and args.get("format"):
        return list(exports.key_value_rows(figures, label))
    return [(label(k), "—" if v is None else v) for k, v in figures.items()]


@bp.get("/")
@allow(MANAGERS)
def kpis():
    if "from" not in request.args:
        return _this_month("reports.kpis")
    args, errors, figures = _period_figures(member_kpis)
    downloading = bool(args and args.get("format"))
    trend = _trend(args["store_code"], args["to"]) if figures and not downloading else []  # charts: page only
    month = month_of(args["from_"], args["to"]) if figures and args["store_code"] else None
    beside = beside_actuals(args["store_code"], *month) if month and not downloading else None
    # part of a past month: the targets' actual figures (the whole month's) differ from those above
    part = bool(beside) and not whole_month(args["from_"], args["to"]) and args["to"] < local_today()
    return _page("reports/kpis.html", args, errors, ("field", "value"), _figure_rows(args, figures), name="kpis",
                 trend=trend, targets=beside, target_labels=TARGET_LABELS, targets_part_of_month=part)


def _trend(store_code, last_day: date):
    """The last 12 months' key figures, for the charts (from January 2000 on: reports begin there)."""
    out = []
    y, m = last_day.year, last_day.month
    for _i in range(12):
        if y < FIRST_DAY.year:
            break
        p = segments.report_period(y, m)
        k = member_kpis(store_code, p)
        out.append({"month": f"{y}-{m:02d}", **k})
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return list(reversed(out))


@bp.get("/bills")
@allow(MANAGERS)
def bills():
    """Every bill of the period as a file (streamed)."""
    args, errors = _args(PeriodQuery())
    if errors:
        flash(next(iter(errors.values())), "error")
        return redirect(url_for("reports.kpis"))
    try:  # bill_rows checks the store and period before it returns its rows: a wrong one fails here
        return exports.download(args["format"] or "csv", "bills", [label(c) for c in BILL_COLUMNS],
                                bill_rows(args["store_code"], period(args["from_"], args["to"]),
                                          yes_no=(_("Yes"), _("No"))))
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("reports.kpis"))


@bp.get("/liability/download")
@allow(MANAGERS)
def liability_download():
    """The liability page (/reports/liability) as CSV or Excel: each figure by its name."""
    fmt = request.args.get("format", "csv")
    if fmt not in exports.FORMATS:
        flash(_("Choose CSV or Excel."), "error")
        return redirect(url_for("wallet.liability"))
    return exports.download(fmt, "liability", [label("field"), label("value")],
                            exports.key_value_rows(liability_figures(), label))


@bp.route("/rooms", methods=["GET", "POST"])
@allow(MANAGERS)
def rooms():
    if "from" not in request.args:
        return _this_month("reports.rooms")
    count_errors = {}
    if request.method == "POST":  # record a change of a hotel's room count
        def record():
            data = RoomCountSchema().load(form_to_dict(request.form))
            return record_room_count(g.actor, data["store_code"], data["effective_from"], data["rooms"],
                                     data["reason"])
        _saved, count_errors = commit_or_errors(record)
        if not count_errors:
            flash(_("Room count recorded."), "success")
            return redirect(request.full_path)
    args, errors, figures = _period_figures(room_kpis)
    page = _page("reports/table.html", args, errors, ("field", "value"), _figure_rows(args, figures), name="rooms",
                 title=_("Room KPIs"), period_page=True, room_count_form=True, count_errors=count_errors,
                 count_form=request.form if count_errors else {})
    return (page[0], 422) if count_errors else page


def _year_page(endpoint, compute, name, title, **extra):
    if "year" not in request.args:
        return redirect(url_for(endpoint, **{**request.args.to_dict(), "year": local_today().year}))
    args, errors = _args(YearQuery())
    header, rows, result = (), [], None
    if not errors:
        try:
            result = compute(args)
            header, rows = exports.table(result["table"])
        except DomainError as exc:
            errors = errors_of(exc)
    return _page("reports/table.html", args, errors, header, rows, name=name, title=title, result=result, **extra)


@bp.get("/segments")
@allow(MANAGERS)
def segment_table():
    def compute(args):
        t = segments.segment_table(args["store_code"], args["year"], args["month"])
        return {"table": [{"row": label(r["key"]), **r["values"]} for r in t["rows"]], "segments": t}
    return _year_page("reports.segment_table", compute, "segments", _("Segment revenue"), plans_link=True)


@bp.get("/monthly")
@allow(MANAGERS)
def monthly_table():
    def compute(args):
        rows = monthly.monthly_comparison(args["store_code"], args["year"])
        nights = {year: [sum(r[year]["nights"] for r in rows if r["month"] == m) for m in range(1, 13)]
                  for year in ("this_year", "last_year")}
        return {"table": [{**r, "segment": label(r["segment"])} for r in rows], "nights": nights}
    return _year_page("reports.monthly_table", compute, "monthly", _("Month by month, this year and last"))


@bp.get("/rankings")
@allow(MANAGERS)
def ranking_table():
    if "year" not in request.args or "segment" not in request.args:
        return redirect(url_for("reports.ranking_table", **{"year": local_today().year, "segment": "business_fit",
                                                            "by": "revenue", **request.args.to_dict()}))
    args, errors = _args(RankingQuery())
    header, rows = (), []
    if not errors:
        try:
            result = rankings.rankings(args["store_code"], args["year"], args["segment"], args["by"], args["limit"])
            header, rows = exports.table([{**r, "kind": label(r["kind"])} for r in result])
        except DomainError as exc:
            errors = errors_of(exc)
    return _page("reports/table.html", args, errors, header, rows, name="rankings", title=_("Top 30"),
                 ranking_form=True)


@bp.route("/competitors", methods=["GET", "POST"])
@allow(MANAGERS)
def competitor_table():
    hotels = _hotels()
    if "year" not in request.args and hotels:
        return redirect(url_for("reports.competitor_table", year=local_today().year, month=local_today().month,
                                store_code=hotels[0][0]))
    add_errors = {}
    if request.method == "POST":
        add_errors = _competitor_post()
        if not add_errors:
            return redirect(request.full_path)
    args, errors = _args(YearQuery())
    header, rows, result, rivals = (), [], None, []
    if not errors and args.get("store_code"):
        try:
            result = competitors.competitor_table(args["store_code"], args["year"], args["month"])
            header, rows = exports.table(result["rows"] + [result["total"]])
            rivals = competitors.competitors_of(args["store_code"])
        except DomainError as exc:
            errors = errors_of(exc)
    page = _page("reports/competitors.html", args, errors, header, rows, name="competitor-share", result=result,
                 rivals=rivals, rival_options=[(str(c.id), c.name) for c in rivals], add_errors=add_errors,
                 post_form=request.form if add_errors else {})
    return (page[0], 422) if add_errors else page


def _competitor_post() -> dict:
    form = form_to_dict(request.form)

    def save():
        if form.get("op") == "month":
            chosen = form.get("competitor_id") or ""  # an option's value: ASCII digits within an id's range
            if not (chosen.isascii() and chosen.isdigit() and int(chosen) <= MAX_ID):
                raise Invalid(_("Choose the competitor."), field="_form")
            data = CompetitorMonthSchema().load({k: form.get(k) for k in (
                "year", "month", "available_rooms", "rooms_sold", "room_revenue")})
            competitors.set_month(g.actor, int(form["competitor_id"]), data.pop("year"), data.pop("month"), **data)
        else:
            data = CompetitorSchema().load({k: form.get(k) for k in ("store_code", "name", "rooms")})
            competitors.add_competitor(g.actor, data["store_code"], data["name"], data["rooms"])
    _saved, errors = commit_or_errors(save)
    if not errors:
        flash(_("Saved."), "success")
    return errors


@bp.route("/plans", methods=["GET", "POST"])
@allow(MANAGERS)
def plans():
    hotels = _hotels()
    form = request.form if request.method == "POST" else {
        "store_code": request.args.get("store_code") or (hotels[0][0] if hotels else ""),
        "year": request.args.get("year") or str(local_today().year), "month": request.args.get("month", "")}
    errors = {}
    if request.method == "GET" and form["store_code"]:
        form = {**form, **segments.plan_form(form["store_code"], form["year"], form["month"])}
    if request.method == "POST":
        year, month, lines, errors = _plan_form_data(form)
        if not errors:
            _saved, errors = commit_or_errors(
                lambda: segments.save_plans(g.actor, form.get("store_code", ""), year, month, lines))
        if not errors:
            flash(_("Plan saved."), "success")
            return redirect(url_for("reports.segment_table", store_code=form["store_code"], year=year,
                                    month=month or ""))
    return render_template("reports/plans.html", form=form, errors=errors, hotel_options=hotels,
                           keys=segments.PLAN_KEYS, label=label), (422 if errors else 200)


TARGET_LABELS = {
    "new_members": _l("New members"), "card_issue_rate": _l("Walk-in card-issue rate %"),
    "member_share": _l("Member share of bills %"), "spend_per_head": _l("Spend per head"),
    "stored_value_growth": _l("Stored-value growth %"),
    "stored_value_growth_month_on_month": _l("Stored-value growth %, month on month (vs last month)"),
    "stored_value_growth_year_on_year": _l("Stored-value growth %, year on year (同比, vs the same month last year)"),
}


@bp.route("/targets", methods=["GET", "POST"])
@allow(MANAGERS)
def kpi_targets():
    """A store's monthly KPI targets for a year: 12 months × 5 targets, each error beside its cell."""
    options = [(s.code, s.name) for s in stores.list_stores()]
    source = request.form if request.method == "POST" else request.args
    form = {"store_code": source.get("store_code") or (options[0][0] if options else ""),
            "year": source.get("year") or str(local_today().year)}
    errors = {}
    year = int(form["year"]) if _WHOLE.match(form["year"]) else None
    if year is None or (request.method == "POST" and not (source.get("year") or "").strip()):
        errors["year"] = _("Give a year such as 2026.")
    if request.method == "POST" and not (source.get("store_code") or "").strip():  # never the first store by default
        errors["store_code"] = _("Choose the store.")
    if request.method == "POST" and not errors:
        sent = []

        def save():
            sent[:] = _changed_months()
            return save_targets(g.actor, form["store_code"], year, sent, partial=True) if sent else 0
        _saved, errors = commit_or_errors(save)
        errors = {_target_cell(k, sent): v for k, v in errors.items()}
        if not errors:
            flash(_("Targets saved."), "success")
            return redirect(url_for("reports.kpi_targets", store_code=form["store_code"], year=year))
        form = {**form, **request.form.to_dict()}
    elif request.method == "POST":  # no store or year: the cells keep what was typed
        form = {**form, **request.form.to_dict()}
    elif year is not None and form["store_code"]:
        try:
            for line in year_targets(form["store_code"], year):
                form.update({f"{key}_{line['month']}": "" if line[key] is None else str(line[key])
                             for key, _kind in TARGET_FIELDS})
            form.update({f"was_{k}": v for k, v in list(form.items()) if k not in ("store_code", "year")})
        except DomainError as exc:
            errors = errors_of(exc)
    errors.pop("_details", None)
    return render_template("reports/targets.html", form=form, errors=errors, store_options=options,
                           fields=TARGET_FIELDS, labels=TARGET_LABELS, months=range(1, 13)), \
        (422 if errors else 200)


def _changed_months() -> list[dict]:
    """The months of the form in which the manager changed a cell, with only the cells changed:
    the page sends each cell as it showed it (`was_<cell>`), and the save writes just those, so two
    managers on the same year (or month), one changing March's rate and one April's, both keep
    their targets. A form without `was_` (an older page) sends every cell as typed."""
    months = []
    for m in range(1, 13):
        line = {"month": m}
        for key, _kind in TARGET_FIELDS:
            name, typed = f"{key}_{m}", request.form.get(f"{key}_{m}", "").strip()
            was = request.form.get(f"was_{name}")
            if was is None or typed != was.strip():
                line[key] = typed
        if len(line) > 1:
            months.append(line)
    return months


def _target_cell(field: str, sent: list[dict]) -> str:
    """"months.2.card_issue_rate" (the third month sent, say June) -> the form's cell "card_issue_rate_6"."""
    parts = field.split(".")
    if len(parts) == 3 and parts[0] == "months" and parts[1].isdigit() and int(parts[1]) < len(sent):
        return f"{parts[2]}_{sent[int(parts[1])]['month']}"
    return field


def _plan_form_data(form):
    """(year, month, {segment: (nights, adr fen)}, errors) from the plan form; rows left empty are skipped."""
    errors, lines = {}, {}
    year = int(form["year"]) if _WHOLE.match(form.get("year", "")) else None
    month = int(form["month"]) if _WHOLE.match(form.get("month", "")) else None
    if year is None:
        errors["year"] = _("Give a year such as 2026.")
    if form.get("month") and month is None:
        errors["month"] = _("A month is 1 to 12.")
    for key in segments.PLAN_KEYS:
        nights, adr = form.get(f"nights_{key}", "").strip(), form.get(f"adr_{key}", "").strip()
        if not (nights or adr):
            continue
        if not _WHOLE.match(nights):
            errors[f"nights_{key}"] = _("Room nights are a whole number.")
            continue
        try:
            lines[key] = (int(nights), parse_amount(adr or "0"))
        except ValueError as exc:
            errors[f"adr_{key}"] = str(exc)
    return year, month, lines, errors


_WHOLE = re.compile(r"^[0-9]{1,7}$")


@bp.get("/rfm")
@allow(MANAGERS | {MARKETING})
def rfm_page():
    group, fmt, unknown = request.args.get("group") or None, request.args.get("format"), False
    if group and group not in rfm.GROUPS:  # the overview, with a message: never a file of something else
        flash(_("Unknown RFM group."), "error")
        group, fmt, unknown = None, None, True
    counts = rfm.group_counts()
    members = rfm.top(group, limit=200) if group else []
    if fmt in exports.FORMATS:
        if group:
            return exports.download(fmt, f"rfm-{group}", [label(h) for h in (
                "member_id", "name", "last_bill", "frequency", "monetary", "r", "f", "m")],
                ([r.id, r.name, r.last_bill, r.frequency, money(r.monetary), r.r, r.f, r.m] for r in members))
        return exports.download(fmt, "rfm", [label("group"), label("members")],
                                ([label(k), n] for k, n in counts.items()))
    return render_template("reports/rfm.html", counts=counts, group=group, members=members, label=label), \
        (422 if unknown else 200)


@bp.url_value_preprocessor
def _import_body_limit(endpoint, _values):
    """A manager's upload may be larger than other bodies (IMPORT_MAX_BYTES). Set before any
    before_request hook reads the form (the CSRF check does), and only for someone who may import."""
    if endpoint == "reports.import_page" and request.method == "POST" and current_user.is_authenticated \
            and current_user.role in MANAGERS | {ADMIN}:
        request.max_content_length = current_app.config["IMPORT_MAX_BYTES"]


@bp.route("/imports", methods=["GET", "POST"])
@allow(MANAGERS)
def import_page():
    """Upload a file (its header is checked at once); the job then runs in the background and
    its page shows the progress."""
    errors = {}
    if request.method == "POST":
        kind, upload = request.form.get("kind"), request.files.get("file")
        if kind not in import_jobs.KINDS:
            errors["kind"] = _("Choose checks, stays or members.")
        elif upload is None or not upload.filename:
            errors["file"] = _("Choose a CSV file.")
        else:
            raw = upload.read()
            job_id, errors = commit_or_errors(lambda: import_jobs.create(
                g.actor, kind, raw, filename=upload.filename, skip_bad_rows="skip_bad_rows" in request.form,
                dry_run="dry_run" in request.form).id)
            if not errors:
                import_jobs.start(job_id)
                return redirect(url_for("reports.import_job", job_id=job_id), 303)
    return render_template("reports/imports.html", errors=errors, form=request.form, jobs=_job_rows(
        import_jobs.recent()), max_mb=current_app.config["IMPORT_MAX_BYTES"] // (1024 * 1024),
        **_job_context()), (422 if errors else 200)


def _job_rows(jobs):
    return [{**import_jobs.status(j), "progress": import_jobs.progress(j)} for j in jobs]


def _job_context():
    return {"statuses": IMPORT_STATUSES, "summary": import_summary, "kinds": IMPORT_KINDS}


@bp.get("/imports/<int:job_id>")
@allow(MANAGERS)
def import_job(job_id):
    """One import: its progress bar while it runs, then what it did and every bad line it kept."""
    job = import_jobs.get(job_id)
    return render_template("reports/import_job.html", job=_job_rows([job])[0], **_job_context())


@bp.get("/imports/<int:job_id>/progress")
@allow(MANAGERS)
def import_progress(job_id):
    """The figures static/imports.js refreshes the progress bar with (polled while the job runs)."""
    job = import_jobs.get(job_id)
    value, maximum = import_jobs.progress(job)
    return jsonify({"status": job.status, "status_label": str(IMPORT_STATUSES[job.status]),
                    "value": value, "max": maximum, "summary": import_summary(import_jobs.status(job))})


IMPORT_KINDS = {"checks": _l("Restaurant checks"), "stays": _l("Hotel stays"), "members": _l("Members (legacy system)")}
IMPORT_STATUSES = {"queued": _l("Waiting"), "running": _l("Running"), "done": _l("Done"), "failed": _l("Failed")}


def import_summary(job: dict) -> str:
    """One line saying where a job is, in the page's language."""
    if job.get("dry_run") and job["status"] == "done":
        return ngettext("Dry run, nothing saved: %(checked)s rows checked, %(num)d with a problem; %(new)s would be "
                        "new, %(skipped)s skipped.",
                        "Dry run, nothing saved: %(checked)s rows checked, %(num)d with problems; %(new)s would be "
                        "new, %(skipped)s skipped.", job["error_count"], checked=f"{job['checked']:,}",
                        new=f"{job['imported']:,}", skipped=f"{job['skipped']:,}")
    if job["status"] == "running" and job["phase"] == "checking":
        return _("Checking rows: %(checked)s of %(total)s.", checked=f"{job['checked']:,}", total=f"{job['total']:,}")
    if job["status"] in ("running", "done"):
        return _("%(done)s of %(total)s rows: %(new)s new, %(updated)s updated, %(skipped)s skipped.",
                 done=f"{job['done']:,}", total=f"{job['total']:,}", new=f"{job['imported']:,}",
                 updated=f"{job['updated']:,}", skipped=f"{job['skipped']:,}")
    if job["status"] == "failed" and job["failure"] == "bad_rows":
        return ngettext("Nothing was imported: %(num)d row has a problem.",
                        "Nothing was imported: %(num)d rows have problems.", job["error_count"])
    if job["status"] == "failed":
        return _("The import stopped repeatedly and was given up; send the file again.")
    return _("%(total)s rows, waiting to start.", total=f"{job['total']:,}")


LABELS.update({
    "quarter": _l("Quarter"), "sold": _l("Sold (principal)"), "bonus_given": _l("Bonus given"),
    "spent": _l("Spent (principal, net of voids)"), "refunded": _l("Refunded (principal)"),
    "opening": _l("Brought in (legacy)"), "outstanding": _l("Outstanding (principal)"),
    "bonus_outstanding": _l("Outstanding (bonus)"), "cards": _l("Cards holding a balance"),
})


@bp.get("/prepaid")
@allow(MANAGERS)
def prepaid():
    """The prepaid-card report (单用途商业预付卡) of a year, per quarter and store (reports/prepaid.py)."""
    if "year" not in request.args:
        return redirect(url_for("reports.prepaid", **{**request.args.to_dict(), "year": local_today().year}))
    args, errors = _args(PrepaidQuery())
    header, rows = (), []
    if not errors:
        try:
            report = prepaid_report(args["year"], args["store_code"])
            header, rows = report_table(report, lambda y, q: _("%(year)d Q%(quarter)d", year=y, quarter=q),
                                        _("Chain total"))
        except DomainError as exc:
            errors = errors_of(exc)
    return _page("reports/prepaid.html", args, errors, header, rows, name="prepaid", title=_("Prepaid cards"))
