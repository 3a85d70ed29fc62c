"""PIPL requests (个人信息保护法): a copy of everything held about a member (access and copy),
corrections (the member edit, logged as a request when staff say so), and erasure by
anonymisation, by a manager or by the retention job.

Erasure keeps every ledger entry, bill, coupon and delivery row — reports, `crm audit` and
the chain's books stay as they were — and removes what identifies the person: name,
mobile (a unique placeholder no validation, search or normalisation accepts), email,
birthday, gender, notes, tags, the front desk's preferences, the phone-card link, the payment PIN and the addresses and
texts of the messages sent. Consents are withdrawn (recorded in the consent history), the
live card cancelled, and the balances settled by ledger entries: points forfeited; stored
value refunded (principal paid back, bonus forfeited, as a wallet refund does) or forfeited
whole, as the manager confirms. Every request is a row of privacy_requests (who, when, why).
"""
from datetime import datetime

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import and_, exists, func, or_, select, update

from ..campaigns.models import Delivery
from ..cards.models import Card, CardFee, PhoneLink
from ..checkout.models import Checkout
from ..core import audit, locks, reasons
from ..core.actor import Actor
from ..core.audit import AuditEntry
from ..core.money import format_fen
from ..core.timeutil import utcnow
from ..errors import Conflict, DomainError, Invalid
from ..extensions import db
from ..frontdesk.models import Reservation
from ..notifications.models import Notification
from ..reports.models import Check, Stay
from ..wallet.models import WalletPin, WalletTopup
from . import consent
from .models import Member, MemberTag
from .pipl_models import REQUEST_KINDS, PrivacyRequest

WALLET_RULES = ("refund", "forfeit")
ANON_MOBILE_PREFIX = "anon-"  # never a phone number: normalise_mobile refuses letters
RETENTION_ACTOR = Actor.system("pipl-retention")
BILL_BATCH = 500  # bills read per query when exporting


class AlreadyAnonymised(Conflict):
    code = "member_anonymised"


def anonymised_error(member: Member) -> AlreadyAnonymised:
    return AlreadyAnonymised(_("This member was anonymised on %(date)s; their record can no longer be changed.",
                               date=member.anonymised_at.date().isoformat()), member_id=member.id)


def ensure_not_anonymised(member: Member):
    """Refuse a change to an anonymised member (409 `member_anonymised`)."""
    if member.anonymised_at is not None:
        raise anonymised_error(member)


def refuse_if_anonymised(member_id: int):
    """409 `member_anonymised` for value given by hand (points, a coupon) to an erased member,
    who can never use it."""
    found = db.session.scalar(select(Member).where(Member.id == member_id, Member.anonymised_at.is_not(None)))
    if found is not None:
        raise anonymised_error(found)


def placeholder_mobile(member_id: int) -> str:
    return f"{ANON_MOBILE_PREFIX}{member_id}"


# The request log --------------------------------------------------------------------------

def log_request(actor: Actor, member_id: int, kind: str, reason: str = "", **details) -> PrivacyRequest:
    """One row of the request log (and its audit row), in the caller's transaction."""
    assert kind in REQUEST_KINDS
    row = PrivacyRequest(member_id=member_id, kind=kind, staff_id=actor.staff_id, username=actor.username,
                         reason=(reason or "")[:500], details=details, created_at=utcnow())
    db.session.add(row)
    db.session.flush()
    audit.record(actor, f"member.pipl_{kind}", entity_type="members", entity_id=member_id,
                 request_id=row.id, reason=row.reason)
    return row


def requests_page(kind: str | None = None, member_id: int | None = None):
    """A select of logged requests, newest first."""
    stmt = select(PrivacyRequest).order_by(PrivacyRequest.id.desc())
    if kind:
        stmt = stmt.where(PrivacyRequest.kind == kind)
    if member_id:
        stmt = stmt.where(PrivacyRequest.member_id == member_id)
    return stmt


# Export -------------------------------------------------------------------------------------

_MONEY = {"amount", "bonus", "balance", "list_total", "member_total", "coupon_discount", "points_value",
          "wallet_paid", "wallet_principal", "wallet_bonus", "due", "list_price", "unit_price", "room_revenue",
          "face_value", "min_spend"}
_SECRET = {"token_hash", "pin_hash", "password_hash"}


