"""Audiences: saved member filters, compiled to one SQL query (never a loop over members).

Filter keys (all optional, combined with AND; lists match any of their values):
  levels [level codes] · segments [segment keys] · stores [store codes, the registering
  store] · tags [tags] · birthday_month 1–12 · last_visit_after / last_visit_before
  (dates, store-chain time zone; "before" means visited, but not since: members who
  never came are not in it) · spend_min / spend_max (fen, closed bills after coupons
  over the level window, default 12 months) · consent "sms" | "email" | "any" ·
  rfm [RFM group keys, see reports/rfm.py].
"""
from datetime import date, datetime, time, timedelta

from flask_babel import gettext as _
from sqlalchemy import and_, exists, func, or_, select

from ..checkout import service as checkout
from ..core import audit
from ..core.actor import Actor
from ..core.lookup import get_or_404
from ..core.segments import SEGMENT_KEYS
from ..core.timeutil import utcnow, zone
from ..errors import Conflict, Invalid
from ..extensions import db
from ..members import levels
from ..members import service as members
from ..programme import service as programme
from ..reports import rfm
from ..stores import service as stores
from .models import Audience, Campaign

CONSENTS = ("sms", "email", "any")
LIST_KEYS = ("levels", "segments", "stores", "tags", "rfm")
KEYS = LIST_KEYS + ("birthday_month", "last_visit_after", "last_visit_before", "spend_min", "spend_max", "consent")


def _bad(key, message):
    return Invalid(message, code="invalid_filter", field=f"filters.{key}")


def clean(filters: dict | None) -> dict:
    """Validated, normalised filters (dates as ISO strings, so they store as JSON)."""
    filters = dict(filters or {})
    unknown = set(filters) - set(KEYS)
    if unknown:
        raise _bad(sorted(unknown)[0], _("Unknown filter."))
    out = {}
    for key in LIST_KEYS:
        values = [str(v).strip() for v in filters.get(key) or () if str(v).strip()]
        if values:
            out[key] = sorted(set(v.upper() if key == "stores" else v for v in values))
    known = {"levels": lambda: db.session.scalars(select(levels.MemberLevel.code)),
             "segments": lambda: SEGMENT_KEYS,
             "stores": lambda: db.session.scalars(select(stores.Store.code)),
             "rfm": lambda: rfm.GROUPS}
    for key, names in known.items():
        missing = set(out.get(key, ())) - set(names()) if out.get(key) else set()
        if missing:
            raise _bad(key, _("Unknown: %(values)s.", values=", ".join(sorted(missing))))
    if filters.get("birthday_month") not in (None, ""):
        month = filters["birthday_month"]
        if not isinstance(month, int) or isinstance(month, bool) or not 1 <= month <= 12:
            raise _bad("birthday_month", _("A month is 1 to 12."))
        out["birthday_month"] = month
    for key in ("last_visit_after", "last_visit_before"):
        value = filters.get(key)
        if value in (None, ""):
            continue
        try:
            out[key] = (value if isinstance(value, date) else date.fromisoformat(str(value))).isoformat()
        except ValueError:
            raise _bad(key, _("Use a date like 2026-05-01.")) from None
    for key in ("spend_min", "spend_max"):
        value = filters.get(key)
        if value in (None, ""):
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _bad(key, _("Give an amount of 0 or more."))
        out[key] = value
    if "spend_min" in out and "spend_max" in out and out["spend_min"] > out["spend_max"]:
        raise _bad("spend_max", _("The upper spend limit is below the lower one."))
    if filters.get("consent") not in (None, ""):
        if filters["consent"] not in CONSENTS:
            raise _bad("consent", _("Consent is sms, email or any."))
        out["consent"] = filters["consent"]
    return out


def _midnight(iso: str) -> datetime:
    return datetime.combine(date.fromisoformat(iso), time(), zone())


