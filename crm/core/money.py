"""Money: integer fen in the database, Decimal in Python, "12.34" in JSON.

All rounding of money lives here. Inputs with more than two decimal places are
rejected rather than rounded: a cashier typing 10.005 made a mistake.
"""
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from flask_babel import gettext as _
from marshmallow import ValidationError, fields

FEN = Decimal("0.01")
MAX_AMOUNT = Decimal("20000000")  # 20 million yuan: fits a 32-bit fen column, and no bill is larger


def parse_amount(value) -> int:
    """Parse "12.34", 12 or Decimal into fen; raise ValueError on anything else."""
    if isinstance(value, bool) or value is None:
        raise ValueError(_("Enter an amount such as 12.50."))
    if isinstance(value, float):
        value = repr(value)
    try:
        dec = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(_("Enter an amount such as 12.50.")) from None
    if not dec.is_finite() or abs(dec) >= MAX_AMOUNT:
        raise ValueError(_("Enter an amount such as 12.50."))
    if dec != dec.quantize(FEN):
        raise ValueError(_("Use at most two decimal places."))
    return int(dec * 100)


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


class Money(fields.Field):
    """Marshmallow field: "12.34" on the wire, integer fen inside."""

    default_error_messages = {"invalid": "Enter an amount such as 12.50.",
                              "negative": "The amount cannot be negative."}

    def __init__(self, *, allow_negative=False, **kwargs):
        self.allow_negative = allow_negative
        super().__init__(**kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return format_fen(value)

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            fen = parse_amount(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        if fen < 0 and not self.allow_negative:
            raise self.make_error("negative")
        return fen
