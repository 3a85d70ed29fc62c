"""Front-desk UI: find, register (with card issue in the same screen), view, edit members."""
from datetime import date

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from ..auth.access import allow
from ..auth.roles import MANAGERS, MEMBER_DESK, MEMBER_LOOKUP
from ..campaigns import service as campaigns
from ..campaigns.models import CHANNEL_LABELS, DELIVERY_LABELS
from ..cards import phone
from ..cards import service as cards
from ..cards.models import PAYMENT_LABELS, PAYMENT_METHODS
from ..checkout import service as checkout
from ..core import reasons
from ..core.forms import commit_or_errors, errors_of, form_to_dict
from ..core.paging import page_arg, paginate
from ..core.phones import mobile_for_viewer, sees_full_mobiles
from ..core.segments import SEGMENTS
from ..coupons import service as coupons
from ..errors import DomainError, rollback_for
from ..notifications import service as notifications
from ..points import service as points
from ..points.schemas import AdjustmentSchema
from ..programme import service as programme
from ..stores import service as stores
from ..wallet import service as wallet
from . import duplicates, history, history_labels, levels, merge, notices, referrals, search_limit, service
from .models import LEVEL_CHANGE_LABELS
from .schemas import MemberCreateSchema, MemberUpdateSchema, ReferralReportQuery

bp = Blueprint("members", __name__)
from . import merge_views  # noqa: E402,F401 — merging duplicates (members/merge_views.py), on this blueprint

_LAST_FEE_METHOD = "card_fee_payment_method"

_FORM_SHAPE = dict(lists=("tags",), nested_checkboxes={"marketing_consent": {"sms": "consent_sms",
                                                                             "email": "consent_email"}})
_CONSENT_BOXES = {"sms": "consent_sms", "email": "consent_email", "service": "service_consent"}


def _untouched_consent_left_alone(data: dict, form) -> dict:
    """Drop from an edit the consents whose box the user left as the form showed it (the hidden
    shown_* fields): a form opened before the member withdrew one (on their page, by an SMS
    reply) must not grant it again when it is saved for a name fix."""
    consent = data.get("marketing_consent") or {}
    for channel, box in _CONSENT_BOXES.items():
        shown = form.get(f"shown_{box}")
        data.pop(f"shown_{box}", None)
        ticked = box in form
        if shown in ("0", "1") and ticked == (shown == "1"):
            consent.pop(channel, None)
            if channel == "service":
                data.pop("service_consent", None)
    if "marketing_consent" in data:
        data["marketing_consent"] = consent
    return data


def _preferences_of(form, data: dict) -> dict:
    """The preferences box holds one item a line (an item may have commas: "feather-free, firm pillow")."""
    if "preferences" in form:
        data["preferences"] = [line.strip() for line in form["preferences"].splitlines() if line.strip()]
    return data


def _choices():
    return {"store_options": [(s.code, s.name) for s in stores.list_stores() if s.active],
            "segments": SEGMENTS, "payment_options": [(p, PAYMENT_LABELS[p]) for p in PAYMENT_METHODS],
            "card_fee": programme.get("card_fee"), "replacement_fee": programme.get("replacement_fee"),
            "mobile_for_viewer": mobile_for_viewer}


@bp.get("/")
@allow(MEMBER_LOOKUP)
def search():
    q = request.args.get("q", "").strip()
    page = page_arg()
    members, total, refused = [], 0, None
    if q:
        try:
            search_limit.spend(g.actor, q, page, 20)
        except search_limit.SearchRateLimited as exc:
            rollback_for(exc)  # keeps the audit row of the first refusal
            refused = exc.message
        else:
            members, total = paginate(service.search(q, mobile_prefixes=sees_full_mobiles()), page, 20)
    if total == 1 and service.is_exact_query(q):  # a scanned card or a full mobile: go straight there
        return redirect(url_for("members.detail", member_id=members[0].id))
    if not members and not refused and (survivor := merge.survivor_for_old_mobile(q)) is not None:
        # The mobile of a duplicate merged away (freed then): the guest is the survivor, not a new member.
        flash(_("No member holds that mobile now: it was the mobile of a duplicate merged into this member."),
              "info")
        return redirect(url_for("members.detail", member_id=survivor.id))
    mistyped = not members and not refused and cards.mistyped_card_no(q)  # a typo, not "no member"
    return render_template("members/search.html", q=q, members=members, total=total, page=page,
                           refused=refused, mistyped=mistyped, check_digit_message=cards.check_digit_message(),
                           mobile_for_viewer=mobile_for_viewer,
                           look_alike=duplicates.among(members)), (429 if refused else 200)


