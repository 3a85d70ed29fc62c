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

from sqlalchemy import insert
from sqlalchemy.orm import make_transient_to_detached
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
    """A row just written with a statement, as a persistent object of this session (no SQL)."""
    obj = detached(model, columns, **related)
    db.session.add(obj)
    return obj