def _row(obj, skip=()) -> dict:
    """A model row as JSON: datetimes ISO 8601, money (fen) as "12.34", secrets left out."""
    out = {}
    for column in obj.__table__.columns:
        name = column.name
        if name in _SECRET or name in skip:
            continue
        value = getattr(obj, column.key)
        if isinstance(value, datetime) or hasattr(value, "isoformat"):
            value = value.isoformat()
        elif name in _MONEY and isinstance(value, int) and not isinstance(value, bool):
            value = format_fen(value)
        elif value is not None and not isinstance(value, (int, float, str, bool, dict, list)):
            value = str(value)
        out[name] = value
    return out


def _all(stmt) -> list[dict]:
    return [_row(x) for x in db.session.scalars(stmt)]


def _bills(member_id: int):
    """The member's bills with their lines and tenders, a batch at a time (id order)."""
    after = 0
    while True:
        batch = db.session.scalars(select(Checkout).where(Checkout.member_id == member_id, Checkout.id > after)
                                   .order_by(Checkout.id).limit(BILL_BATCH)).all()
        if not batch:
            return
        for bill in batch:
            yield {**_row(bill), "lines": [_row(x) for x in bill.lines], "tenders": [_row(x) for x in bill.tenders]}
        after = batch[-1].id


def _audit_rows(member: Member) -> list[dict]:
    """Audit rows about the member: on the member row itself, or naming it in their details."""
    member_id, key = member.id, str(member.id)
    entity = and_(AuditEntry.entity_type.in_(("members", "member")), AuditEntry.entity_id == key)
    rows = db.session.scalars(select(AuditEntry).where(entity).order_by(AuditEntry.id)).all()
    seen = {r.id for r in rows}
    # Rows on a card, entry or link name the member in details.member_id (JSON, so filtered here;
    # read from the member's registration on, a thousand at a time).
    others = db.session.scalars(select(AuditEntry).where(~entity, AuditEntry.created_at >= member.created_at,
                                                         AuditEntry.entity_type.in_(
        ("cards", "points_entries", "phone_links", "coupons", "wallet_entries"))).order_by(AuditEntry.id)
        .execution_options(yield_per=1000))
    rows += [r for r in others if r.id not in seen and (r.details or {}).get("member_id") == member_id]
    return [_row(r) for r in sorted(rows, key=lambda r: r.id)]


def export(member_id: int, *, lazy_bills: bool = False) -> dict:
    """Everything held about the member, as one JSON-ready dict (with lazy_bills, "bills" is
    a generator reading them a batch at a time, for json_chunks)."""
    from ..coupons.models import Coupon, DrawTicket
    from ..points.models import PointsAccount, PointsEntry, PointsLot
    from ..wallet.models import WalletAccount, WalletEntry
    from . import service
    from .merge_models import MemberMerge
    from .models import MemberLevelChange, ReferralReward
    member = service.get_member(member_id)
    audit_rows = _audit_rows(member)
    consent_history = [r for r in audit_rows if r["action"] in ("member.consent_granted", "member.consent_withdrawn")]
    points_accounts = db.session.scalars(select(PointsAccount.id).where(PointsAccount.member_id == member_id)).all()
    wallet_accounts = db.session.scalars(select(WalletAccount.id).where(WalletAccount.member_id == member_id)).all()
    return {
        "exported_at": utcnow().isoformat(),
        "member": {**_row(member), "level": member.level.code, "store_code": member.store.code,
                   "company": member.company.name if member.company else None, "tags": member.tags,
                   "birthday": member.birthday},
        "consents": {"current": {c: {"granted": getattr(member, f"{c}_consent"),
                                     "at": _iso(getattr(member, f"{c}_consent_at"))} for c in consent.CHANNELS},
                     "history": consent_history},
        "cards": _all(select(Card).where(Card.member_id == member_id).order_by(Card.id)),
        "points": {
            "accounts": _all(select(PointsAccount).where(PointsAccount.member_id == member_id)),
            "entries": _all(select(PointsEntry).where(PointsEntry.account_id.in_(points_accounts))
                            .order_by(PointsEntry.id)),
            "lots": _all(select(PointsLot).where(PointsLot.account_id.in_(points_accounts)).order_by(PointsLot.id)),
        },
        "wallet": {
            "accounts": _all(select(WalletAccount).where(WalletAccount.member_id == member_id)),
            "entries": _all(select(WalletEntry).where(WalletEntry.account_id.in_(wallet_accounts))
                            .order_by(WalletEntry.id)),
            "topups": _all(select(WalletTopup).where(WalletTopup.member_id == member_id).order_by(WalletTopup.id)),
        },
        "bills": _bills(member_id) if lazy_bills else list(_bills(member_id)),
        "imported_checks": _all(select(Check).where(Check.member_id == member_id).order_by(Check.id)),
        "stays": _all(select(Stay).where(Stay.member_id == member_id).order_by(Stay.id)),
        "reservations": _all(select(Reservation).where(Reservation.member_id == member_id).order_by(Reservation.id)),
        "coupons": _all(select(Coupon).where(Coupon.member_id == member_id).order_by(Coupon.id)),
        "draw_tickets": _all(select(DrawTicket).where(DrawTicket.member_id == member_id).order_by(DrawTicket.id)),
        "deliveries": _all(select(Delivery).where(Delivery.member_id == member_id).order_by(Delivery.id)),
        "notifications": _all(select(Notification).where(Notification.member_id == member_id)
                              .order_by(Notification.id)),
        "level_changes": _all(select(MemberLevelChange).where(MemberLevelChange.member_id == member_id)
                              .order_by(MemberLevelChange.id)),
        "referrals": _all(select(ReferralReward).where(or_(ReferralReward.referee_id == member_id,
                                                           ReferralReward.referrer_id == member_id))
                          .order_by(ReferralReward.id)),
        "referred_members": db.session.scalars(select(Member.id).where(Member.referred_by_id == member_id)
                                               .order_by(Member.id)).all(),
        "phone_link": _all(select(PhoneLink).where(PhoneLink.member_id == member_id)),
        # Duplicates merged into the member (the same person): their profile as it was.
        "merges": _all(select(MemberMerge).where(or_(MemberMerge.into_member_id == member_id,
                                                     MemberMerge.from_member_id == member_id))
                       .order_by(MemberMerge.id)),
        "card_fees": _all(select(CardFee).where(CardFee.member_id == member_id).order_by(CardFee.id)),
        "privacy_requests": _all(requests_page(member_id=member_id).order_by(None).order_by(PrivacyRequest.id)),
        "audit": audit_rows,
    }


