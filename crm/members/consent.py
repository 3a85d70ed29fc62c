"""Withdrawing consent: by the member on their own page, or by an SMS reply (TD, 退订, STOP…).

Staff change consent through the member form (service.update). Here a member or a gateway
withdraws one channel: one conditional UPDATE that only a granted consent passes, so a
withdrawal sent twice (a double tap, a gateway's retry) changes and audits once. The audit
row is the consent's history: when, which channel and the source (`member`, `sms_reply`).
"""
import re
import unicodedata

from sqlalchemy import update

from ..core import audit
from ..core.actor import Actor
from ..core.phones import normalise_mobile
from ..core.timeutil import utcnow
from ..extensions import db
from .models import Member

# "service" is receipts and alerts; "sms" and "email" are marketing.
CHANNELS = ("sms", "email", "service")
SMS_GATEWAY = Actor(staff_id=None, username="sms-gateway", role="system")

# Replies that mean "stop marketing SMS" (the carriers' and the law's usual words).
OPT_OUT_WORDS = frozenset({"TD", "T", "退订", "退訂", "STOP"})  # 退訂: Hong Kong, Macau, Taiwan
_TRAILING = re.compile(r"[\s.。!！,，;；~～]+$")


def withdraw(actor: Actor, member: Member, channel: str, *, source: str, **details) -> bool:
    """Withdraw one channel's consent. True if it was granted and is now withdrawn; False if
    it was already withdrawn (nothing written)."""
    if channel not in CHANNELS:
        raise ValueError(channel)
    flag = getattr(Member, f"{channel}_consent")
    now = utcnow()
    changed = db.session.execute(
        update(Member).where(Member.id == member.id, flag.is_(True))
        .values({f"{channel}_consent": False, f"{channel}_consent_at": now}),
        execution_options={"synchronize_session": False}).rowcount
    if not changed:
        return False
    db.session.expire(member, [f"{channel}_consent", f"{channel}_consent_at"])
    audit.record(actor, "member.consent_withdrawn", entity=member, channel=channel, source=source, **details)
    return True


def is_opt_out(text: str) -> bool:
    """A reply that is exactly an opt-out word, in any width or case, with trailing punctuation
    ("td", "ＴＤ", "退订。"); a longer message ("T恤有货吗") is not."""
    word = _TRAILING.sub("", unicodedata.normalize("NFKC", text or "").strip()).upper()
    return word in OPT_OUT_WORDS


def sms_reply(mobile: str, text: str, *, address: str | None = None, message_id: str | None = None) -> str:
    """Act on a member's reply to an SMS: withdraw SMS marketing consent if it is an opt-out.
    Returns what happened: withdrawn, already_withdrawn, not_an_opt_out or unknown_mobile."""
    if not is_opt_out(text):
        return "not_an_opt_out"
    compact = re.sub(r"[\s\-()]", "", mobile or "")
    if re.fullmatch(r"86\d{11}", compact):  # many gateways write +86 138… as 86138…
        compact = "+" + compact
    try:
        stored = normalise_mobile(compact)
    except ValueError:
        return "unknown_mobile"
    member = db.session.query(Member).filter(Member.mobile == stored).one_or_none()
    if member is None:
        return "unknown_mobile"
    actor = Actor(staff_id=None, username=SMS_GATEWAY.username, role=SMS_GATEWAY.role, address=address)
    details = {"reply": unicodedata.normalize("NFKC", text).strip()[:16]}
    if message_id:
        details["message_id"] = message_id
    return "withdrawn" if withdraw(actor, member, "sms", source="sms_reply", **details) else "already_withdrawn"
