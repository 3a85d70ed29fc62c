"""Merge a duplicate member into another (manager, with a reason).

The duplicate (`from`) becomes a tombstone naming the survivor (`into`); the survivor keeps
the profile values the manager chose field by field. What moves, and how:

- points: each of the duplicate's lots with points left, as a `transfer` entry out of it and
  a `transfer` entry and new lot (same earning date and expiry) on the survivor;
- stored value: principal and bonus, as `transfer` entries out of and into the accounts of
  the same kind. Ledgers are never edited: the duplicate's history stays on its accounts;
- coupons still issued, and unused draw tickets: reassigned to the survivor (a coupon is a
  status row with a code the guest holds, not a ledger: the same coupon keeps working; the
  ids are in the merge row, so the move is on record and stock counts are unaffected);
- the live card: moved to the survivor if it has none; else kept live on the tombstone and
  every look-up of it (till scan, search) resolves to the survivor (one live card per member);
- bills and top-ups, and imported POS checks and PMS stays: their `member_id` is set to the
  survivor, ids recorded in the merge row.
  Every figure by member (member page, visits and spend for audiences, rolling spend for
  levels, reports by member) is then right without each query learning about tombstones; the
  bills themselves (amounts, card, level at the time, ledger entries) are unchanged. A void
  of such a bill finds its entries on the tombstone's accounts and gives back to the survivor
  (points.reverse_checkout, wallet.reverse_checkout via merge_models.account_owners);
- the duplicate's wallet PIN, if the survivor has none (the money it guarded stays guarded);
- messages already settled (sent, failed, skipped, held out): the guest's history, so they move
  too, ids recorded, except one of a campaign send the survivor also got (a delivery is unique
  per send and member; the survivor's own stays). Messages still waiting to go stay on the
  tombstone, whose withdrawn consents and freed mobile make the dispatcher skip them, rather
  than reach the guest twice.

The tombstone loses its mobile (freed, so the survivor may take it; kept in the merge row)
and every consent, so no campaign, greeting or notification reaches it; search skips it.

Locks (core/locks.py): both members, lowest id first, before anything is read for a decision.
"""
import re

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, tuple_, update

from ..auth.roles import MANAGERS
from ..campaigns.models import Delivery
from ..cards.models import Card
from ..checkout import service as checkout
from ..checkout.models import Checkout
from ..core import audit, locks, reasons
from ..core.actor import Actor
from ..core.phones import mask_mobile, mobile_for_viewer, normalise_mobile
from ..core.timeutil import utcnow
from ..coupons.models import Coupon, DrawTicket
from ..errors import Conflict, DomainError, Forbidden, Invalid
from ..extensions import db
from ..frontdesk.models import Reservation
from ..points import service as points
from ..programme import service as programme
from ..reports.models import Check, Stay
from ..wallet import service as wallet
from ..wallet.models import WalletPin, WalletTopup
from . import levels
from . import service as members
from .merge_models import MemberMerge, survivor_id
from .models import PREFERENCES_MAX, Member, MemberTag

# The profile values a manager chooses between, each with its label on the side-by-side page.
FIELDS = {"name": _l("Name"), "mobile": _l("Mobile"), "email": _l("Email"), "birthday": _l("Birthday"),
          "gender": _l("Gender"), "level": _l("Level"), "company": _l("Company"), "segment": _l("Segment"),
          "sales_rep": _l("Sales rep"), "notes": _l("Notes"), "consent": _l("Consent")}
_COLUMNS = {"name": ("name",), "mobile": ("mobile", "mobile_last4"), "email": ("email",),
            "birthday": ("birthday_month", "birthday_day", "birth_year"), "gender": ("gender",),
            "level": ("level_id",), "company": ("company_id",), "segment": ("segment",),
            "sales_rep": ("sales_rep",), "notes": ("notes",),
            "consent": ("sms_consent", "sms_consent_at", "email_consent", "email_consent_at",
                        "service_consent", "service_consent_at")}


class MemberMerged(DomainError):
    """A merged member asked for as if it were live: 410 naming the survivor."""
    status, code = 410, "member_merged"
    message = _l("This member was merged into another member.")


