"""Members: register, edit, find. The rules; views only load input and call these."""
import re
from functools import cache

from flask_babel import gettext as _
from sqlalchemy import bindparam, false, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, lazyload, selectinload

from ..core import audit, locks
from ..core.actor import Actor
from ..core.lookup import get_or_404
from ..core.phones import last4, mask_mobile, normalise_mobile
from ..core.timeutil import utcnow
from ..errors import Conflict, Forbidden, Invalid
from ..extensions import db
from ..stores import service as stores
from . import companies, levels, referrals
from .models import Member, MemberTag, new_referral_code

_PROFILE_FIELDS = ("name", "gender", "email", "segment", "sales_rep", "notes")
_NULLABLE = {"gender", "email", "segment"}


def _ensure_mobile_free(mobile: str, member_id: int | None = None):
    owner = db.session.scalar(select(Member.id).where(Member.mobile == mobile))
    if owner is not None and owner != member_id:
        raise Conflict(_("That mobile number belongs to another member."), code="mobile_taken",
                       field="mobile", member_id=owner)


def _set_birthday(member: Member, birthday):
    month, day, year = birthday if birthday else (None, None, None)
    member.birthday_month, member.birthday_day, member.birth_year = month, day, year


def _set_consent(member: Member, consent: dict) -> list[tuple[str, bool]]:
    """Set the channels given ({"sms", "email", "service": bool}); returns the (channel, granted)
    that changed, for _record_consent once the member has an id."""
    now, changed = utcnow(), []
    for channel in ("sms", "email", "service"):
        if channel in consent and bool(consent[channel]) != bool(getattr(member, f"{channel}_consent")):
            setattr(member, f"{channel}_consent", bool(consent[channel]))
            setattr(member, f"{channel}_consent_at", now)
            changed.append((channel, bool(consent[channel])))
    return changed


def _record_consent(actor: Actor, member: Member, changed):
    """Each consent given or withdrawn by staff is a row of the consent's history (the member's
    own withdrawals and SMS replies are recorded by consent.py the same way)."""
    for channel, granted in changed:
        audit.record(actor, "member.consent_granted" if granted else "member.consent_withdrawn", entity=member,
                     channel=channel, source="staff")


def _consent_of(data: dict) -> dict:
    return {**(data.get("marketing_consent") or {}),
            **({"service": data["service_consent"]} if data.get("service_consent") is not None else {})}


def _set_tags(member: Member, tags):
    wanted = sorted({t.strip() for t in tags if t and t.strip()})
    member.tag_rows = [row for row in member.tag_rows if row.tag in wanted]
    have = {row.tag for row in member.tag_rows}
    member.tag_rows.extend(MemberTag(tag=t) for t in wanted if t not in have)


def _set_preferences(member: Member, items):
    """The list as sent, trimmed, without blank items or repeats (the schema bounds its size)."""
    kept = []
    for item in items or []:
        item = " ".join(item.split())
        if item and item not in kept:
            kept.append(item)
    member.preferences = kept


def _flush_unique_mobile(member: Member):
    """Flush in a savepoint so a concurrent registration of the same mobile is a 409, not a 500."""
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise Conflict(_("That mobile number belongs to another member."), code="mobile_taken",
                       field="mobile") from None


def register(actor: Actor, data: dict) -> Member:
    """Sign up a guest at a store. `data` is a loaded MemberCreateSchema."""
    mobile = normalise_mobile(data["mobile"])
    _ensure_mobile_free(mobile)
    store = stores.get_by_code(data["store_code"], active_only=True)
    referrer = referrals.find_referrer(data["referral_code"]) if data.get("referral_code") else None
    member = Member(mobile=mobile, mobile_last4=last4(mobile), store_id=store.id,
                    level_id=levels.entry_level().id, created_by=actor.staff_id, referral_code=_free_referral_code(),
                    referred_by_id=referrer.id if referrer else None)
    for field in _PROFILE_FIELDS:
        if data.get(field) is not None:
            setattr(member, field, data[field])
    _set_birthday(member, data.get("birthday"))
    consent_changes = _set_consent(member, _consent_of(data))
    member.company = companies.resolve(actor, data.get("company"))
    db.session.add(member)
    _set_tags(member, data.get("tags") or [])
    _set_preferences(member, data.get("preferences"))
    _flush_unique_mobile(member)
    audit.record(actor, "member.register", entity=member, store_id=store.id,
                 mobile=mask_mobile(mobile), **({"referred_by": referrer.id} if referrer else {}))
    _record_consent(actor, member, consent_changes)
    return member


