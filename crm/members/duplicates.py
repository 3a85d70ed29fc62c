"""Likely duplicates of a member, for a manager to merge (members/merge.py).

Three rules, each one indexed query: the same name and birthday (month and day, and the year
when both have one); the same mobile written another way (a legacy import may have kept
"+86 139 …" or "0086…" beside "139…": candidates share the last 4 digits, then both numbers
are compared in their normal form); the same email ignoring case. Tombstones and erased
members are never suggested.
"""
import re

from sqlalchemy import func, select

from ..core.phones import normalise_mobile
from ..extensions import db
from .models import Member

LIMIT = 20


def _canonical(mobile: str | None) -> str | None:
    if not mobile:
        return None
    try:
        return normalise_mobile(mobile)
    except ValueError:  # not a number we accept today: compare its digits, without a mainland prefix
        digits = re.sub(r"\D", "", mobile)
        return re.sub(r"^(0086|86)(?=1[3-9]\d{9}$)", "", digits) or None


def _live(stmt, member: Member, limit: int | None = LIMIT):
    stmt = stmt.where(Member.id != member.id, Member.merged_into_id.is_(None),
                      Member.anonymised_at.is_(None)).order_by(Member.id)
    return stmt.limit(limit) if limit else stmt


def find(member: Member) -> list[dict]:
    """[{id, name, mobile, birthday, reasons: [...]}], by member id."""
    found: dict[int, tuple[Member, list[str]]] = {}

    def add(rows, reason):
        for row in rows:
            found.setdefault(row.id, (row, []))[1].append(reason)

    if member.birthday_month is not None and member.name:
        stmt = select(Member).where(Member.name == member.name, Member.birthday_month == member.birthday_month,
                                    Member.birthday_day == member.birthday_day)
        rows = db.session.scalars(_live(stmt, member)).all()
        add([r for r in rows if not (r.birth_year and member.birth_year and r.birth_year != member.birth_year)],
            "name_birthday")
    mine = _canonical(member.mobile)
    if mine and member.mobile_last4:
        # Every member with the same last 4 (about 100 in a million), compared before the limit:
        # limited first, the real duplicate could come after 20 others.
        rows = db.session.scalars(_live(select(Member).where(Member.mobile_last4 == member.mobile_last4),
                                        member, limit=None)).all()
        add([r for r in rows if _canonical(r.mobile) == mine][:LIMIT], "mobile")
    if member.email and member.email.strip():
        stmt = select(Member).where(func.lower(Member.email) == member.email.strip().lower())
        add(db.session.scalars(_live(stmt, member)).all(), "email")
    return [{"id": m.id, "name": m.name, "mobile": m.mobile, "birthday": m.birthday, "reasons": reasons}
            for m, reasons in sorted(found.values(), key=lambda pair: pair[0].id)]


def among(members) -> dict[int, list[int]]:
    """Within one page of search results: {member id: ids of the others on the page that look like
    the same guest} by the same rules (name and birthday, mobile in another form, email), so the
    desk sees a likely duplicate where it is searching; no query."""
    keys: dict[tuple, list[int]] = {}
    for m in members:
        if m.merged_into_id is not None or m.anonymised_at is not None:
            continue
        if m.birthday_month is not None:
            keys.setdefault(("birthday", m.name.strip(), m.birthday_month, m.birthday_day), []).append(m.id)
        if (mobile := _canonical(m.mobile)) is not None:
            keys.setdefault(("mobile", mobile), []).append(m.id)
        if m.email:
            keys.setdefault(("email", m.email.strip().lower()), []).append(m.id)
    found: dict[int, set[int]] = {}
    for ids in keys.values():
        for i in ids:
            found.setdefault(i, set()).update(j for j in ids if j != i)
    return {i: sorted(others) for i, others in found.items() if others}
