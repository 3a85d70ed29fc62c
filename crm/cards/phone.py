"""The phone card: a private link the front desk gives a member, opening a page that shows
the member's rotating card code (codes.dynamic_payload). The link is a bearer secret like
the plastic card itself: only its SHA-256 is stored, and issuing a new one revokes the old."""
import hashlib
import secrets

from sqlalchemy import select

from ..core import audit, locks
from ..core.actor import Actor
from ..extensions import db
from ..members import service as members
from .models import PhoneLink


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_link(actor: Actor, member_id: int) -> str:
    """A new link token for the member (the previous link stops working). Under the member
    lock, so two desks issuing at once replace one link instead of both inserting one."""
    member = members.get_member(member_id)
    locks.lock_member(member.id)
    from ..members import pipl
    pipl.refuse_if_anonymised(member.id)  # nor a link to an erased member's page
    token = secrets.token_urlsafe(24)
    link = db.session.scalar(select(PhoneLink).where(PhoneLink.member_id == member.id))
    if link is None:
        link = PhoneLink(member_id=member.id)
        db.session.add(link)
    link.token_hash, link.created_by = _digest(token), actor.staff_id
    db.session.flush()
    audit.record(actor, "card.phone_link", entity=link, member_id=member.id)
    return token


def revoke_link(actor: Actor, member_id: int) -> bool:
    """Cancel the member's link (a lost phone). False if they had none."""
    member = members.get_member(member_id)
    locks.lock_member(member.id)
    link = db.session.scalar(select(PhoneLink).where(PhoneLink.member_id == member.id))
    if link is None:
        return False
    audit.record(actor, "card.phone_link_revoked", entity=link, member_id=member.id)
    db.session.delete(link)
    db.session.flush()
    return True


def has_link(member_id: int) -> bool:
    return db.session.scalar(select(PhoneLink.id).where(PhoneLink.member_id == member_id)) is not None


def member_for(token: str):
    """The member a phone link belongs to, or None for an unknown or replaced link."""
    if not token or len(token) > 64:
        return None
    member_id = db.session.scalar(select(PhoneLink.member_id).where(PhoneLink.token_hash == _digest(token)))
    member = members.find_member(member_id) if member_id else None
    if member is not None and member.merged_into_id is not None:  # a merged duplicate's link: its survivor,
        member = members.find_member(member.merged_into_id)  # where its value, card and consent now are
    return member
