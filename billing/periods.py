"""Monthly budget periods: a month starts on its first day at 00:00 UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from django.utils import timezone


def now() -> datetime:
    """The clock of billing, in one place so tests can move it."""
    return timezone.now()


def month_start(moment: datetime) -> date:
    utc = moment.astimezone(UTC)
    return date(utc.year, utc.month, 1)


def next_month_start(month: date) -> datetime:
    """When the period beginning on `month` ends, as an aware UTC datetime."""
    following = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime(following.year, following.month, 1, tzinfo=UTC)


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()
