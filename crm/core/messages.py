"""marshmallow's built-in messages, listed so `pybabel extract` puts them in the catalogue;
the UI translates them when it shows a field error (see forms.errors_of)."""
from flask_babel import lazy_gettext as _l

QTY_RANGE = "Quantity must be 1 to 999."

BUILTIN = (
    _l("Quantity must be 1 to 999."),
    _l("String does not match expected pattern."),
    _l("Must be greater than or equal to %(min)s and less than or equal to %(max)s."),
    _l("Missing data for required field."),
    _l("Not a valid email address."),
    _l("Not a valid string."),
    _l("Not a valid integer."),
    _l("Not a valid boolean."),
    _l("Field may not be null."),
    _l("Unknown field."),
    _l("Must be one of: %(choices)s."),
    _l("Length must be between %(min)s and %(max)s."),
    _l("Longer than maximum length %(max)s."),
    _l("Not a valid number."),
    _l("Not a valid date."),
    _l("Not a valid time."),
    _l("Not a valid datetime."),
    _l("The amount cannot be negative."),
    _l("2–64 letters, digits, dot, dash or underscore."),
    _l("2–32 letters, digits, dash or underscore."),
)