def refuse_tombstone(member: Member) -> Member:
    if member.merged_into_id is not None:
        raise MemberMerged(_("This member was merged into member %(id)d.", id=member.merged_into_id),
                           survivor_id=member.merged_into_id)
    return member


def _choices(fields: dict | None) -> dict:
    fields = dict(fields or {})
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise Invalid(_("Unknown profile field: %(names)s.", names=", ".join(unknown)), code="unknown_field",
                      field="fields", unknown=unknown)
    for name, side in fields.items():
        if side not in ("into", "from"):
            raise Invalid(_("Choose the survivor's or the duplicate's value."), code="invalid_choice",
                          field=name)
    return {name: fields.get(name, "into") for name in FIELDS}


def _profile(member: Member) -> dict:
    """The duplicate's profile as it was, for the merge row (its mobile is freed)."""
    return {"name": member.name, "mobile": member.mobile, "email": member.email, "birthday": member.birthday,
            "gender": member.gender, "level": member.level.code, "company": member.company.name if member.company
            else None, "segment": member.segment, "sales_rep": member.sales_rep, "notes": member.notes,
            "consent": {"sms": member.sms_consent, "email": member.email_consent,
                        "service": member.service_consent}, "tags": member.tags,
            "preferences": list(member.preferences or [])}


def merge(actor: Actor, into_id: int, from_id: int, reason: str, fields: dict | None = None) -> MemberMerge:
    """Merge member `from_id` (the duplicate) into `into_id` (the survivor); see the module."""
    if actor.role not in MANAGERS | {"admin"}:
        raise Forbidden(_("Only a manager may merge members."), code="merge_forbidden")
    reason = reasons.required(reason, _("Give a reason for the merge."))
    choices = _choices(fields)
    if from_id == into_id:
        raise Invalid(_("A member cannot be merged into itself."), code="merge_same_member", field="from_member_id")
    if db.session.get_bind().dialect.name == "postgresql":
        # The duplicate's hotel stays before the members (core/locks.py): a stay posted or imported
        # holds its row and then waits for its member's lock (crm/stays), so moving the stays below
        # while holding the members would close a cycle with it.
        db.session.execute(select(Stay.id).where(Stay.member_id == from_id).order_by(Stay.id)
                           .with_for_update(key_share=True))
    for member_id in sorted((into_id, from_id)):  # lowest id first: two merges of a pair cannot deadlock
        locks.lock_member(member_id)
    into = members.find_member_with_card(into_id, lock=True)
    dup = members.find_member_with_card(from_id, lock=True)
    if into is None:
        raise Invalid(_("No such member."), code="member_not_found", field="into_member_id")
    if dup is None:
        raise Invalid(_("No such member."), code="unknown_member", field="from_member_id")
    if into.merged_into_id is not None:
        raise Conflict(_("Member %(id)d was merged into member %(into)d: merge into the survivor.",
                         id=into.id, into=into.merged_into_id), code="member_merged", field="into_member_id",
                       survivor_id=into.merged_into_id)
    if dup.merged_into_id is not None:
        raise Conflict(_("Member %(id)d was already merged into member %(into)d.", id=dup.id,
                         into=dup.merged_into_id), code="already_merged", field="from_member_id",
                       survivor_id=dup.merged_into_id)
    now = utcnow()
    from_profile = _profile(dup)
    # The tombstone first, by a conditional UPDATE (of two merges of one duplicate, one wins); its
    # mobile is freed so the survivor may take it.
    took = db.session.execute(update(Member).where(Member.id == dup.id, Member.merged_into_id.is_(None)).values(
        merged_into_id=into.id, merged_at=now, mobile=f"merged-{dup.id}", sms_consent=False, email_consent=False,
        service_consent=False, updated_at=now).execution_options(synchronize_session=False)).rowcount
    if took != 1:
        raise Conflict(_("This member was merged a moment ago."), code="already_merged", field="from_member_id")
    _take_profile(actor, into, from_profile, dup, choices)
    moved = _move_everything(actor, dup.id, into.id, reason)
    # The survivor's rolling spend and top-ups now count the duplicate's bills and top-ups: up a
    # level if either reaches one.
    months = programme.get("level_window_months")
    levels.upgrade_for(actor, into, spend=lambda: checkout.rolling_spend(into.id, months),
                       topup=lambda: levels.rolling_topup(into.id, months))
    db.session.expire(dup)
    row = MemberMerge(from_member_id=dup.id, into_member_id=into.id, reason=reason, staff_id=actor.staff_id,
                      fields=choices, from_profile=from_profile, moved=moved, created_at=now)
    db.session.add(row)
    db.session.flush()
    audit.record(actor, "member.merge", entity=into, from_member_id=dup.id, reason=reason,
                 fields=sorted(k for k, v in choices.items() if v == "from"),
                 from_mobile=mask_mobile(from_profile["mobile"]),
                 points=moved["points"], principal=moved["principal"], bonus=moved["bonus"],
                 coupons=len(moved["coupons"]), checkouts=len(moved["checkouts"]), card=moved["card"])
    return row


