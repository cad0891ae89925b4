"""A template's delay becomes a deadline at the moment the task is created, in the account's time
zone: N calendar days, or N working days (Saturday and Sunday skipped), at a time of day. Pure
functions of an injected `now`, so tests need no clock."""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DAY_KINDS = ("working", "calendar")
MAX_DELAY_DAYS = 3650
TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def zone(name: str) -> ZoneInfo:
    """The account's zone; ValueError (for the field `timezone`) when it is not an IANA name."""
    if not isinstance(name, str) or not name or len(name) > 64 or name not in _zones():
        raise ValueError("an IANA time zone name such as Europe/Warsaw or UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("an IANA time zone name such as Europe/Warsaw or UTC") from None


_ZONES: frozenset[str] | None = None


def _zones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones()) | {"UTC"}
    return _ZONES


def parse_time(value: str) -> time:
    match = TIME.match(value or "")
    if not match:
        raise ValueError("a time of day as HH:MM (24 hours)")
    return time(int(match.group(1)), int(match.group(2)))


def add_days(start: date, days: int, day_kind: str) -> date:
    """`days` calendar days after `start`, or `days` working days (each step skips Saturday and
    Sunday: Friday or Saturday + 1 is Monday); 0 working days on a weekend is the next Monday."""
    if day_kind == "calendar":
        return start + timedelta(days=days)
    current, left = start, days
    while left > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            left -= 1
    while current.weekday() >= 5:
        current += timedelta(days=1)
    return current


def deadline(now_utc: datetime, days: int, day_kind: str, time_of_day: str, tz_name: str) -> datetime:
    """The deadline as an aware datetime in the account's zone. `now_utc` is naive UTC (the hub's
    clock) or aware."""
    if now_utc.tzinfo is None:
        now_utc = now_utc.replace(tzinfo=timezone.utc)
    tz = zone(tz_name)
    local_today = now_utc.astimezone(tz).date()
    day = add_days(local_today, days, day_kind)
    return datetime.combine(day, parse_time(time_of_day), tzinfo=tz)


def as_utc(moment: datetime) -> datetime:
    """Naive UTC, as the hub stores times."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None)
