"""Monthly targets for a restaurant's member KPIs (issue 17.6), beside the actual figures.

Like the hotel's segment plan (segments.py), a manager sets per store and month: new members
(a count), stored-value growth (per cent, as the spec and kpis.py define it: this month's top-up
principal ÷ the same figure in the month compared with − 1; 0 or more, over 100 for more than a
doubling), card-issue rate and member share (per cent, 0–100, as kpis.py defines them: walk-in
card-issue rate and member share of bills) and spend per head (money). The actual figures are
the ones member_kpis computes for the calendar month; stored-value growth is read twice, month on
month (against last month) and year on year (同比, against the same month last year), each
against the same target, and has no actual (nor gap) when the month compared with had no top-up.
Gap = actual − target (percentage points for rates and growth); None where either is.
"""
import re
from datetime import date
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from ..core import audit
from ..core.actor import Actor
from ..core.money import format_fen, parse_amount
from ..core.timeutil import utcnow
from ..errors import Invalid
from ..extensions import db
from ..stores import service as stores
from ..wallet import service as wallet
from .figures import Money, Rate, growth, money
from .kpis import bounds, member_kpis
from .models import KpiTarget
from .segments import report_period

# (key, kind): "count" a whole number, "money" fen as "12.50", "rate" basis points as "12.50" (%)
# "growth" basis points of a growth rate, 0 or more (the column's check), as "150.00" (%)
FIELDS = (("new_members", "count"), ("stored_value_growth", "growth"), ("card_issue_rate", "rate"),
          ("member_share", "rate"), ("spend_per_head", "money"))
KINDS = dict(FIELDS)
MAX_COUNT = 10_000_000
MAX_FEN = 10**13  # 100 billion yuan: far beyond any store, within a 64-bit sum
MAX_GROWTH = Decimal(1_000_000)  # per cent: ten thousand-fold; stored ×100, within a 32-bit column
# ASCII digits, at most two places: not "１２" from an IME, "1e2" or "0x10" (Decimal reads the first two)
_PERCENT = re.compile(r"[0-9]{1,7}(?:\.[0-9]{1,2})?")


def parse_target(key: str, text) -> int | None:
    """A target as written on the wire or in the form -> its stored integer; "" or None: not set.
    Raises Invalid naming the field `key`."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    kind = KINDS[key]
    if kind == "count":
        if isinstance(text, bool) or not (isinstance(text, int) or (isinstance(text, str) and text.strip().isascii()
                                                                     and text.strip().isdigit())):
            raise Invalid(_("Enter a whole number of members, 0 or more."), code="invalid_target", field=key)
        value = int(text)
        if not 0 <= value <= MAX_COUNT:
            raise Invalid(_("Enter a whole number of members, 0 or more."), code="invalid_target", field=key)
        return value
    if kind == "money":
        try:
            fen = parse_amount(str(text).strip())
        except ValueError:
            raise Invalid(_("Enter an amount such as 12.50."), code="invalid_target", field=key) from None
        if not 0 <= fen <= MAX_FEN:
            raise Invalid(_("Enter an amount of at least 0.00."), code="invalid_target", field=key)
        return fen
    written_ = str(text).strip()
    if kind == "growth":
        if written_.startswith("-") and _PERCENT.fullmatch(written_.removeprefix("-")):
            raise Invalid(_("Enter a growth of 0 or more, in per cent."), code="invalid_target", field=key)
        if not _PERCENT.fullmatch(written_) or Decimal(written_) > MAX_GROWTH:
            raise Invalid(_("Enter a growth in per cent such as 12.50."), code="invalid_target", field=key)
        return int(Decimal(written_) * 100)
    if not _PERCENT.fullmatch(written_.removeprefix("-")):
        raise Invalid(_("Enter a percentage such as 12.50."), code="invalid_target", field=key)
    percent = Decimal(written_)
    if not 0 <= percent <= 100:
        raise Invalid(_("A rate is from 0 to 100 %."), code="invalid_target", field=key)
    return int(percent * 100)


def written(key: str, value: int | None):
    """A stored target as the API and the form write it: 12, "12.50"."""
    if value is None:
        return None
    kind = KINDS[key]
    if kind == "count":
        return value
    if kind == "money":
        return Money(format_fen(value))
    return Rate(format_fen(value))  # rates and growth: basis points read like fen: 1250 -> "12.50"


def _check_year(year: int):
    if not 2000 <= year <= 2100:
        raise Invalid(_("Give a year from 2000 to 2100."), code="invalid_year", field="year")


def year_targets(store_code: str, year: int) -> list[dict]:
    """The twelve months of a store's year, each with its five targets (None: not set)."""
    store = stores.get_by_code(store_code)
    _check_year(year)
    saved = {t.month: t for t in db.session.scalars(select(KpiTarget).where(
        KpiTarget.store_id == store.id, KpiTarget.year == year))}
    return [{"month": m, **{key: written(key, getattr(saved[m], key)) if m in saved else None
                            for key, _kind in FIELDS}} for m in range(1, 13)]


