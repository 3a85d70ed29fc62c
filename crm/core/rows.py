"""Rows written with statements instead of the unit of work, for the hot paths.

A flush of the ORM unit of work costs about a millisecond of CPU (dependency sort, one
object per row); a checkout used to run five. These helpers write rows as plain INSERTs
(several rows in one statement, ids back in order) and, where a caller needs objects,
hand back persistent objects built from the values just written, without reading them.

The statements themselves are built once per process (`functools.cache`): building one and
computing its cache key costs about as much CPU as psycopg sending it (bench/checkout_profile.py),
and SQLAlchemy keeps the key of a statement object it has seen. Values go in as parameters.
"""
from functools import cache

from sqlalchemy import event, insert
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db


def insert_rows(model, rows: list[dict], *, returning=True) -> list[int]:
    """Insert rows of `model`'s table as one statement (multi-row VALUES … RETURNING id, in the
    order given): for the hot paths, which need no objects back, only ids. No unit-of-work
    flush; column defaults apply as in any INSERT."""
    result = db.session.connection().execute(insert_into(model.__table__, returning_ids=returning), rows)
    return list(result.scalars()) if returning else []


@cache
def insert_into(table, *, returning_ids=False):
    """`INSERT INTO table` taking its values as parameters (one dict, or a list for several
    rows), built once; with `returning_ids`, the new ids in the order the rows were given."""
    stmt = insert(table)
    return stmt.returning(table.c.id, sort_by_parameter_order=True) if returning_ids else stmt


def detached(model, columns: dict, **related):
    """An object of a row as a query would have loaded it, in no session yet: every column
    given, these relationships set as loaded."""
    obj = model(**columns)
    make_transient_to_detached(obj)
    for name, value in related.items():
        set_committed_value(obj, name, value)
    return obj


def loaded(model, columns: dict, **related):
    """A row just written with a statement, as a persistent object of this session (no SQL).
    If the transaction that wrote it rolls back, the object leaves the session, as a row the
    unit of work had inserted would (SQLite hands a rolled-back id out again)."""
    obj = detached(model, columns, **related)
    session = db.session()
    session.add(obj)
    session.info.setdefault(_WRITTEN, []).append((session.get_nested_transaction() or session.get_transaction(), obj))
    return obj


_WRITTEN = "rows_written"  # session.info: [(transaction that wrote it, object)]


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session, previous_transaction):
    written = session.info.get(_WRITTEN)
    if not written:
        return
    kept = []
    for transaction, obj in written:
        if _within(transaction, previous_transaction):
            if obj in session:
                session.expunge(obj)
        else:
            kept.append((transaction, obj))
    session.info[_WRITTEN] = kept


@event.listens_for(Session, "after_commit")
def _committed(session):
    if not session.in_nested_transaction():  # the outermost commit (a savepoint released fires this too)
        session.info.pop(_WRITTEN, None)


def _within(transaction, ancestor) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False
