"""Helpers for HTML forms that validate with the same marshmallow schemas as the API,
so a rule is written once and the UI shows its message next to the field."""
import hashlib
import json
import re
import uuid

from flask import g, request
from flask_babel import gettext
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..errors import ConcurrentChange, DomainError, rollback_for
from ..extensions import db
from . import idempotency, locks
from .bounds import forbidden_character_in


def form_to_dict(form, *, lists=(), checkboxes=(), nested_checkboxes=None, drop_empty=True):
    """Turn request.form into the dict a schema expects.

    Empty text inputs are dropped (optional fields stay unset); `lists` are
    comma-separated inputs; `checkboxes` become booleans; `nested_checkboxes` maps a
    dict field to its checkbox inputs, e.g. {"marketing_consent": {"sms": "consent_sms"}}."""
    data = {}
    for key, value in form.items():
        if key in ("csrf_token", "form_token") or key in checkboxes:
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


def commit_or_errors(save, flatten=(), *, once: str | None = None):
    """The unit of work of every HTML form: run `save`, commit once and return (result, {});
    on bad input roll back (keeping what the error says must be kept, e.g. a wrong PIN try)
    and return (None, {field: message}) for the page to show beside its fields.

    `once` is the form's one-time token (`form_token()` in the template); forms that move
    money or stock pass it. The token is taken under the same lock as an API
    Idempotency-Key and remembered with the result in the same transaction, so a form sent
    twice (a double click, a browser resend, four tabs) gets the first result back with
    `replayed` set and never a second effect. What is replayed is `save`'s result if it is a
    JSON-able dict (e.g. the id of what was made), else an empty dict.
    A deadlock or serialization failure is retried a few times, then reported on the form."""
    if once is not None and not _TOKEN.match(once):
        return None, {"_form": gettext("This form is out of date; reload the page and try again.")}
    bad = forbidden_character_in({k: request.form.getlist(k) for k in request.form})
    if bad:
        return None, {bad.split(".", 1)[0]: gettext("Remove the control characters from this field.")}
    key = f"form:{once}" if once is not None else None
    sent = _fingerprint() if key else None
    for _attempt in range(locks.RETRIES):
        try:
            if key:
                done = idempotency.recall(g.actor.staff_id, key)
                if done is not None:
                    db.session.rollback()
                    if done[1] != sent:  # the token of another form, or of this page with other details
                        return None, {"_form": gettext("This form was already sent with other details; "
                                                       "reload the page to start again."),
                                      "_details": {"code": "form_already_sent", "first": json.loads(done[0])}}
                    return {**json.loads(done[0]), "replayed": True}, {}
            result = save()
            if key:
                idempotency.remember(g.actor.staff_id, key, json.dumps(result if isinstance(result, dict) else {}),
                                     sent)
            db.session.commit()
            return result, {}
        except (ValidationError, DomainError) as exc:
            if isinstance(exc, DomainError):
                rollback_for(exc)
            else:
                db.session.rollback()
            return None, errors_of(exc, flatten)
        except DBAPIError as exc:
            db.session.rollback()
            if not (locks.is_retryable(exc) or (key and isinstance(exc, IntegrityError))):
                raise
    return None, errors_of(ConcurrentChange())


_TOKEN = re.compile(r"^[0-9a-f]{32}$")
# Not part of what a form "says": tokens, the till's signed card reference, and PINs (which
# must never be stored, not even hashed: six digits are quickly guessed back from a hash).
_NOT_FINGERPRINTED = {"csrf_token", "form_token", "till_token", "member_ref", "pin", "current_pin"}


def _fingerprint() -> str:
    """What this form submission asks for (its page and fields), so a token replays only the
    same request and never answers a different form with another's result."""
    fields = sorted((k, v) for k, v in request.form.items(multi=True) if k not in _NOT_FINGERPRINTED)
    raw = json.dumps([request.method, request.path, fields], ensure_ascii=False).encode()
    return "ui:" + hashlib.sha256(raw).hexdigest()[:61]


def new_form_token() -> str:
    """A fresh one-time token for a form that moves money or stock."""
    return uuid.uuid4().hex
