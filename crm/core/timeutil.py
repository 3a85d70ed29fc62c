"""Time: UTC in the database, business dates in the store's time zone.

The one clock
-------------
Every "what time is it?" in the application goes through `utcnow()` (an aware UTC
datetime) or `now_ts()` (epoch seconds). Both read a replaceable clock function, so
tests can run the whole application at any simulated time:

* `set_clock(fn)` installs `fn` (returning an aware datetime) and returns the previous one;
* `offset_clock(delta)` is the system clock shifted by `delta`; it keeps ticking, so
  timeouts, sleeps and retry delays behave as they do for real;
* `ticking_from(at)` is an offset clock that reads `at` now and ticks on from there;
* `frozen(at)` is a context manager that stops the clock at `at` for its block.

Durations (how long did this take?) are measured with `time.monotonic()` and are not
affected by any of this.

Tests only: a shifted clock in child processes
----------------------------------------------
The test suite can run with a shifted clock (tests/conftest.py, `CRM_TEST_CLOCK`). The
gunicorn and `flask` processes it starts are told the shift through the environment
variable `CRM_TEST_CLOCK_OFFSET_SECONDS`. That variable is honoured only when pytest's own
`PYTEST_VERSION` is also in the environment, i.e. only in pytest and the processes it
starts; a production process ignores it (and logs a warning saying so). There is no
setting to move the clock of a deployed service.
"""
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, available_timezones

from flask import current_app

Clock = Callable[[], datetime]

OFFSET_ENV = "CRM_TEST_CLOCK_OFFSET_SECONDS"
_PYTEST_ENV = "PYTEST_VERSION"  # set by pytest (>= 8.2) for the run and inherited by its children


def system_clock() -> datetime:
    return datetime.now(timezone.utc)


_clock: Clock = system_clock


def utcnow() -> datetime:
    return _clock()


def now_ts() -> float:
    """The clock as epoch seconds (what `time.time()` would say)."""
    return _clock().timestamp()


def set_clock(fn: Clock | None) -> Clock:
    """Install `fn` as the clock (None: the system clock); returns the clock it replaced."""
    global _clock
    previous, _clock = _clock, fn or system_clock
    return previous


def get_clock() -> Clock:
    return _clock


def offset_clock(delta: timedelta) -> Clock:
    """The system clock moved by `delta`, still ticking."""
    def clock() -> datetime:
        return system_clock() + delta
    clock.offset = delta
    return clock


def ticking_from(at: datetime) -> Clock:
    """A clock that reads `at` now and keeps ticking from there."""
    return offset_clock(_aware(at) - system_clock())


@contextmanager
def frozen(at: datetime) -> Iterator[datetime]:
    """Stop the clock at `at` (aware, or naive UTC) for the block."""
    at = _aware(at)
    previous = set_clock(lambda: at)
    try:
        yield at
    finally:
        set_clock(previous)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _install_offset_from_environment() -> None:
    raw = os.environ.get(OFFSET_ENV)
    if not raw:
        return
    if _PYTEST_ENV not in os.environ:
        logging.getLogger(__name__).warning("%s is set but ignored: it only applies under pytest", OFFSET_ENV)
        return
    set_clock(offset_clock(timedelta(seconds=float(raw))))


_install_offset_from_environment()


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def default_tz_name() -> str:
    return current_app.config.get("CRM_TIMEZONE", "Asia/Shanghai")


def zone(name: str | None = None) -> ZoneInfo:
    return ZoneInfo(name or default_tz_name())


def local_today(tz_name: str | None = None) -> date:
    return utcnow().astimezone(zone(tz_name)).date()


def is_valid_timezone(name: str) -> bool:
    return name in _ZONES


_ZONES = available_timezones()
