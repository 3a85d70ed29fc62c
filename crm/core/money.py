"""Money: integer fen in the database, Decimal in Python, "12.34" in JSON.

All rounding of money lives here. Inputs with more than two decimal places are
rejected rather than rounded: a cashier typing 10.005 made a mistake.
"""
import re
from decimal import ROUND_HALF_UP, Decimal

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError, fields, validate

FEN = Decimal("0.01")
MAX_AMOUNT = Decimal("20000000")  # 20 million yuan: fits a 32-bit fen column, and no bill is larger


_AMOUNT = re.compile(r"-?[0-9]+(?:\.([0-9]+))?")


def parse_amount(value) -> int:
    """Parse "12.34" into fen; raise ValueError on anything else.

    Only a decimal string in ASCII digits is money: a JSON number (100.5 is a binary float),
    an exponent ("1e3"), full-width digits or a thousands separator are refused rather than
    guessed at, so what the cashier typed is what is charged."""
    if not isinstance(value, str):
        raise ValueError(_("Enter an amount such as 12.50."))
    match = _AMOUNT.fullmatch(value.strip())
    if not match:
        raise ValueError(_("Enter an amount such as 12.50."))
    if match.group(1) and len(match.group(1).rstrip("0")) > 2:
        raise ValueError(_("Use at most two decimal places."))
    dec = Decimal(match.group(0))
    if abs(dec) >= MAX_AMOUNT:
        raise ValueError(_("Enter an amount such as 12.50."))
    return int(dec.quantize(FEN) * 100)


def format_fen(fen: int | None) -> str | None:
    """1234 -> "12.34"; None stays None."""
    if fen is None:
        return None
    return str((Decimal(fen) / 100).quantize(FEN))


def percent_to_bp(percent) -> int:
    """A percentage as the API speaks it ("77.00" = pay 77%, i.e. 7.7折) -> basis points (7700)."""
    return int(Decimal(percent) * 100)


def round_fen(value: Decimal) -> int:
    """Round a fractional fen amount half-up to whole fen (the one rounding rule)."""
    return int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _in_yuan(validator):
    """A Range on a Money field is written in fen; its message must speak money strings."""
    if not isinstance(validator, validate.Range) or validator.error:
        return validator
    low, high = format_fen(validator.min), format_fen(validator.max)
    if low is not None and high is not None:
        message = _l("Enter an amount from %(low)s to %(high)s.", low=low, high=high)
    elif low is not None:
        message = _l("Enter an amount of at least %(low)s.", low=low)
    else:
        message = _l("Enter an amount of at most %(high)s.", high=high)
    return validate.Range(min=validator.min, max=validator.max, min_inclusive=validator.min_inclusive,
                          max_inclusive=validator.max_inclusive, error=message)


class Money(fields.Field):
    """Marshmallow field: "12.34" on the wire, integer fen inside."""

    default_error_messages = {"invalid": "Enter an amount such as 12.50.",
                              "negative": "The amount cannot be negative."}

    def __init__(self, *, allow_negative=False, validate=None, **kwargs):
        self.allow_negative = allow_negative
        validators = [validate] if callable(validate) else list(validate or [])
        super().__init__(validate=[_in_yuan(v) for v in validators], **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return format_fen(value)

    def _deserialize(self, value, attr, data, **kwargs):
        from .fields import in_json_body
        if in_json_body() and isinstance(value, str) and value != value.strip():
            raise self.make_error("invalid")  # JSON says exactly "12.50"; a form field may carry stray spaces
        try:
            fen = parse_amount(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        if fen < 0 and not self.allow_negative:
            raise self.make_error("negative")
        return fen