def _take_profile(actor: Actor, into: Member, from_profile: dict, dup: Member, choices: dict):
    """Copy the chosen values of the duplicate (read before it became a tombstone) to the survivor."""
    taken = [name for name, side in choices.items() if side == "from"]
    for name in taken:
        if name == "level":
            if dup.level_id != into.level_id:
                levels.change_level(actor, into, levels.get_by_code(from_profile["level"]), reason="manual")
        elif name == "mobile":
            db.session.flush()  # the tombstone's mobile is freed before the survivor takes it
            into.mobile, into.mobile_last4 = from_profile["mobile"], from_profile["mobile"][-4:]
        elif name == "consent":
            # A channel that changes takes the duplicate's value and the time the guest gave (or
            # withdrew) it, and is a row of the survivor's consent history, as staff changes are.
            for channel in ("sms", "email", "service"):
                granted = bool(from_profile["consent"][channel])
                if granted != bool(getattr(into, f"{channel}_consent")):
                    setattr(into, f"{channel}_consent", granted)
                    setattr(into, f"{channel}_consent_at", getattr(dup, f"{channel}_consent_at") or utcnow())
                    audit.record(actor, "member.consent_granted" if granted else "member.consent_withdrawn",
                                 entity=into, channel=channel, source="merge", from_member_id=dup.id)
        else:
            for column in _COLUMNS[name]:
                setattr(into, column, getattr(dup, column))
    have = set(into.tags)  # tags: the survivor keeps both members' tags
    into.tag_rows.extend(MemberTag(tag=t) for t in from_profile["tags"] if t not in have)
    # preferences (hotel front desk): the survivor's, then the duplicate's it lacks, up to the limit
    kept = list(into.preferences or [])
    into.preferences = (kept + [p for p in from_profile["preferences"] if p not in kept])[:PREFERENCES_MAX]
    into.updated_at = utcnow()
    members._flush_unique_mobile(into)


