"""Programme rules: the SPEC's demo programme as defaults, overridable by an admin.

A fresh database needs no rows: every rule reads its default until changed.
"""
from flask_babel import gettext as _

from ..core import audit
from ..core.actor import Actor
from ..errors import Invalid
from ..extensions import db
from .models import Setting

# key -> (default, validator returning an error message or None)
RULES = {
    "card_fee": (2000, lambda v: None if isinstance(v, int) and 0 <= v <= 10_000_00 else
                 "The card fee is an amount between 0 and 10000."),
    "replacement_fee": (2000, lambda v: None if isinstance(v, int) and 0 <= v <= 10_000_00 else
                        "The replacement fee is an amount between 0 and 10000."),
}


def get(key: str):
    """The current value of a rule (its default if never changed)."""
    row = db.session.get(Setting, key)
    return row.value["v"] if row is not None else RULES[key][0]


def all_rules() -> dict:
    return {key: get(key) for key in RULES}


def update(actor: Actor, changes: dict) -> dict:
    """Change rules; every value is validated before any is written."""
    for key, value in changes.items():
        if key not in RULES:
            raise Invalid(_("Unknown rule %(key)s.", key=key), code="unknown_rule", field=key)
        error = RULES[key][1](value)
        if error:
            raise Invalid(error, code="invalid_rule", field=key)
    for key, value in changes.items():
        row = db.session.get(Setting, key)
        if row is None:
            db.session.add(Setting(key=key, value={"v": value}, updated_by=actor.staff_id))
        else:
            row.value = {"v": value}
            row.updated_by = actor.staff_id
    audit.record(actor, "programme.update", entity_type="programme", changes=changes)
    return all_rules()
