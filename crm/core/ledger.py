"""The two moves every ledger account (points, principal, bonus) makes, in one place.

`lock` takes the account's row lock for the rest of the transaction (PostgreSQL holds
it until commit; SQLite writers are serialised by BEGIN IMMEDIATE) and reads the balance
as it is now. `move` changes the balance with one conditional statement,
`UPDATE … SET balance = balance + :d WHERE id = :id [AND balance >= -:d]`, so no code
path can take an account below zero, whatever else runs at the same time.
"""
from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from .timeutil import utcnow


def lock(account):
    model = type(account)
    fresh = db.session.execute(update(model).where(model.id == account.id).values(updated_at=utcnow())
                               .returning(model.balance)).scalar_one()
    set_committed_value(account, "balance", fresh)
    return account


def move(account, delta: int, insufficient):
    """Add `delta` (negative: take) to the balance; call `insufficient()` for the error to raise
    if the account holds less than would be taken."""
    model = type(account)
    stmt = update(model).where(model.id == account.id)
    if delta < 0:
        stmt = stmt.where(model.balance >= -delta)
    new = db.session.execute(stmt.values(balance=model.balance + delta).returning(model.balance)).scalar_one_or_none()
    if new is None:
        raise insufficient()
    set_committed_value(account, "balance", new)