def _free_referral_code() -> str:
    """A random referral code no member has (8 characters of 32: a clash is about one in a
    million at a million members; the unique index is the last word)."""
    while True:
        code = new_referral_code()
        if db.session.scalar(select(Member.id).where(Member.referral_code == code)) is None:
            return code


def update(actor: Actor, member_id: int, changes: dict) -> Member:
    """Edit a profile; only managers change a level by hand (tiers are otherwise earned).
    The audit row holds each changed field before and after (mobiles masked). With
    `pipl_correction` (and its `correction_reason`) the edit is also a PIPL correction
    request in the request log; an anonymised member is not edited (409 `member_anonymised`)."""
    from . import pipl
    changes = dict(changes)
    correction, correction_reason = changes.pop("pipl_correction", False), changes.pop("correction_reason", None)
    member = get_member(member_id)
    pipl.ensure_not_anonymised(member)
    if member.merged_into_id is not None:  # a merged duplicate is the record of one (members/merge.py)
        raise Conflict(_("This member was merged into member %(id)d.", id=member.merged_into_id),
                       code="member_merged", survivor_id=member.merged_into_id)
    if correction and not (correction_reason or "").strip():
        raise Invalid(_("Say what the member asked to correct."), code="reason_required", field="correction_reason")
    before = _snapshot(member)
    if "level_code" in changes:  # not in the middle of a bill or top-up that moves the level too
        locks.lock_member(member.id)
        db.session.refresh(member)
    if "mobile" in changes:
        mobile = normalise_mobile(changes["mobile"])
        _ensure_mobile_free(mobile, member.id)
        member.mobile, member.mobile_last4 = mobile, last4(mobile)
    if "level_code" in changes:
        if actor.role not in ("manager", "admin"):
            raise Forbidden(_("Only a manager may change a member's level."), code="level_change_forbidden",
                            field="level_code")
        level = levels.get_by_code(changes["level_code"])
        if level.id != member.level.id:
            levels.change_level(actor, member, level, reason="manual")
    for field in _PROFILE_FIELDS:
        if field in changes:
            value = changes[field]
            setattr(member, field, value if value is not None or field in _NULLABLE else "")
    if "birthday" in changes:
        _set_birthday(member, changes["birthday"])
    consent_changes = _set_consent(member, _consent_of(changes))
    if "company" in changes:
        member.company = companies.resolve(actor, changes["company"])
    if "tags" in changes:
        _set_tags(member, changes["tags"] or [])
    if "preferences" in changes:
        _set_preferences(member, changes["preferences"])
    member.updated_at = utcnow()
    _flush_unique_mobile(member)
    after = _snapshot(member)
    changed = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
    audit.record(actor, "member.update", entity=member, fields=sorted(changes), changes=changed)
    _record_consent(actor, member, consent_changes)
    if correction:
        pipl.log_request(actor, member.id, "correction", correction_reason, fields=sorted(changed))
    return member


def _snapshot(member: Member) -> dict:
    """The profile as an audit row shows it (a mobile masked: audit details never hold one)."""
    return {"name": member.name, "mobile": mask_mobile(member.mobile), "birthday": member.birthday,
            "gender": member.gender, "email": member.email, "segment": member.segment, "sales_rep": member.sales_rep,
            "notes": member.notes, "tags": list(member.tags), "preferences": list(member.preferences or []),
            "company": member.company.name if member.company else None,
            "level": member.level.code if member.level else None}


def find_member(member_id: int) -> Member | None:
    return db.session.get(Member, member_id)


def find_member_with_card(member_id: int, *, lock: bool) -> Member | None:
    """The member a bill is priced for (or a top-up credited to), read with their level and
    live card in one query (the company and home store load if asked for). With `lock`,
    under the member lock (core/locks.py, step 1) taken first, and read fresh. Two
    statements, not one: a locking
    SELECT that had to wait sees the locked row as the other transaction left it, but the
    rows it joins as they were before the wait (PostgreSQL re-checks only the locked row),
    so a card frozen or a level raised meanwhile would be missed.
    An anonymised member (PIPL erasure) is 409 `member_anonymised`: no new bill, top-up or
    merge lands on a record that names no one."""
    if lock:
        locks.lock_member(member_id)
    member = db.session.execute(_member_with_card(lock), {"member_id": member_id}).unique().scalar_one_or_none()
    if member is not None and member.anonymised_at is not None:
        from . import pipl
        raise pipl.anonymised_error(member)
    return member


@cache
def _member_with_card(fresh: bool):  # built once: every bill runs it (core/rows.py says why)
    return (select(Member).where(Member.id == bindparam("member_id"))
            .options(joinedload(Member.live_card), lazyload(Member.company), lazyload(Member.store))
            .execution_options(populate_existing=fresh))


def get_member(member_id: int) -> Member:
    return get_or_404(Member, member_id, _("No such member."), code="member_not_found")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def is_exact_query(q: str | None) -> bool:
    """True when q names one member for sure (a card code or a full mobile), so a UI may
    jump straight to that member; a name or the last 4 digits may match someone else."""
    from ..cards import service as cards
    compact = re.sub(r"[\s\-]", "", q or "")
    if not compact:
        return False
    if cards.card_no_from_code(compact):
        return True
    try:
        normalise_mobile(compact)
        return True
    except ValueError:
        return False


def search(q: str | None, *, mobile_prefixes: bool = False):
    """A select for members matching q: scanned card code, full card number, full mobile, last 4 digits,
    mobile prefix, or name prefix; all of them use an index except a name search.

    Only roles that see full mobiles may search by a prefix of one (`mobile_prefixes`). For the
    others digits match the whole of a mobile or a card number, or exactly a mobile's last 4 (which
    they see anyway): extending a prefix while a member still appears would spell out the masked
    digits, so any other run of digits matches no one rather than falling back to another column."""
    from ..cards import service as cards  # cards depend on members; import late

    stmt = (select(Member).options(selectinload(Member.tag_rows)).order_by(Member.name, Member.id)
            .where(Member.anonymised_at.is_(None))  # an erased member is found by no one (PIPL)
            .where(Member.merged_into_id.is_(None)))  # nor a merged duplicate, a tombstone (members/merge.py)
    q = (q or "").strip()
    if not q:
        return stmt
    compact = re.sub(r"[\s\-]", "", q)
    card_no = cards.card_no_from_code(compact)  # a scanned QR payload or a typed card number
    if card_no or cards.looks_like_card_no(compact):
        member_id = cards.member_id_for_card_no(card_no) if card_no else None
        return stmt.where(Member.id == (member_id or 0))
    try:
        return stmt.where(Member.mobile == normalise_mobile(compact))
    except ValueError:
        pass
    if compact.isdigit() and len(compact) == 4:
        return stmt.where(Member.mobile_last4 == compact)
    if compact.lstrip("+").isdigit():
        if not mobile_prefixes:
            return stmt.where(false())
        # Range instead of LIKE so the unique index on mobile serves it on both databases.
        return stmt.where(Member.mobile >= compact, Member.mobile < compact + ":")
    return stmt.where(Member.name.ilike(_escape_like(q) + "%", escape="\\"))


def id_for_mobile(mobile: str) -> int | None:
    """The id of the member with this (normalised) mobile, if any."""
    return db.session.scalar(select(Member.id).where(Member.mobile == mobile))


def id_for_guest_mobile(mobile: str) -> int | None:
    """The member a PMS or POS names by this (normalised) mobile: its holder, else the survivor a
    merged duplicate's freed mobile now belongs to; None if neither."""
    from .merge import survivor_for_old_mobile
    found = id_for_mobile(mobile)
    if found is None and (survivor := survivor_for_old_mobile(mobile)) is not None:
        found = survivor.id
    return found


def ids_of_store(store_id: int | None):
    """A subquery of the ids of the members registered at a store (all members if None)."""
    stmt = select(Member.id)
    return stmt.where(Member.store_id == store_id) if store_id is not None else stmt


def report_counts(start, end, store_id: int | None = None) -> dict:
    """Members registered before `start`, in [start, end), and in all by `end`."""
    base = select(func.count()).select_from(Member)
    if store_id is not None:
        base = base.where(Member.store_id == store_id)
    before = db.session.scalar(base.where(Member.created_at < start))
    new = db.session.scalar(base.where(Member.created_at >= start, Member.created_at < end))
    return {"members_at_start": before, "new_members": new, "members_total": before + new}
