"""State changes decided by the database.

Every transition (void a checkout, freeze a card, schedule a campaign …) is one statement,
`UPDATE t SET status = :to, … WHERE id = :id AND status IN (:from)`, and its row count
decides who won. Reading the status in Python and writing it later lets two requests both
pass the check (six voids of one bill were all accepted that way). On PostgreSQL the loser
waits on the row lock, re-checks the WHERE against the winner's commit and changes nothing;
on SQLite writers are already serialised.
"""
from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db


def change(obj, transitions: dict, action: str, *, conflict, column: str = "status", **values):
    """Move `obj` by `action` of its transition table {action: (from states, to state)}, setting
    `values` too. If the row is no longer in a state the action starts from, raise
    `conflict(found_state)` (a 409 naming the state someone else left it in)."""
    model = type(obj)
    allowed, target = transitions[action]
    state = getattr(model, column)
    changed = db.session.execute(
        update(model).where(model.id == obj.id, state.in_(sorted(allowed)))
        .values({column: target, **values}).execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        found = db.session.scalar(select(state).where(model.id == obj.id))
        set_committed_value(obj, column, found)
        raise conflict(found)
    for key, value in {column: target, **values}.items():
        set_committed_value(obj, key, value)
    return obj