def conditions(filters: dict) -> list:
    """SQL conditions on members for already-cleaned filters."""
    M = members.Member
    where = [M.merged_into_id.is_(None)]  # a merged duplicate is a tombstone (members/merge.py)
    where.append(M.anonymised_at.is_(None))  # nor an erased member, even in a filter on spend (members/pipl.py)
    if filters.get("levels"):
        where.append(M.level_id.in_(select(levels.MemberLevel.id).where(levels.MemberLevel.code.in_(filters["levels"]))))
    if filters.get("segments"):
        where.append(M.segment.in_(filters["segments"]))
    if filters.get("stores"):
        where.append(M.store_id.in_(select(stores.Store.id).where(stores.Store.code.in_(filters["stores"]))))
    if filters.get("tags"):
        tag = members.MemberTag
        where.append(exists().where(tag.member_id == M.id, tag.tag.in_(filters["tags"])))
    if filters.get("birthday_month"):
        where.append(M.birthday_month == filters["birthday_month"])
    if filters.get("rfm"):
        where.append(M.id.in_(rfm.members_in(filters["rfm"])))
    consent = filters.get("consent")
    if consent == "sms":
        where.append(M.sms_consent.is_(True))
    elif consent == "email":
        where.append(and_(M.email_consent.is_(True), M.email.is_not(None), M.email != ""))
    elif consent == "any":
        where.append(or_(M.sms_consent.is_(True), M.email_consent.is_(True)))
    visit_keys = ("last_visit_after", "last_visit_before", "spend_min", "spend_max")
    if any(k in filters for k in visit_keys):
        since = utcnow() - timedelta(days=round(programme.get("level_window_months") * 365.25 / 12))
        visits = checkout.member_visits(since)
        sub = [visits.c.member_id == M.id]
        if "last_visit_after" in filters:
            sub.append(visits.c.last_visit >= _midnight(filters["last_visit_after"]))
        if "last_visit_before" in filters:
            sub.append(visits.c.last_visit < _midnight(filters["last_visit_before"]))
        if "spend_min" in filters:
            sub.append(visits.c.spend >= filters["spend_min"])
        if "spend_max" in filters:
            sub.append(visits.c.spend <= filters["spend_max"])
        matched = select(visits.c.member_id).where(*sub).exists()
        if filters.get("spend_min", 0) == 0 and not {"last_visit_after", "last_visit_before"} & set(filters):
            # "spent at most X" includes members who have not spent at all
            no_visits = ~select(visits.c.member_id).where(visits.c.member_id == M.id).exists()
            matched = or_(matched, no_visits)
        where.append(matched)
    return where


def count(filters: dict | None) -> int:
    """How many members a filter selects right now (the live count)."""
    where = conditions(clean(filters))
    return db.session.scalar(select(func.count()).select_from(members.Member).where(*where))


# Saved audiences -------------------------------------------------------------------------

def list_audiences():
    return db.session.scalars(select(Audience).order_by(Audience.name)).all()


def get_audience(audience_id: int) -> Audience:
    return get_or_404(Audience, audience_id, _("No such audience."), code="audience_not_found")


def _name(name, audience_id=None) -> str:
    name = (name or "").strip()
    if not name:
        raise Invalid(_("Give the audience a name."), code="name_required", field="name")
    clash = db.session.scalar(select(Audience.id).where(Audience.name == name))
    if clash and clash != audience_id:
        raise Conflict(_("Another audience has this name."), code="name_taken", field="name")
    return name


def save(actor: Actor, data: dict, audience_id: int | None = None) -> Audience:
    """Create (no id) or change a saved audience."""
    audience = get_audience(audience_id) if audience_id else Audience(created_by=actor.staff_id)
    if audience_id is None or "name" in data:
        audience.name = _name(data.get("name"), audience_id)
    if audience_id is None or "filters" in data:
        audience.filters = clean(data.get("filters"))
    db.session.add(audience)
    db.session.flush()
    audit.record(actor, "audience.save", entity=audience, filters=audience.filters)
    return audience


def delete(actor: Actor, audience_id: int):
    audience = get_audience(audience_id)
    if db.session.scalar(select(Campaign.id).where(Campaign.audience_id == audience.id).limit(1)):
        raise Conflict(_("Campaigns use this audience; change them first."), code="audience_in_use")
    audit.record(actor, "audience.delete", entity=audience, name=audience.name)
    db.session.delete(audience)
