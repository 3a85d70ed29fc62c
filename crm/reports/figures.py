"""How report figures are written: money "12.34", rates "58.00" (per cent), null when the
denominator is zero. Rounding is half-up, as everywhere else (core/money.py).

Money and rates are strings (JSON keeps them exact) of their own types, `Money` and `Rate`,
so an export knows what a cell is without a list of column names: Excel gets a number with
a number format (exports.py), the page and CSV the same text as the JSON."""
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from flask_babel import gettext as _

from ..core.money import format_fen, round_fen
from ..errors import Invalid

MAX_DAYS = 3 * 366
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def end_exclusive(self) -> date:
        return self.end + timedelta(days=1)

    def before(self) -> "Period":
        """The period of the same length just before this one."""
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))


def period(start: date, end: date) -> Period:
    if not (FIRST_DAY <= start and end <= LAST_DAY):
        raise Invalid(_("Reports cover 2000 to 2100."), code="invalid_period", field="from")
    if end < start:
        raise Invalid(_("The period ends before it starts."), code="invalid_period", field="to")
    if (end - start).days >= MAX_DAYS:
        raise Invalid(_("A report covers at most three years."), code="invalid_period", field="to")
    return Period(start, end)


class Money(str):
    """An amount of money as report figures write it: "1234.50"."""
    __slots__ = ()


class Rate(str):
    """A percentage with two places: "20.71" means 20.71 %."""
    __slots__ = ()


def rate(numerator, denominator) -> Rate | None:
    """numerator ÷ denominator as a percentage with two places; None if the denominator is 0."""
    if not denominator:
        return None
    value = Decimal(numerator) * 100 / Decimal(denominator)
    return Rate(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def growth(current, previous) -> Rate | None:
    """current ÷ previous − 1, as a percentage; None without a previous figure."""
    if not previous:
        return None
    return rate(Decimal(current) - Decimal(previous), previous)


def money(fen) -> Money:
    return Money(format_fen(round_fen(Decimal(fen or 0))))


def money_per(fen, denominator) -> Money | None:
    """An amount divided by a count (ADR, spend per head), to the fen; None for a zero count."""
    if not denominator:
        return None
    return Money(format_fen(round_fen(Decimal(fen or 0) / Decimal(denominator))))


def parse_money(text: str) -> int:
    """"12.34" (as money() writes it) back to fen."""
    return round_fen(Decimal(text) * 100)
