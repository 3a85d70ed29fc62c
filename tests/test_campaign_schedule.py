"""When campaigns are due: the pure schedule rules, without a database."""
from datetime import date, datetime, time, timedelta, timezone
from types import SimpleNamespace

from crm.campaigns.schedule import birthdays_greeted_on, due, next_run

UTC = timezone.utc
SH = "Asia/Shanghai"


def campaign(**kw):
    base = dict(schedule="recurring", send_at=None, send_time=time(9, 0), recurrence="monthly", holiday_key=None,
                days_before=0, starts_on=date(2027, 1, 31), ends_on=None, scheduled_at=None)
    return SimpleNamespace(**{**base, **kw})


def beijing(*args):
    return datetime(*args, tzinfo=UTC) - timedelta(hours=8)


def test_monthly_on_the_31st_falls_on_the_last_day_of_short_months():
    c = campaign()
    days = [d for d in (date(2027, 2, 1) + timedelta(days=i) for i in range(120))
            if due(c, beijing(d.year, d.month, d.day, 10, 0), tz=SH)]
    assert days == [date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30), date(2027, 5, 31)]


def test_nothing_is_due_before_the_send_time_or_outside_the_dates():
    c = campaign(recurrence="daily", starts_on=date(2027, 5, 1), ends_on=date(2027, 5, 2))
    assert due(c, beijing(2027, 5, 1, 8, 59), tz=SH) == []
    assert [o.key for o in due(c, beijing(2027, 5, 1, 9, 0), tz=SH)] == ["2027-05-01"]
    assert due(c, beijing(2027, 5, 3, 10, 0), tz=SH) == []
    assert due(c, beijing(2027, 4, 30, 10, 0), tz=SH) == []


def test_birthday_runs_per_zone_and_29_february():
    c = campaign(schedule="birthday", starts_on=None)
    occ = due(c, datetime(2027, 2, 28, 2, 0, tzinfo=UTC), tz=SH, zones=[SH, "America/New_York"])
    # 10:00 on the 28th in Beijing; 21:00 on the 27th in New York, whose morning has passed too
    assert sorted((o.scope, o.key) for o in occ) == [("America/New_York", "2027-02-27"),
                                                      ("Asia/Shanghai", "2027-02-28")]
    early = due(c, datetime(2027, 2, 28, 12, 0, tzinfo=UTC), tz=SH, zones=["America/New_York"])
    assert early == []  # 07:00 on the 28th in New York: not yet
    assert birthdays_greeted_on(date(2027, 2, 28)) == [(2, 28), (2, 29)]
    assert birthdays_greeted_on(date(2028, 2, 28)) == [(2, 28)]
    assert birthdays_greeted_on(date(2028, 2, 29)) == [(2, 29)]


def test_next_run_for_people():
    holiday = campaign(schedule="holiday", holiday_key="mothers_day", days_before=2, starts_on=None,
                       send_time=time(10, 0))
    when = next_run(holiday, beijing(2027, 5, 1, 0, 0), tz=SH, holiday_date=lambda y: date(y, 5, 9))
    assert when == beijing(2027, 5, 7, 10, 0)
    once = campaign(schedule="once", send_at=beijing(2027, 6, 1, 12, 0))
    assert next_run(once, beijing(2027, 5, 1, 0, 0), tz=SH) == beijing(2027, 6, 1, 12, 0)


def test_missed_sends_are_caught_up_but_never_from_before_scheduling():
    daily = campaign(recurrence="daily", starts_on=date(2027, 5, 1), scheduled_at=beijing(2027, 5, 1, 8, 0))
    late = due(daily, beijing(2027, 5, 4, 8, 0), tz=SH, catch_up_days=2)  # down since the 1st; 4th not yet 09:00
    assert [o.key for o in late] == ["2027-05-02", "2027-05-03"]
    fresh = campaign(recurrence="daily", starts_on=date(2027, 5, 1), scheduled_at=beijing(2027, 5, 4, 7, 0))
    assert [o.key for o in due(fresh, beijing(2027, 5, 4, 9, 30), tz=SH, catch_up_days=2)] == ["2027-05-04"]
    birthday = campaign(schedule="birthday", starts_on=None, scheduled_at=beijing(2027, 1, 1, 0, 0))
    occ = due(birthday, beijing(2027, 3, 11, 7, 0), tz=SH, zones=[SH], catch_up_days=1)
    assert [o.key for o in occ] == ["2027-03-10"]  # yesterday's birthdays, greeted a morning late