def save_targets(actor: Actor, store_code: str, year: int, months: list[dict], *, partial: bool = False) -> int:
    """Set the targets of the months given ({"month": 3, "new_members": 40, "card_issue_rate": "12.50", ...});
    a month's five targets are replaced as given (a missing or empty one is cleared). With `partial`
    only the targets a line names are written and the database keeps the others (the page sends the
    cells a manager changed, so two managers on one month keep each other's cells). Every value is
    checked before anything is written: Invalid names "months.<i>.<field>"."""
    store = stores.get_by_code(store_code)
    _check_year(year)
    parsed, seen = {}, set()
    for i, line in enumerate(months):
        month = line.get("month")
        if isinstance(month, bool) or not isinstance(month, int) or not 1 <= month <= 12:
            raise Invalid(_("A month is 1 to 12."), code="invalid_month", field=f"months.{i}.month")
        if month in seen:
            raise Invalid(_("Month %(month)s is given twice.", month=month), code="duplicate_month",
                          field=f"months.{i}.month")
        seen.add(month)
        values = {}
        for key, _kind in FIELDS:
            if partial and key not in line:
                continue
            try:
                values[key] = parse_target(key, line.get(key))
            except Invalid as exc:
                exc.field = exc.details["field"] = f"months.{i}.{key}"  # the API's details name the line too
                raise
        parsed[month] = values
    # One upsert per month: two managers saving the same month at once both land (the later
    # one's values win) instead of the second failing on the unique key. In month order, whatever
    # order they were sent in: each upsert locks its row, so two saves of the same months in
    # opposite orders would otherwise deadlock (one held March waiting for April, the other April
    # waiting for March).
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    now = utcnow()
    for month, values in sorted(parsed.items()):
        stmt = insert(KpiTarget.__table__).values(store_id=store.id, year=year, month=month, updated_at=now,
                                                  **values)
        db.session.execute(stmt.on_conflict_do_update(index_elements=["store_id", "year", "month"],
                                                      set_={**values, "updated_at": now}))
    audit.record(actor, "kpi_targets.save", entity_type="kpi_targets", store_id=store.id, year=year,
                 months=sorted(parsed))
    return len(parsed)


def _gap(kind, actual, target):
    if actual is None or target is None:
        return None
    if kind == "count":
        return actual - target
    diff = Decimal(actual) - Decimal(target)  # growth and rates: percentage points
    return Money(f"{diff:.2f}") if kind == "money" else Rate(f"{diff:.2f}")


def _topups(store, p) -> int:
    start, end = bounds(p, store.timezone)
    return wallet.report_figures(start, end, start, store_id=store.id)["topup_principal"]


def beside_actuals(store_code: str, year: int, month: int) -> dict:
    """Target, actual and gap of each figure for a store's calendar month, plus the stored-value
    growth's comparison figures. Rows are in FIELDS order, stored-value growth as two rows."""
    store = stores.get_by_code(store_code)
    p = report_period(year, month)
    k = member_kpis(store_code, p)
    target = db.session.scalar(select(KpiTarget).where(KpiTarget.store_id == store.id, KpiTarget.year == year,
                                                       KpiTarget.month == month))
    targets = {key: written(key, getattr(target, key)) if target else None for key, _kind in FIELDS}
    this = _topups(store, p)
    # Reports begin in January 2000: there is nothing before it to compare with.
    last_month = _topups(store, report_period(*((year, month - 1) if month > 1 else (year - 1, 12)))) \
        if (year, month) > (2000, 1) else 0
    last_year = _topups(store, report_period(year - 1, month)) if year > 2000 else 0
    actual = {"new_members": k["new_members"], "card_issue_rate": k["card_issue_rate"],
              "member_share": k["member_check_share"], "spend_per_head": k["spend_per_head"]}
    rows = []
    for key, kind in FIELDS:
        if key != "stored_value_growth":
            rows.append({"key": key, "target": targets[key], "actual": actual[key],
                         "gap": _gap(kind, actual[key], targets[key])})
            continue
        for basis, before in (("month_on_month", last_month), ("year_on_year", last_year)):
            value = growth(this, before)  # this ÷ before − 1; None when nothing was topped up before
            rows.append({"key": f"stored_value_growth_{basis}", "target": targets[key], "actual": value,
                         "gap": _gap(kind, value, targets[key]), "this_period": money(this),
                         "compared_with": money(before), "growth_rate": value})
    return {"store_code": store.code, "year": year, "month": month, "rows": rows}


def month_of(start: date, end: date) -> tuple[int, int] | None:
    """The calendar month a period lies in, if it lies in one."""
    return (start.year, start.month) if (start.year, start.month) == (end.year, end.month) else None


def whole_month(start: date, end: date) -> tuple[int, int] | None:
    """The calendar month a period is exactly (the API adds targets only then)."""
    month = month_of(start, end)
    if month and start.day == 1 and end == report_period(*month).end:
        return month
    return None
