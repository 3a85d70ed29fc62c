"""marshmallow's built-in messages, listed so `pybabel extract` puts them in the catalogue;
the UI translates them when it shows a field error (see forms.errors_of)."""
from flask_babel import lazy_gettext as _l

BUILTIN = (
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
)