def json_chunks(data: dict):
    """The export as JSON text in pieces: the bills, however many, one at a time."""
    import json
    yield '{"bills": ['
    for i, bill in enumerate(data["bills"]):
        yield ("," if i else "") + json.dumps(bill, ensure_ascii=False)
    rest = json.dumps({k: v for k, v in data.items() if k != "bills"}, ensure_ascii=False, indent=1)
    yield "], " + rest[1:]


def _iso(value):
    return value.isoformat() if value else None


# Erasure ------------------------------------------------------------------------------------

def balances(member_id: int) -> dict:
    """What an erasure settles (fen and points), as shown on the confirmation step."""
    from ..points import service as points
    from ..wallet import service as wallet
    w = wallet.balances(member_id)
    return {"points": points.balance(member_id), "principal": w["principal"], "bonus": w["bonus"]}


def anonymise(actor: Actor, member_id: int, *, reason: str, wallet_rule: str, store=None,
              confirm: dict | None = None, source: str = "staff", inactive_since: datetime | None = None) -> dict:
    """Erase a member by anonymisation (the caller commits). `confirm` holds the balances the
    manager saw ({"points", "principal", "bonus"}): if they moved since (a bill, a top-up), 409
    `balances_changed` and nothing is done. 409 `member_anonymised` if already done."""
    from ..cards import service as cards
    from ..points import service as points
    from ..stores import service as stores
    from ..wallet import service as wallet
    from . import merge, service
    reason = reasons.required(reason, _("Give the reason for the erasure."))
    if wallet_rule not in WALLET_RULES:
        raise Invalid(_("Choose whether the stored value is refunded or forfeited."), code="invalid_wallet_rule",
                      field="wallet_rule")
    member = service.get_member(member_id)
    locks.lock_member(member.id)  # no bill, top-up or edit of this member meanwhile
    db.session.refresh(member)
    if member.anonymised_at is not None:
        raise anonymised_error(member)
    # A merged duplicate's person lives on in the survivor: that is the member to erase (410).
    merge.refuse_tombstone(member)
    # The retention job picked the member a while ago: a bill or stay since then (seen now that
    # their lock is held) saves them.
    if inactive_since is not None and db.session.scalar(
            select(Member.id).where(Member.id == member.id, *_inactive_since(inactive_since))) is None:
        raise Conflict(_("The member is active again."), code="member_active")
    held = balances(member.id)
    if confirm is not None and {k: int(confirm.get(k, -1)) for k in held} != held:
        raise Conflict(_("The member's balances changed since the page was opened; check them and confirm again."),
                       code="balances_changed", balances={"points": held["points"],
                                                          "principal": format_fen(held["principal"]),
                                                          "bonus": format_fen(held["bonus"])})
    now = utcnow()
    # The conditional UPDATE decides: of two erasures at once, one changes the row.
    done = db.session.execute(
        update(Member).where(Member.id == member.id, Member.anonymised_at.is_(None))
        .values(name="", mobile=placeholder_mobile(member.id), mobile_last4="", email=None, birthday_month=None,
                birthday_day=None, birth_year=None, gender=None, notes="", preferences=[], anonymised_at=now,
                updated_at=now),
        execution_options={"synchronize_session": False}).rowcount
    if not done:
        raise anonymised_error(member)
    person = _erase_copies(member.id, now)
    db.session.execute(MemberTag.__table__.delete().where(MemberTag.member_id == member.id))
    db.session.execute(PhoneLink.__table__.delete().where(PhoneLink.member_id == member.id))
    db.session.execute(WalletPin.__table__.delete().where(WalletPin.member_id == member.id))
    db.session.expire(member)
    for channel in consent.CHANNELS:
        consent.withdraw(actor, member, channel, source="erasure")
    # Messages keep their row (status counts, attribution) but not who they went to or said.
    # (The notifications first: one a hand-over is turning into a delivery right now is waited
    # for, so the delivery it wrote is seen by the next statement.)
    db.session.execute(update(Notification).where(Notification.member_id.in_(person),
                                                  Notification.status.in_(("pending", "queued")))
                       .values(status="skipped", reason="anonymised"))
    db.session.execute(update(Notification).where(Notification.member_id.in_(person))
                       .values(address="", subject="", body=""))
    db.session.execute(update(Delivery).where(Delivery.member_id.in_(person), Delivery.status == "queued")
                       .values(status="skipped", reason="anonymised"))
    db.session.execute(update(Delivery).where(Delivery.member_id.in_(person))
                       .values(address="", subject="", body=""))
    # A hotel reservation keeps its dates (the arrivals list) but not the guest's name or the PMS notes.
    db.session.execute(update(Reservation).where(Reservation.member_id.in_(person)).values(guest_name="", notes=""))
    for card in db.session.scalars(select(Card).where(Card.member_id == member.id,
                                                      Card.status.in_(("active", "frozen", "lost")))).all():
        cards.change_state(actor, card.card_no, "cancel", reason)
    store = store or (stores.get_store(actor.store_id) if actor.store_id else member.store)
    settled = {"points_forfeited": points.forfeit(actor, member.id, reason)}
    if held["principal"] or held["bonus"]:
        if wallet_rule == "refund":
            result = wallet.refund(actor, member.id, store=store, reason=reason)
            settled |= {"principal_refunded": result["refunded_principal"],
                        "bonus_forfeited": result["forfeited_bonus"]}
        else:
            result = wallet.forfeit(actor, member.id, store=store, reason=reason)
            settled |= {"principal_forfeited": result["forfeited_principal"],
                        "bonus_forfeited": result["forfeited_bonus"]}
    shown = {k: (format_fen(v) if k.startswith(("principal", "bonus")) else v) for k, v in settled.items()}
    log_request(actor, member.id, "erasure", reason, source=source, wallet_rule=wallet_rule, **shown)
    db.session.expire(member)
    return {"member_id": member.id, "anonymised_at": now, "wallet_rule": wallet_rule, **settled}


