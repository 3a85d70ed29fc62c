"""Time: UTC in the database, business dates in the store's time zone."""
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo, available_timezones

from flask import current_app


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


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
