"""The mirror's own rules, without a hub: deadlines of either kind, overdue, late events, and what
targets may hand it (ISO text for times, a mapping as the detail)."""
from __future__ import annotations

from datetime import date, datetime

from hub.tasks.mirror import deadline_of, effective, moment, words


def test_a_date_passes_at_the_end_of_its_day_and_a_time_at_that_time():
    assert deadline_of(date(2026, 3, 1)) == ("2026-03-01", datetime(2026, 3, 2))
    assert deadline_of("2026-03-01T10:00:00+03:00") == ("2026-03-01T07:00", datetime(2026, 3, 1, 7, 0))
    assert deadline_of("not a date") == ("", None) and deadline_of(None) == ("", None)


def test_overdue_only_for_tasks_still_to_do():
    due, before, after = datetime(2026, 3, 2), datetime(2026, 3, 1), datetime(2026, 3, 2, 0, 1)
    assert effective("in_progress", due, before) == "in_progress"
    assert effective("in_progress", due, after) == effective("open", due, after) == "overdue"
    for done in ("completed", "gone", "awaiting_review", "deferred"):
        assert effective(done, due, after) == done
    assert effective("open", None, after) == "open"


def test_times_and_details_in_the_shapes_targets_give():
    assert moment("2026-03-01T10:00:00+01:00") == datetime(2026, 3, 1, 9, 0)
    assert moment("2026-03-01 10:00:00") == datetime(2026, 3, 1, 10, 0)
    assert moment("") is None and moment(17) is None
    assert words({"status": "5", "sub": ""}) == "status: 5" and words(None) is None
