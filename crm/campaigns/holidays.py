"""The holiday calendar: fixed dates, rules, Chinese lunar festivals and the admin's one-offs.

Lunar dates come from lunar_python (6tail's lunar calendar), not from a table of our own.
"""
import re
from datetime import date, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from lunar_python import Lunar
from sqlalchemy import extract, select

from ..core import audit
from ..core.actor import Actor
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from .models import Campaign, CustomHoliday

FIRST_YEAR, LAST_YEAR = 1901, 2099  # what the lunar tables cover


def _nth_weekday(year, month, weekday, n):
    """The nth given weekday (Monday = 0) of a month."""
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _lunar(month, day):
    return lambda year: _solar(Lunar.fromYmd(year, month, day).getSolar())


def _solar(s):
    return date(s.getYear(), s.getMonth(), s.getDay())


# key -> (name, date in a given year)
BUILT_IN = {
    "new_year": (_l("New Year's Day"), lambda y: date(y, 1, 1)),
    "spring_festival": (_l("Spring Festival"), _lunar(1, 1)),
    "lantern": (_l("Lantern Festival"), _lunar(1, 15)),
    "valentines": (_l("Valentine's Day"), lambda y: date(y, 2, 14)),
    "labour_day": (_l("Labour Day"), lambda y: date(y, 5, 1)),
    "mothers_day": (_l("Mother's Day"), lambda y: _nth_weekday(y, 5, 6, 2)),
    "fathers_day": (_l("Father's Day"), lambda y: _nth_weekday(y, 6, 6, 3)),
    "dragon_boat": (_l("Dragon Boat Festival"), _lunar(5, 5)),
    "qixi": (_l("Qixi Festival"), _lunar(7, 7)),
    "mid_autumn": (_l("Mid-Autumn Festival"), _lunar(8, 15)),
    "national_day": (_l("National Day"), lambda y: date(y, 10, 1)),
    "double_ninth": (_l("Double Ninth Festival"), _lunar(9, 9)),
}
_KEY = re.compile(r"^[a-z][a-z0-9_]{1,31}$")


def check_year(year) -> int:
    if not isinstance(year, int) or not FIRST_YEAR <= year <= LAST_YEAR:
        raise Invalid(_("Give a year from %(first)d to %(last)d.", first=FIRST_YEAR, last=LAST_YEAR),
                      code="invalid_year", field="year")
    return year


def for_year(year: int) -> list[dict]:
    """Every holiday of a year, by date: [{date, key, name, builtin}]."""
    check_year(year)
    days = [{"date": when(year), "key": key, "name": str(name), "builtin": True}
            for key, (name, when) in BUILT_IN.items()]
    days += [{"date": row.date, "key": row.key, "name": row.name, "builtin": False, "id": row.id}
             for row in db.session.scalars(select(CustomHoliday).where(extract("year", CustomHoliday.date) == year))]
    return sorted(days, key=lambda d: (d["date"], d["key"]))


def date_of(key: str, year: int) -> date | None:
    """The date of a holiday in a year (None if a one-off holiday is not on that year's calendar)."""
    if key in BUILT_IN:
        return BUILT_IN[key][1](year)
    return db.session.scalar(select(CustomHoliday.date).where(
        CustomHoliday.key == key, extract("year", CustomHoliday.date) == year).limit(1))


def known_keys() -> set[str]:
    return set(BUILT_IN) | set(db.session.scalars(select(CustomHoliday.key).distinct()))


def name_of(key: str) -> str:
    if key in BUILT_IN:
        return str(BUILT_IN[key][0])
    return db.session.scalar(select(CustomHoliday.name).where(CustomHoliday.key == key).limit(1)) or key


def add(actor: Actor, data: dict) -> CustomHoliday:
    """Add a one-off date; its key may repeat in other years (an annual event entered yearly)."""
    key = (data.get("key") or "").strip().lower()
    if not _KEY.match(key):
        raise Invalid(_("A key is 2 to 32 lower-case letters, digits or _, starting with a letter."),
                      code="invalid_key", field="key")
    if key in BUILT_IN:
        raise Conflict(_("That key belongs to a built-in holiday."), code="holiday_exists", field="key")
    name = (data.get("name") or "").strip()
    if not name:
        raise Invalid(_("Give the holiday a name."), code="name_required", field="name")
    when = data["date"]
    check_year(when.year)
    if db.session.scalar(select(CustomHoliday.id).where(CustomHoliday.key == key,
                                                         extract("year", CustomHoliday.date) == when.year)):
        raise Conflict(_("This holiday is already on that year's calendar."), code="holiday_exists", field="key")
    row = CustomHoliday(key=key, name=name, date=when)
    db.session.add(row)
    db.session.flush()
    audit.record(actor, "holiday.add", entity=row, key=key, date=when.isoformat())
    return row


def remove(actor: Actor, holiday_id: int):
    row = db.session.get(CustomHoliday, holiday_id)
    if row is None:
        raise NotFound(_("No such holiday."), code="holiday_not_found")
    users = db.session.scalar(select(Campaign.name).where(
        Campaign.holiday_key == row.key, Campaign.state.in_(("draft", "scheduled", "running", "paused"))).limit(1))
    if users:
        raise Conflict(_("Campaign %(name)s is planned on this holiday; change it first.", name=users),
                       code="holiday_in_use")
    audit.record(actor, "holiday.remove", entity=row, key=row.key, date=row.date.isoformat())
    db.session.delete(row)
