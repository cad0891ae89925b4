"""The mirror's own rules: deadlines of either kind, overdue, late events, and what targets may
hand it (ISO text for times, a mapping as the detail), without a hub; with one, the rows of a new link."""
from __future__ import annotations

from datetime import date, datetime

import pytest

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


@pytest.mark.parametrize("deadline", [None, "2031-05-01", "2020-01-01T10:00:00Z"])
def test_a_new_link_and_its_task_status_are_written_alike_on_every_engine(make_hub, deadline):
    """`insert_link` writes a task's link and status row in one statement on PostgreSQL: the rows
    are the ones the two-statement way writes (a link, then `opened`), and a link the step has
    already is neither written again nor given a second status row."""
    from sqlalchemy import select

    from hub.store.models import RuleLink, TaskStatus
    from hub.store.sql import insert_ignore
    from hub.tasks.mirror import insert_link, opened
    services = make_hub().extensions["hub"]
    now = datetime(2026, 12, 5, 12, 0)

    def link(run_id):
        return {"installation_id": 7, "rule_id": 3, "run_id": run_id, "step_uid": "s1", "object_type": "deal",
                "object_id": "42", "status": "open", "created_at": now, "connector": "asana", "connection_id": 9,
                "made": "task", "external_id": f"t{run_id}", "name": "Onboard ACME", "url": "https://t/1"}

    with services.db.begin() as s:
        one = insert_link(s, link(1), now, deadline)
        again = insert_link(s, dict(link(1), external_id="other"), now, deadline)
        two = insert_ignore(s, RuleLink, link(2), ["run_id", "step_uid"])     # the two-statement way
        opened(s, two, link(2), now, deadline)
    assert one is not None and again is None
    with services.db.begin() as s:
        links = {r.run_id: r for r in s.scalars(select(RuleLink))}
        statuses = {r.link_id: r for r in s.scalars(select(TaskStatus))}
    assert len(links) == 2 and len(statuses) == 2 and links[1].id == one

    def columns(row, skip):
        return {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key not in skip}
    assert columns(links[1], {"id", "run_id", "external_id"}) == columns(links[2], {"id", "run_id", "external_id"})
    first, second = statuses[one], statuses[two]
    assert first.external_id == "t1" and second.external_id == "t2"
    assert columns(first, {"id", "link_id", "external_id"}) == columns(second, {"id", "link_id", "external_id"})
    assert first.status == ("overdue" if deadline and deadline.startswith("2020") else "open")
