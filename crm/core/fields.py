"""Marshmallow fields that read numbers strictly, shared by the JSON API and the staff forms.

One schema serves both: a JSON body carries real numbers and booleans, a form or a query
string carries text. While the API parses a JSON body (`json_body()` is set by
crm.core.api's parser) a number must be a JSON number and a flag a JSON boolean — "12",
12.5 or "yes" are refused instead of converted. Text from forms and query strings must be
ASCII digits: "1.5", "1e3" and full-width "１２" are refused, never truncated or guessed.
Every integer is bounded to the 32-bit range of the columns it lands in unless the field
declares its own range, so an over-long id is a 422 naming the field, not a database error.
"""
import re
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from marshmallow import fields, validate

from .bounds import MAX_ID

_json_body: ContextVar[bool] = ContextVar("json_body", default=False)
_DIGITS = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?[0-9]+(?:\.([0-9]+))?")


@contextmanager
def json_body():
    """Mark the values being loaded as parsed JSON (typed), not text."""
    token = _json_body.set(True)
    try:
        yield
    finally:
        _json_body.reset(token)


def in_json_body() -> bool:
    return _json_body.get()


def _bounded(kwargs, low, high):
    """Add the column's range unless the field states both ends of a narrower one."""
    validators = kwargs.get("validate") or []
    validators = [validators] if callable(validators) else list(validators)
    ranges = [v for v in validators if isinstance(v, validate.Range)]
    if not any(v.min is not None and v.max is not None for v in ranges):
        validators.append(validate.Range(min=low, max=high))
    kwargs["validate"] = validators
    return kwargs


class Int(fields.Integer):
    """A whole number: a JSON integer in a JSON body, ASCII digits in a form or query string."""

    default_error_messages = {"invalid": _l("Enter a whole number.")}

    def __init__(self, **kwargs):
        kwargs.pop("strict", None)  # always strict
        super().__init__(strict=True, **_bounded(kwargs, -MAX_ID - 1, MAX_ID))

    def _validated(self, value):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, str) and not _json_body.get():
            if not _DIGITS.fullmatch(value.strip()):
                raise self.make_error("invalid")
            return int(value.strip())
        if not isinstance(value, int):
            raise self.make_error("invalid")
        return value


def Id(**kwargs):  # noqa: N802 - reads like a field class at the call site
    """A row id: 1 … 2³¹−1."""
    return Int(**_bounded(kwargs, 1, MAX_ID))


class Bool(fields.Boolean):
    """true/false in JSON; in forms and query strings the usual spellings (on, 1, true …)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if _json_body.get() and not isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Date(fields.Date):
    """A date; one already stored as ISO text (e.g. in a JSON column) is written back as is."""

    def _serialize(self, value, attr, obj, **kwargs):
        return value if isinstance(value, str) else super()._serialize(value, attr, obj, **kwargs)


class DecimalString(fields.Field):
    """A percentage or multiplier as a decimal string with at most two places ("77.00", "1.50")."""

    default_error_messages = {"invalid": _l("Enter a number such as 77.50."),
                              "places": _l("Use at most two decimal places.")}

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else str(Decimal(value).quantize(Decimal("0.01")))

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or (_json_body.get() and value != value.strip()):
            raise self.make_error("invalid")
        match = _DECIMAL.fullmatch(value.strip())
        if not match or len(match.group(0)) > 12:
            raise self.make_error("invalid")
        if match.group(1) and len(match.group(1).rstrip("0")) > 2:
            raise self.make_error("places")
        return Decimal(match.group(0)).quantize(Decimal("0.01"))


MONEY_PATTERN = r"^-?[0-9]{1,8}(\.[0-9]{1,2})?$"
DECIMAL_PATTERN = r"^[0-9]{1,3}(\.[0-9]{1,2})?$"


def document_fields(api):
    """How these fields (and Money) appear in the OpenAPI document: decimal strings with a
    pattern; their numeric range becomes x-minimum/x-maximum (a string has no minimum)."""
    from .money import Money
    plugin = api.ma_plugin
    plugin.map_to_openapi_type(Money, "string", None)
    plugin.map_to_openapi_type(DecimalString, "string", None)

    def _pattern(_converter, field, **_kwargs):
        if isinstance(field, Money):
            return {"pattern": MONEY_PATTERN if field.allow_negative else MONEY_PATTERN.replace("^-?", "^"),
                    "examples": ["12.50"]}
        if isinstance(field, DecimalString):
            return {"pattern": DECIMAL_PATTERN, "examples": ["88.00"]}
        return {}
    plugin.converter.add_attribute_function(_pattern)