def _move_everything(actor: Actor, from_id: int, into_id: int, reason: str) -> dict:
    moved = {"points": 0, "lots": {}, "principal": 0, "bonus": 0}
    moved.update(points.transfer_all(actor, from_id, into_id, reason=reason))
    moved.update(wallet.transfer_all(actor, from_id, into_id, reason=reason))
    moved["coupons"] = _reassign(Coupon, (Coupon.member_id == from_id) & (Coupon.status == "issued"), into_id)
    moved["tickets"] = _reassign(DrawTicket, (DrawTicket.member_id == from_id) & (DrawTicket.status == "unused"),
                                 into_id)
    moved["checkouts"] = _reassign(Checkout, Checkout.member_id == from_id, into_id)
    moved["topups"] = _reassign(WalletTopup, WalletTopup.member_id == from_id, into_id)
    # Its bills from other systems too (POS checks, PMS stays): visits, repeat-guest and ranking
    # reports, the PIPL export and the retention job's "inactive" read them by member.
    survivor_sends = select(Delivery.campaign_id, Delivery.occurrence).where(
        Delivery.member_id == into_id, Delivery.campaign_id.is_not(None))
    moved["deliveries"] = _reassign(Delivery, (Delivery.member_id == from_id)
                                    & Delivery.status.not_in(("queued", "sending"))
                                    & (Delivery.campaign_id.is_(None)
                                       | tuple_(Delivery.campaign_id, Delivery.occurrence).not_in(survivor_sends)),
                                    into_id)
    moved["checks"] = _reassign(Check, Check.member_id == from_id, into_id)
    moved["stays"] = _reassign(Stay, Stay.member_id == from_id, into_id)
    moved["reservations"] = _reassign(Reservation, Reservation.member_id == from_id, into_id)  # the arrivals list
    # The duplicate's payment PIN guards its stored value on the survivor too, if the survivor has
    # none (locked by wrong tries, it stays locked); a survivor's own PIN is the one its guest knows.
    if db.session.get(WalletPin, into_id) is None:
        db.session.execute(update(WalletPin).where(WalletPin.member_id == from_id).values(member_id=into_id)
                           .execution_options(synchronize_session=False))
    # Tombstones merged into the duplicate earlier now name the survivor (one step to the live member).
    moved["tombstones"] = _reassign(Member, Member.merged_into_id == from_id, into_id, column="merged_into_id")
    moved["card"] = None
    card = db.session.scalar(select(Card).where(Card.member_id == from_id, Card.status.in_(("active", "frozen"))))
    if card is not None:
        survivor_has_one = db.session.scalar(select(Card.id).where(
            Card.member_id == into_id, Card.status.in_(("active", "frozen"))))
        moved["card"] = {"card_id": card.id, "moved": survivor_has_one is None}
        if survivor_has_one is None:
            _reassign(Card, Card.id == card.id, into_id)
    return moved


def _reassign(model, where, into_id: int, column: str = "member_id") -> list[int]:
    table = model.__table__
    ids = list(db.session.scalars(select(table.c.id).where(where).order_by(table.c.id)))
    if ids:
        db.session.execute(update(table).where(table.c.id.in_(ids)).values({column: into_id}))
    return ids


def merge_of(member_id: int) -> MemberMerge | None:
    """The merge that made this member a tombstone, if any."""
    return db.session.scalar(select(MemberMerge).where(MemberMerge.from_member_id == member_id))


def merged_into(member_id: int) -> list[Member]:
    """The tombstones merged into this member, oldest merge first."""
    return list(db.session.scalars(select(Member).where(Member.merged_into_id == member_id)
                                   .order_by(Member.merged_at, Member.id)))


def side_by_side(into: Member, dup: Member) -> list[dict]:
    """The rows of the merge page: each field's label and both members' values as shown."""
    def show(member, name):
        if name == "birthday":
            return member.birthday or ""
        if name == "level":
            return member.level.name
        if name == "company":
            return member.company.name if member.company else ""
        if name == "consent":
            return ", ".join(str(c) for c, on in ((_l("SMS offers"), member.sms_consent),
                                                  (_l("Email offers"), member.email_consent),
                                                  (_l("Account messages"), member.service_consent)) if on) or "—"
        if name == "mobile":
            return mobile_for_viewer(member.mobile)
        value = getattr(member, name)
        return "" if value is None else str(value)
    return [{"name": name, "label": label, "into": show(into, name), "from": show(dup, name)}
            for name, label in FIELDS.items()]


def survivor_for_old_mobile(q: str) -> Member | None:
    """The live member a merged duplicate's freed mobile now belongs to, for the desk searching
    by the number the guest remembers (no member holds it any more). Merges are few: the merge
    rows' kept profiles are read, not indexed. None if q is no full mobile or none matches."""
    try:
        mobile = normalise_mobile(re.sub(r"[\s\-]", "", q or ""))
    except ValueError:
        return None
    into = db.session.scalar(select(MemberMerge.into_member_id).where(
        MemberMerge.from_profile["mobile"].as_string() == mobile).order_by(MemberMerge.id.desc()).limit(1))
    if into is None:
        return None
    member = db.session.get(Member, survivor_id(into))
    return member if member is not None and member.anonymised_at is None else None
