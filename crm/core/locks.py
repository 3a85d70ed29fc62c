"""One lock order for every operation that moves a member's value.

A transaction that changes a member's points, stored value, coupons or draws takes its
locks in this order, in every code path:

1. the member (`lock_member`, first, before any balance is read for a decision);
2. the checkout row whose state it changes (the conditional UPDATE in core/states.py);
3. the member's PIN row; then the company account row a sign-for-bill charges or its void reverses
   (crm/corporate: one conditional UPDATE against the credit limit); then coupons and draw tickets;
4. the member's wallet accounts, principal then bonus (or both in one statement);
5. the member's points account (and its lots);
6. shared stock rows: a gift rule or draw prize, then its coupon type.

A merge of a duplicate into a survivor (members/merge.py) is the one operation that takes two
member locks at step 1: both members, lowest id first, before anything is read for a decision.
Two merges of overlapping pairs therefore take their common member in the same order and queue;
an operation of one member (a bill, a top-up) holds one member lock only, so it never holds one
while waiting for the other. Once merged, the duplicate is a tombstone: nothing is written for it
again (a bill naming it, a top-up are refused `member_merged`; its card resolves to the survivor
and that bill locks the tombstone, then the survivor — a tombstone is locked only on its way to
its survivor, never after it). Its bills belong to the survivor, so their voids lock the survivor
(and reverse onto the survivor's accounts the entries written on the tombstone's); a void that
waited while the merge moved its bill re-reads the bill and takes the survivor's lock too. The
merge's points transfer locks the two points accounts highest id first, as the expiry does.
A bulk job (crm/bulk/service.py) locks a chunk's members the same way, lowest id first, and then
their points accounts highest id first. A hotel stay's posting or import (crm/stays) holds the stays
rows it upserted, then takes the members whose earning changes (the old earner and the stay's member)
lowest id first in one statement, then their points accounts highest id first, as a bulk chunk does.
A merge locks the duplicate's stays rows (id order) before its two member locks, so it too goes
stays rows → members; stays and reservation imports write their rows in (store, number) order.
A company account's payment or limit change takes that account row only, and nothing holding an
account row waits for a member lock, so no cycle forms through it.

Because step 1 is one lock per member, two operations of one member (a close and a void,
a top-up and a refund, two PIN tries) queue behind each other instead of locking the
same rows in opposite orders and deadlocking. The nightly points expiry skips step 1: it
locks points accounts only, a batch at a time in descending id order. Nothing else (but a
merge, above) locks two members' accounts but a referral reward (members/referrals.py): it holds the referee's
rows, then takes the referrer's yearly counter row and points account without the referrer's
member lock. Referrers are older members (smaller ids), so every such wait runs from a larger
id to a smaller one, as the expiry's do: no cycle can form. Inserting a member's new rows (a
campaign's coupon, a draw earned by a bill) locks no existing row and needs no step.

On PostgreSQL the member lock is `SELECT … FOR NO KEY UPDATE` on the member's row: it
does not block inserts that merely reference the member (their foreign-key check takes
KEY SHARE), only other writers of that member. SQLite serialises all writers at
`BEGIN IMMEDIATE` (core/database.py), so there it takes nothing more.

A deadlock or serialization failure that still happens is run again by the unit of work
(RETRIES attempts in all) and otherwise answered 409 `concurrent_change` (`is_retryable`).
"""
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ..extensions import db

RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock_detected, serialization_failure
RETRIES = 3
_LOCK_MEMBER = text("SELECT id FROM members WHERE id = :id FOR NO KEY UPDATE")  # built once: every bill sends it


def lock_member(member_id: int | None):
    """Take the per-member lock for the rest of this transaction (step 1 above)."""
    if member_id is None or db.session.get_bind().dialect.name != "postgresql":
        return
    db.session.connection().execute(_LOCK_MEMBER, {"id": member_id})


_LOCK_MEMBERS = text("SELECT id FROM members WHERE id = ANY(:members) ORDER BY id FOR NO KEY UPDATE")
_LOCK_ACCOUNTS = text("SELECT id FROM points_accounts WHERE member_id = ANY(:members) ORDER BY id DESC "
                      "FOR NO KEY UPDATE")


def lock_members(member_ids, *, points_accounts: bool = False):
    """Several members' locks in one statement, lowest id first (as a merge takes its two), then,
    with `points_accounts`, their points accounts highest id first (as the nightly expiry takes
    them): a bulk chunk or a stays chunk (the docstring above says why no cycle can form)."""
    if not member_ids or db.session.get_bind().dialect.name != "postgresql":  # SQLite: BEGIN IMMEDIATE
        return
    ids = sorted(member_ids)
    db.session.execute(_LOCK_MEMBERS, {"members": ids})
    if points_accounts:
        db.session.execute(_LOCK_ACCOUNTS, {"members": ids})


def is_retryable(exc: BaseException) -> bool:
    """A deadlock or serialization failure: the transaction lost a race and may simply run again."""
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES
