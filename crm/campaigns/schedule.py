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


def _days_to_run(campaign, local: datetime, catch_up_days: int) -> list[date]:
    """Local days whose send time has passed and may still be owed: today (once its send
    time has come) and up to `catch_up_days` before it, but none before the campaign was
    scheduled, so a scheduler that was down at send time catches up and a new campaign
    does not reach into the past."""
    since = as_utc(campaign.scheduled_at).astimezone(local.tzinfo).date() if campaign.scheduled_at else local.date()
    days = [local.date() - timedelta(days=back) for back in range(catch_up_days, 0, -1)]
    if local.time() >= campaign.send_time:
        days.append(local.date())
    return [d for d in days if d >= since and _in_window(campaign, d)]


def due(campaign, now: datetime, *, tz: str, zones=(), holiday_date=None, catch_up_days: int = 0) -> list[Occurrence]:
    """The occurrences of a campaign that are due at `now` (UTC), oldest first.

    `tz`: the chain's zone for once/recurring/holiday schedules; `zones`: every store zone
    (birthdays); `holiday_date(year)`: the date of the campaign's holiday in a year;
    `catch_up_days`: how far back a missed send is still made (the run key stops repeats)."""
    if campaign.schedule == "once":
        return [Occurrence("once")] if campaign.send_at is not None and as_utc(campaign.send_at) <= now else []
    if campaign.schedule == "birthday":
        out = []
        for name in sorted(set(zones)):
            for day in _days_to_run(campaign, now.astimezone(ZoneInfo(name)), catch_up_days):
                target = day + timedelta(days=campaign.days_before)
                out.append(Occurrence(target.isoformat(), scope=name, birthday=target))
        return out
    out = []
    for day in _days_to_run(campaign, now.astimezone(ZoneInfo(tz)), catch_up_days):
        if campaign.schedule == "recurring" and _recurs_on(campaign, day):
            out.append(Occurrence(day.isoformat()))
        elif campaign.schedule == "holiday" and holiday_date is not None:
            target = day + timedelta(days=campaign.days_before)
            if holiday_date(target.year) == target:
                out.append(Occurrence(target.isoformat()))
    return out


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