_PROFILE_KEYS = ("name", "mobile", "email", "birthday", "gender", "notes", "tags", "preferences")
ERASED = "[erased]"


def _erase_copies(member_id: int, now: datetime) -> list[int]:
    """The person's profile kept elsewhere goes too: the duplicates merged into the member (the
    same person's tombstones, and the merge rows' copy of their profile, full mobile and all) and
    the before/after values of every edit in the audit rows about any of them. Returns the ids of
    the person's rows (the member's, then the tombstones'), whose messages are blanked too."""
    from .merge_models import MemberMerge
    ids = [member_id, *db.session.scalars(select(Member.id).where(Member.merged_into_id == member_id))]
    if len(ids) > 1:
        db.session.execute(update(Member).where(Member.id.in_(ids[1:])).values(
            name="", mobile_last4="", email=None, birthday_month=None, birthday_day=None, birth_year=None,
            gender=None, notes="", preferences=[], anonymised_at=func.coalesce(Member.anonymised_at, now),
            updated_at=now),
            execution_options={"synchronize_session": False})
        db.session.execute(MemberTag.__table__.delete().where(MemberTag.member_id.in_(ids[1:])))
    for merge in db.session.scalars(select(MemberMerge).where(or_(MemberMerge.into_member_id.in_(ids),
                                                                  MemberMerge.from_member_id.in_(ids)))):
        merge.from_profile = {k: (ERASED if k in _PROFILE_KEYS else v) for k, v in (merge.from_profile or {}).items()}
    for row in db.session.scalars(select(AuditEntry).where(AuditEntry.entity_type.in_(("members", "member")),
                                                           AuditEntry.entity_id.in_([str(i) for i in ids]))):
        changes = (row.details or {}).get("changes")
        if isinstance(changes, dict) and any(k in _PROFILE_KEYS for k in changes):
            row.details = {**row.details, "changes": {k: ([ERASED, ERASED] if k in _PROFILE_KEYS else v)
                                                      for k, v in changes.items()}}
    db.session.flush()
    return ids


