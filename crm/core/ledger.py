"""The two moves every ledger account (points, principal, bonus) makes, in one place.

`lock` takes the account's row lock for the rest of the transaction (PostgreSQL holds
it until commit; SQLite writers are serialised by BEGIN IMMEDIATE) and reads the balance
as it is now. `move` changes the balance with one conditional statement,
`UPDATE … SET balance = balance + :d WHERE id = :id [AND balance >= -:d]`, so no code
path can take an account below zero, whatever else runs at the same time.
"""
from functools import cache

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from .timeutil import utcnow


def lock(account):
    model = type(account)
    fresh = db.session.execute(update(model).where(model.id == account.id).values(updated_at=utcnow())
                               .returning(model.balance)).scalar_one()
    set_committed_value(account, "balance", fresh)
    return account


def lock_members_accounts(model, member_id: int, *, add: int = 0) -> list:
    """Lock and read the member's accounts of `model` in one statement (`UPDATE … RETURNING`),
    as persistent objects with their balances as they are now (after crediting `add`, which
    must not be negative: only `move` takes); [] if none exists yet."""
    if add < 0:
        raise ValueError("lock_members_accounts only credits; take with move()")
    return list(db.session.scalars(_lock_statement(model, bool(add)),
                                   {"of_member": member_id, "now": utcnow(), "credit": add}))


def move(account, delta: int, insufficient, *, need: int = 0):
    """Add `delta` (negative: take) to the balance; call `insufficient()` for the error to raise
    if the account holds less than would be taken (or less than `need`, when a net move both
    takes and gives)."""
    at_least = max(-delta, need)
    new = db.session.connection().execute(_move_statement(type(account).__table__, at_least > 0), {
        "account": account.id, "delta": delta, "at_least": at_least}).scalar_one_or_none()
    if new is None:
        raise insufficient()
    set_committed_value(account, "balance", new)


# The statements above, built once per process (core/rows.py says why).
@cache
def _lock_statement(model, crediting: bool):
    # Parameter names unlike any column's: an UPDATE would take a parameter named as a column as
    # one more column to set.
    values = {"updated_at": bindparam("now"), **({"balance": model.balance + bindparam("credit")} if crediting else {})}
    return (update(model).where(model.member_id == bindparam("of_member")).values(values).returning(model)
            .execution_options(populate_existing=True, synchronize_session=False))


@cache
def _move_statement(table, conditional: bool):
    stmt = update(table).where(table.c.id == bindparam("account"))  # a plain statement: the caller sets the object
    if conditional:
        stmt = stmt.where(table.c.balance >= bindparam("at_least"))
    return stmt.values(balance=table.c.balance + bindparam("delta")).returning(table.c.balance)


def reversal_mismatches(model, amount, ledger_name: str, voided_checkouts, *, must_reverse: str,
                        may_shrink: str | None = None) -> list[str]:
    """Audit of one ledger's reversals (`crm audit`). `voided_checkouts` selects the ids of
    voided bills; entries of kind `must_reverse` on those bills must be reversed exactly
    once and in full; `may_shrink` entries (earned points already spent) at most once and
    by no more than they were."""
    rev, orig = aliased(model), aliased(model)
    amount_of = lambda alias: getattr(alias, amount.key)  # noqa: E731
    problems = [f"{ledger_name} entry {i} (checkout {c}) is a reversal that names no entry"
                for i, c in db.session.execute(select(model.id, model.checkout_id).where(
                    model.kind == "reversal", model.reverses_id.is_(None)))]
    problems += [f"{ledger_name} entry {i} is reversed {n} times" for i, n in db.session.execute(
        select(model.reverses_id, func.count()).where(model.reverses_id.is_not(None))
        .group_by(model.reverses_id).having(func.count() > 1))]
    pairs = (select(rev.id, orig.id, orig.kind, orig.checkout_id, amount_of(rev), amount_of(orig))
             .join(orig, orig.id == rev.reverses_id))
    not_voided = (orig.checkout_id.is_(None) | orig.checkout_id.not_in(voided_checkouts)
                  | rev.checkout_id.is_(None) | (rev.checkout_id != orig.checkout_id))
    size_ok = amount_of(rev) == -amount_of(orig)
    if may_shrink:
        size_ok = size_ok | ((orig.kind == may_shrink) & (amount_of(rev) < 0) & (-amount_of(rev) < amount_of(orig)))
    for rid, oid, kind, checkout_id, back, taken, wrong_bill in db.session.execute(
            pairs.add_columns(not_voided).where(not_voided | ~size_ok)):
        problems.append(f"{ledger_name} entry {rid} reverses {back} of entry {oid} ({kind} {taken}, "
                        f"checkout {checkout_id}): " + ("the checkout is not voided, or is another bill"
                                                        if wrong_bill else "the wrong amount"))
    unreversed = (select(model.id, model.checkout_id).where(
        model.kind == must_reverse, model.checkout_id.in_(voided_checkouts),
        ~select(rev.id).where(rev.reverses_id == model.id).exists()))
    problems += [f"voided checkout {c}: {ledger_name} entry {i} ({must_reverse}) was not given back"
                 for i, c in db.session.execute(unreversed)]
    return problems

