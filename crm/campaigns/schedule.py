"""When a campaign is due: pure date arithmetic, no database.

Each due occurrence has a key that names it for good ("once", or the date it is for), so
the delivery key (campaign, occurrence, member) can refuse a second message. Birthday
campaigns run per store time zone: the morning of the birthday where the member's store is.
"""
import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ..core.timeutil import as_utc


@dataclass(frozen=True)
class Occurrence:
    key: str                    # "once" or an ISO date
    scope: str = ""             # birthday: the store time zone it covers
    birthday: date | None = None  # birthday: the greeting date there


def _in_window(campaign, day: date) -> bool:
    return (campaign.starts_on is None or day >= campaign.starts_on) and \
        (campaign.ends_on is None or day <= campaign.ends_on)


def _recurs_on(campaign, day: date) -> bool:
    anchor = campaign.starts_on or day
    if campaign.recurrence == "daily":
        return True
    if campaign.recurrence == "weekly":
        return day.weekday() == anchor.weekday()
    if campaign.recurrence == "monthly":  # the 31st falls on the month's last day
        return day.day == min(anchor.day, calendar.monthrange(day.year, day.month)[1])
    return False


def birthdays_greeted_on(day: date) -> list[tuple[int, int]]:
    """(month, day) pairs greeted on a date: 29 Feb birthdays on 28 Feb in common years."""
    pairs = [(day.month, day.day)]
    if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
        pairs.append((2, 29))
    return pairs


def due(campaign, now: datetime, *, tz: str, zones=(), holiday_date=None) -> list[Occurrence]:
    """The occurrences of a campaign that are due at `now` (UTC).

    `tz`: the chain's zone for once/recurring/holiday schedules; `zones`: every store zone
    (birthdays); `holiday_date(year)`: the date of the campaign's holiday in a year."""
    if campaign.schedule == "once":
        return [Occurrence("once")] if campaign.send_at is not None and as_utc(campaign.send_at) <= now else []
    if campaign.schedule == "birthday":
        out = []
        for name in sorted(set(zones)):
            local = now.astimezone(ZoneInfo(name))
            if local.time() >= campaign.send_time and _in_window(campaign, local.date()):
                target = local.date() + timedelta(days=campaign.days_before)
                out.append(Occurrence(target.isoformat(), scope=name, birthday=target))
        return out
    local = now.astimezone(ZoneInfo(tz))
    today = local.date()
    if local.time() < campaign.send_time or not _in_window(campaign, today):
        return []
    if campaign.schedule == "recurring":
        return [Occurrence(today.isoformat())] if _recurs_on(campaign, today) else []
    if campaign.schedule == "holiday" and holiday_date is not None:
        target = today + timedelta(days=campaign.days_before)
        holiday = holiday_date(target.year)
        return [Occurrence(holiday.isoformat())] if holiday == target else []
    return []


def next_run(campaign, now: datetime, *, tz: str, holiday_date=None, horizon_days=400) -> datetime | None:
    """When the campaign next sends (for people; the scheduler does not use it)."""
    if campaign.schedule == "once":
        return as_utc(campaign.send_at)
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    for offset in range(horizon_days):
        day = local.date() + timedelta(days=offset)
        at = datetime.combine(day, campaign.send_time, zone)
        if at < local or not _in_window(campaign, day):
            continue
        if campaign.schedule == "birthday":
            return at
        if campaign.schedule == "recurring" and _recurs_on(campaign, day):
            return at
        if campaign.schedule == "holiday" and holiday_date is not None:
            target = day + timedelta(days=campaign.days_before)
            if holiday_date(target.year) == target:
                return at
    return None
