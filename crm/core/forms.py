"""Helpers for HTML forms that validate with the same marshmallow schemas as the API,
so a rule is written once and the UI shows its message next to the field."""
import re

from flask_babel import gettext
from marshmallow import ValidationError

from ..errors import DomainError
from ..extensions import db


def form_to_dict(form, *, lists=(), checkboxes=(), nested_checkboxes=None, drop_empty=True):
    """Turn request.form into the dict a schema expects.

    Empty text inputs are dropped (optional fields stay unset); `lists` are
    comma-separated inputs; `checkboxes` become booleans; `nested_checkboxes` maps a
    dict field to its checkbox inputs, e.g. {"marketing_consent": {"sms": "consent_sms"}}."""
    data = {}
    for key, value in form.items():
        if key == "csrf_token" or key in checkboxes:
            continue
        value = value.strip()
        if key in lists:
            data[key] = [v.strip() for v in value.replace("，", ",").split(",") if v.strip()]
        elif value or not drop_empty:
            data[key] = value
    for key in checkboxes:
        data[key] = key in form
    for key, mapping in (nested_checkboxes or {}).items():
        data[key] = {sub: name in form for sub, name in mapping.items()}
        for name in mapping.values():
            data.pop(name, None)
    return data


def errors_of(exc, flatten=()) -> dict:
    """{field: message} for a ValidationError or DomainError; `_form` for the rest.
    Errors inside the nested fields named in `flatten` come out as "field.sub"."""
    if isinstance(exc, ValidationError):
        out = {}
        for field, messages in exc.messages.items():
            if field in flatten and isinstance(messages, dict):
                out.update({f"{field}.{sub}": _first(m) for sub, m in messages.items()})
            else:
                out[field] = _first(messages)
        return out
    if isinstance(exc, DomainError):
        return {exc.field or "_form": str(exc.message), "_details": exc.details}
    raise TypeError(exc)


def _first(messages):
    if isinstance(messages, dict):
        return _first(next(iter(messages.values())))
    if isinstance(messages, (list, tuple)):
        return _first(messages[0]) if messages else ""
    return _translate(str(messages))


def _translate(message: str) -> str:
    """Translate marshmallow's own messages (listed in messages.py); ours already are."""
    match = _LENGTH.match(message)
    if match:
        return gettext("Length must be between %(min)s and %(max)s.", min=match[1], max=match[2])
    match = _RANGE.match(message)
    if match:
        return gettext("Must be greater than or equal to %(min)s and less than or equal to %(max)s.",
                       min=match[1], max=match[2])
    if message.startswith("Must be one of: "):
        return gettext("Must be one of: %(choices)s.", choices=message[16:-1])
    return gettext(message)


_RANGE = re.compile(r"^Must be greater than or equal to (\S+) and less than or equal to (\S+)\.$")
_LENGTH = re.compile(r"^Length must be between (\d+) and (\d+)\.$")


def commit_or_errors(save, flatten=()):
    """Run a form's save and commit: (result, {}); on bad input roll back and return
    (None, {field: message}) for the page to show beside its fields."""
    try:
        result = save()
        db.session.commit()
        return result, {}
    except (ValidationError, DomainError) as exc:
        db.session.rollback()
        return None, errors_of(exc, flatten)