@bp.route("/members/new", methods=["GET", "POST"])
@allow(MEMBER_DESK)
def register():
    form, errors = {}, {}
    if request.method == "POST":
        form = request.form
        data = _preferences_of(form, form_to_dict(form, checkboxes=("issue_card", "service_consent"), **_FORM_SHAPE))
        issue_card = data.pop("issue_card")
        payment_method = data.pop("payment_method", "")
        def save():  # the member and the card fee together, once per form
            member = service.register(g.actor, MemberCreateSchema().load(data))
            if issue_card:
                cards.issue(g.actor, member.id, store_code=data["store_code"],
                            fee_paid=programme.get("card_fee"), payment_method=payment_method)
            return {"member_id": member.id}
        done, errors = commit_or_errors(save, once=form.get("form_token", ""))
        if not errors:
            if issue_card and payment_method in PAYMENT_METHODS:
                session[_LAST_FEE_METHOD] = payment_method  # this desk's usual way of taking the fee
            flash(_("Member registered.") + (" " + _("Card issued.") if issue_card else ""), "success")
            return redirect(url_for("members.detail", member_id=done["member_id"], new=1))
    default_store = g.actor.store_id and stores.get_store(g.actor.store_id).code
    return render_template("members/form.html", form=form, errors=errors, creating=True,
                           default_store=default_store, default_payment=session.get(_LAST_FEE_METHOD, "wechat"),
                           field_labels=_field_labels(), **_choices()), (422 if errors else 200)


def _field_labels() -> dict:
    """What the error summary calls each field (the form's own labels)."""
    return {"name": _("Name"), "mobile": _("Mobile"), "birthday": _("Birthday"), "gender": _("Gender"),
            "email": _("Email"), "segment": _("Guest segment"), "company": _("Company"), "sales_rep": _("Sales rep"),
            "store_code": _("Registering store"), "tags": _("Tags"), "notes": _("Notes"),
            "marketing_consent": _("Marketing consent"), "service_consent": _("Account messages"),
            "preferences": _("Preferences"),
            "referral_code": _("Referred by (referral code)"), "payment_method": _("Fee paid by"),
            "fee_paid": _("Card fee")}


_HISTORY_FIRST_DAY, _HISTORY_LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)


def _history_filters() -> tuple[history.Filters, dict]:
    """The history filters from the query string, and {field: message} for those that are not valid."""
    errors, args = {}, request.args
    kind = args.get("kind") or None
    if kind not in (None, *history.KINDS):
        errors["kind"], kind = _("Choose a kind from the list."), None
    dates = {}
    for name in ("from", "to"):
        value = args.get(name, "").strip()
        try:
            dates[name] = date.fromisoformat(value) if value else None
        except ValueError:
            errors[name], dates[name] = _("Give a date as YYYY-MM-DD."), None
        if dates[name] and not _HISTORY_FIRST_DAY <= dates[name] <= _HISTORY_LAST_DAY:  # 0001-01-01 is year 0 in UTC
            errors[name], dates[name] = _("Give a date between %(first)s and %(last)s.", first=_HISTORY_FIRST_DAY,
                                          last=_HISTORY_LAST_DAY), None
    if dates["from"] and dates["to"] and dates["from"] > dates["to"]:
        errors["to"] = _("The end date is before the start date.")
    tz = stores.get_store(g.actor.store_id).timezone if g.actor.store_id else None
    return history.Filters(kind=kind, date_from=dates["from"], date_to=dates["to"], tz=tz), errors


def _detail_page(member, *, adjust_form=None, adjust_errors=None, status=200):
    recent, _total = paginate(checkout.list_checkouts(member_id=member.id), 1, 10)
    messages, _total = paginate(campaigns.deliveries(member_id=member.id), 1, 5)  # "did you get our SMS?"
    filters, filter_errors = _history_filters()
    history_page = page_arg()  # past the end: links back
    events, events_total = history.page(member.id, filters, history_page)
    return render_template("members/detail.html", member=member, cards=cards.cards_of(member.id),
                           messages=messages, delivery_labels=DELIVERY_LABELS, channel_labels=CHANNEL_LABELS,
                           just_registered=bool(request.args.get("new")), errors={},
                           points_available=points.available(member.id), wallet=wallet.balances(member.id),
                           pin=wallet.pin_state(member.id), coupons=coupons.coupons_of(member.id),
                           draws_left=coupons.tickets_left(member.id), recent_bills=recent,
                           level_history=levels.level_history(member.id), level_reasons=LEVEL_CHANGE_LABELS,
                           notices=notices.take(member.id), events=events, events_total=events_total,
                           history_page=history_page, history_per_page=history.PER_PAGE, filters=filters,
                           filter_errors=filter_errors, history_names=history.names(events),
                           history_labels=history_labels, adjust_form=adjust_form or {},
                           adjust_errors=adjust_errors or {}, referral=referrals.summary(member),
                           has_phone_link=phone.has_link(member.id),
                           service_notifications=notifications.for_member(member.id, limit=10),
                           referral_notes=referrals.history_notes(events), **_choices()), status