# Retention ----------------------------------------------------------------------------------

def retention_years() -> int:
    return int(current_app.config.get("PIPL_RETENTION_YEARS") or 0)


def _inactive_since(cutoff: datetime):
    """Conditions on members with no activity since `cutoff`: registered before it, and no bill
    (a checkout or an imported check), hotel stay, top-up or phone-card link since; not yet
    anonymised, not merged away, holding no stored value (money is settled by hand)."""
    from ..wallet.models import WalletAccount
    M = Member
    cutoff_day = cutoff.date()
    return [
        M.anonymised_at.is_(None), M.merged_into_id.is_(None), M.created_at < cutoff,
        ~exists().where(Checkout.member_id == M.id, Checkout.created_at >= cutoff),
        ~exists().where(Check.member_id == M.id, Check.closed_at >= cutoff),
        ~exists().where(Stay.member_id == M.id, Stay.departure >= cutoff_day),
        ~exists().where(WalletTopup.member_id == M.id, WalletTopup.created_at >= cutoff),
        ~exists().where(PhoneLink.member_id == M.id, PhoneLink.created_at >= cutoff),
        ~exists().where(WalletAccount.member_id == M.id, WalletAccount.balance > 0),
    ]


def retention_cutoff(years: int, now: datetime | None = None) -> datetime:
    now = now or utcnow()
    try:
        return now.replace(year=now.year - years)
    except ValueError:  # 29 February
        return now.replace(year=now.year - years, day=28)


def anonymise_inactive(years: int | None = None, *, dry_run: bool = False, batch: int = 200,
                       now: datetime | None = None, commit=None) -> dict:
    """Anonymise every member inactive for `years` (PIPL_RETENTION_YEARS; 0 is off), a batch
    at a time in id order, committing each batch (`commit`); safe to run again: an anonymised
    member is never picked twice. With dry_run, only counts."""
    years = retention_years() if years is None else years
    if years <= 0:
        return {"years": 0, "anonymised": 0, "inactive": 0, "off": True}
    cutoff = retention_cutoff(years, now)
    where = _inactive_since(cutoff)
    if dry_run:
        return {"years": years, "cutoff": cutoff, "inactive": db.session.scalar(
            select(func.count()).select_from(Member).where(*where)), "anonymised": 0}
    done, after = 0, 0
    reason = f"Retention: inactive for {years} years (since {cutoff.date().isoformat()})"
    while True:
        ids = db.session.scalars(select(Member.id).where(*where, Member.id > after).order_by(Member.id)
                                 .limit(batch)).all()
        if not ids:
            break
        for member_id in ids:
            try:
                with db.session.begin_nested():
                    anonymise(RETENTION_ACTOR, member_id, reason=reason, wallet_rule="forfeit", source="retention",
                              inactive_since=cutoff)
                done += 1
            except DomainError:  # anonymised, merged or active again meanwhile: not this one
                pass
        after = ids[-1]
        (commit or db.session.commit)()
        db.session.expunge_all()  # bounded memory: nothing of this batch stays in the session
    return {"years": years, "cutoff": cutoff, "anonymised": done, "inactive": done}