@bp.get("/members/<int:member_id>")
@allow(MEMBER_LOOKUP)
def detail(member_id):
    return _detail_page(service.get_member(member_id))


@bp.post("/members/<int:member_id>/points/adjust")
@allow(MANAGERS)
def adjust_points(member_id):
    """A manager's points correction with its reason (the API's adjustment, from the member page).
    A bad entry comes back on the page with the message beside its field and what was typed."""
    member = service.get_member(member_id)
    form = request.form

    def save():
        reasons.required(form.get("reason"), _("Give a reason for the adjustment."))  # before the length check
        data = AdjustmentSchema().load(form_to_dict(form, drop_empty=False) | {
            "points": form.get("points", "").strip().lstrip("+").replace("−", "-")})
        store = stores.get_by_code(data["store_code"], active_only=True) if data.get("store_code") else None
        try:
            entry = points.adjust(g.actor, member.id, data["points"], data["reason"], store=store)
        except points.InsufficientPoints as exc:
            exc.field = "points"  # below the balance: said beside the points box
            raise
        return {"points": entry.points}
    done, errors = commit_or_errors(save, once=form.get("form_token", ""))
    if errors:
        return _detail_page(member, adjust_form=form, adjust_errors=errors, status=422)
    message = (_("Points adjusted by %(points)+d.", points=done["points"]) if not done.get("replayed") else
               _("This form had already been sent; nothing was done twice."))
    notices.notify(member.id, "wallet", message, "info" if done.get("replayed") else "success")
    return redirect(url_for("members.detail", member_id=member.id, _anchor="wallet"))


@bp.route("/members/<int:member_id>/edit", methods=["GET", "POST"])
@allow(MEMBER_DESK)
def edit(member_id):
    member = service.get_member(member_id)
    if member.anonymised_at is not None:  # nothing left to edit (PIPL erasure); the API says 409 member_anonymised
        flash(_("This member was anonymised; their record can no longer be changed."), "error")
        return redirect(url_for("members.detail", member_id=member.id))
    errors = {}
    if request.method == "POST":
        data = _untouched_consent_left_alone(
            form_to_dict(request.form, drop_empty=False, checkboxes=("service_consent", "pipl_correction"),
                         **_FORM_SHAPE), request.form)
        _preferences_of(request.form, data)
        for optional in ("birthday", "gender", "email", "segment", "company"):
            data[optional] = data.get(optional) or None
        _done, errors = commit_or_errors(lambda: service.update(g.actor, member.id, MemberUpdateSchema().load(data)))
        if errors:
            form = request.form
        else:
            flash(_("Changes saved."), "success")
            return redirect(url_for("members.detail", member_id=member.id))
    else:
        form = {"name": member.name, "mobile": member.mobile, "birthday": member.birthday or "",
                "gender": member.gender or "", "email": member.email or "", "segment": member.segment or "",
                "company": member.company.name if member.company else "", "sales_rep": member.sales_rep,
                "tags": ", ".join(member.tags), "notes": member.notes,
                "preferences": "\n".join(member.preferences or []),
                "consent_sms": member.sms_consent, "consent_email": member.email_consent,
                "service_consent": member.service_consent}
    return render_template("members/form.html", form=form, errors=errors, creating=False, member=member,
                           shown_consent={box: getattr(member, f"{channel}_consent")
                                          for channel, box in _CONSENT_BOXES.items()},
                           field_labels=_field_labels(), **_choices()), (422 if errors else 200)


@bp.get("/reports/referrals")
@allow(MANAGERS)
def referral_report():
    """Referrals per referrer and per store in a period (this year so far by default), as a page
    or, with format=csv|xlsx, a file of the per-referrer rows."""
    from marshmallow import ValidationError

    from ..core.timeutil import local_today
    from ..reports import exports
    from ..reports.figures import period
    today = local_today()
    form = {"from": today.replace(month=1, day=1).isoformat(), "to": today.isoformat(), "store_code": "",
            **{k: v for k, v in request.args.items() if v and k in ("from", "to", "store_code", "format")}}
    result, errors = None, {}
    try:
        args = ReferralReportQuery().load(form)
        store_id = stores.get_by_code(args["store_code"]).id if args["store_code"] else None
        result = referrals.report(period(args["from_"], args["to"]), store_id)
    except (ValidationError, DomainError) as exc:
        errors = errors_of(exc)
        errors = {("from" if k == "from_" else k): v for k, v in errors.items()}
    if result is not None and args["format"]:
        return exports.download(args["format"], "referrals", referrals.EXPORT_HEADER, referrals.export_rows(result))
    return render_template("members/referrals.html", form=form, errors=errors, result=result,
                           **_choices()), (422 if errors else 200)

from . import pipl_views  # noqa: E402,F401 — PIPL pages on this blueprint
