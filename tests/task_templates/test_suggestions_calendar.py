"""Next-task suggestions (an e-mail with a signed single-use accept link, through a real SMTP
server; made at once when the admin says so) and the team calendar's sharing modes, as a colleague,
the owner and an admin see them in the page and the API."""
from __future__ import annotations

import re
from datetime import datetime

import pytest
from sqlalchemy import func, select

from hub import connectors
from hub.connectors.contract.webhooks import CrmEvent
from hub.events import record
from hub.rules.catalogs import CACHE
from hub.store.models import HubTask, TaskSuggestion
from tests.rules import fake
from tests.rules.fake import WORLD
from tests.task_templates.conftest import TEAM, make_world, template

WEDNESDAY = datetime(2026, 12, 2, 8, 0)


@pytest.fixture
def mail_world(make_hub, smtp):
    world = make_world(make_hub, **{"mail.backend": "smtp", "mail.smtp_port": smtp.port})
    world.smtp = smtp
    yield world
    connectors.unregister(TEAM)
    fake.unregister()
    CACHE.clear()


@pytest.fixture(autouse=True)
def wednesday(monkeypatch):
    monkeypatch.setattr("hub.tasks.apply.utcnow", lambda: WEDNESDAY)


def setup_next_task(world, mode: str = "suggest") -> dict:
    admin = world.client("u1")
    base = f"/api/v1/installations/{world.iid}/tasks"
    types = {t["name"]: t["id"] for t in admin.get(base + "/options").get_json()["types"]}
    made = admin.post(base + "/sets", json={"name": "Follow-ups", "templates": [
        template(world.team_id, "Follow up {{ deal.title }}", type_id=types["Offer"])]}).get_json()
    answer = admin.put(base + "/next-tasks", json={"from_type_id": types["Email"],
                                                   "template_id": made["templates"][0]["id"], "mode": mode})
    assert answer.status_code == 200, answer.get_json()
    return made


def completed(world, task_id: str = "T9", at: str = "2026-12-02T09:00:00Z") -> None:
    WORLD.deals["42"] = {"id": "42", "title": "Deal 42", "status": "open", "pipeline_id": "1", "value": 1}
    with world.app.app_context(), world.services.db.begin() as s:
        record(world.services, s, world.iid, CrmEvent(
            "task.completed", "task", task_id, f"done-{task_id}-{at}", datetime(2026, 12, 2, 9),
            {"id": task_id, "subject": "Send the price list", "done": True}, None, version=at,
            extra={"task_type": "Email", "completed_by": {"id": "u2", "email": "ben@example.com"},
                   "record": {"type": "deal", "id": "42"}}), source="webhook")


def test_a_suggestion_is_accepted_once_from_the_e_mail_link(mail_world):
    world = mail_world
    setup_next_task(world)
    completed(world)
    completed(world)                                  # the webhook delivered twice: one suggestion
    world.drain()
    (to, message), = world.smtp.wait_for(1)
    body = message.get_payload(decode=True).decode()
    assert to == ["ben@example.com"] and "Send the price list" in body
    link = re.search(r"http\S+/tasks/suggestions/\d+/accept\?token=\w+", body).group()
    path = link.split("//", 1)[1].split("/", 1)[1]
    anonymous = world.app.test_client()
    assert anonymous.get("/" + path[:-1] + ("0" if path[-1] != "0" else "1")).status_code == 404   # forged
    for _ in range(2):                                # a mail scanner fetching the link accepts nothing
        shown = anonymous.get("/" + path)
        assert shown.status_code == 200 and 'id="accept-form"' in shown.get_data(as_text=True)
    with world.services.db.begin() as s:
        assert s.scalar(select(TaskSuggestion.status)) == "open"

    def click():                                      # the page's form, as the browser sends it
        page = anonymous.get("/" + path).get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        token = re.search(r'name="token" value="([^"]+)"', page).group(1)
        return anonymous.post("/" + path.split("?")[0], data={"csrf_token": csrf, "token": token})
    first = click()
    assert first.status_code == 200 and "Next task accepted" in first.get_data(as_text=True)
    second = anonymous.get("/" + path)                # a second click
    assert second.status_code == 200 and "Already answered" in second.get_data(as_text=True)
    world.drain()
    assert [t["name"] for t in WORLD.tasks.values()] == ["Follow up Deal 42"]
    assert next(iter(WORLD.tasks.values()))["task_type"] == "Offer"
    with world.services.db.begin() as s:
        suggestion = s.scalar(select(TaskSuggestion))
        assert suggestion.status == "accepted" and suggestion.task_id is not None
        assert s.scalar(select(func.count()).select_from(HubTask)) == 1
    # the hub's list: nothing left to answer; accepting again through the API is refused
    ben = world.client("u2")
    assert ben.get(f"/api/v1/installations/{world.iid}/tasks/suggestions").get_json() == {"suggestions": []}
    again = ben.post(f"/api/v1/installations/{world.iid}/tasks/suggestions/{suggestion.id}/accept")
    assert again.status_code == 409 and again.get_json()["outcome"] == "already"


def test_suggestions_are_listed_for_their_person_and_can_be_dismissed(world):
    setup_next_task(world)
    completed(world)
    ben, cleo = world.client("u2"), world.client("u3")
    base = f"/api/v1/installations/{world.iid}/tasks/suggestions"
    listed = ben.get(base).get_json()["suggestions"]
    assert [s["template"] for s in listed] == ["Follow up {{ deal.title }}"]
    assert cleo.get(base).get_json() == {"suggestions": []}          # not hers
    assert cleo.post(f"{base}/{listed[0]['id']}/dismiss").status_code == 404
    page = ben.get(f"/i/{world.iid}/tasks/suggestions").get_data(as_text=True)
    assert "Send the price list" in page and "Accept" in page
    assert ben.post(f"{base}/{listed[0]['id']}/dismiss").get_json()["outcome"] == "dismissed"
    world.drain()
    assert WORLD.tasks == {}


def test_the_next_task_is_made_at_once_when_the_admin_says_so(world):
    setup_next_task(world, mode="create")
    completed(world)
    world.drain()
    assert [t["name"] for t in WORLD.tasks.values()] == ["Follow up Deal 42"]


# -- the team calendar ------------------------------------------------------------------------------------
MODES = {"Email": "none", "Offer": "free_busy", "Project": "read_only", "Meeting": "full"}


def four_tasks(world) -> dict[str, int]:
    """Olga's four tasks on Wednesday 2 December, one per sharing mode (set on their types)."""
    admin = world.client("u1")
    base = f"/api/v1/installations/{world.iid}/tasks"
    types = {t["name"]: t["id"] for t in admin.get(base + "/options").get_json()["types"]}
    for name, mode in MODES.items():
        assert admin.patch(base + f"/types/{types[name]}", json={"sharing": mode}).status_code == 200
    made = admin.post(base + "/sets", json={"name": "Week", "templates": [
        template(world.team_id, f"{name} task", type_id=types[name], delay_days=0, day_kind="calendar",
                 time_of_day=f"1{n}:00") for n, name in enumerate(MODES)]}).get_json()
    WORLD.deals["42"] = {"id": "42", "title": "Deal 42", "status": "open", "pipeline_id": "1", "value": 1}
    applied = admin.post(base + "/apply", json={"set_id": made["id"], "object_type": "deal", "object_id": "42",
                                               "key": "k1"})
    assert applied.status_code == 202, applied.get_json()
    assert admin.post(base + "/apply", json={"set_id": made["id"], "object_type": "deal", "object_id": "42",
                                             "key": "k1"}).status_code == 202     # the same key: once
    world.drain()
    assert len(WORLD.tasks) == 4
    with world.services.db.begin() as s:
        return {t.task_type: t.id for t in s.scalars(select(HubTask))}


def week(client, world) -> dict[str, dict]:
    answer = client.get(f"/api/v1/installations/{world.iid}/tasks/calendar?week=2026-W49")
    assert answer.status_code == 200, answer.get_json()
    return {t["time"]: t for p in answer.get_json()["people"] for t in p["tasks"]}


def test_every_sharing_mode_as_a_colleague_sees_it_in_the_api_and_the_page(world):
    ids = four_tasks(world)
    ben = world.client("u2")
    seen = week(ben, world)
    assert sorted(seen) == ["11:00", "12:00", "13:00"]                      # none: not there at all
    busy = seen["11:00"]
    assert busy["title"] == "Busy" and busy["busy"] and "type" not in busy and "url" not in busy
    assert (seen["12:00"]["title"], seen["12:00"]["can_edit"]) == ("Project task", False)
    assert (seen["13:00"]["title"], seen["13:00"]["can_edit"]) == ("Meeting task", True)
    page = ben.get(f"/i/{world.iid}/tasks/calendar?week=2026-W49").get_data(as_text=True)
    assert "Busy" in page and "Project task" in page and "Meeting task" in page
    assert "Email task" not in page and "Offer task" not in page
    assert page.count('name="due"') == 1                                    # only the full-access task is editable
    # the owner sees and edits everything; an admin is a colleague here
    olga = week(world.client("u1"), world)
    assert [olga[t]["title"] for t in sorted(olga)] == ["Email task", "Offer task", "Project task", "Meeting task"]
    assert all(t["can_edit"] for t in olga.values())
    assert sorted(week(world.client("u3"), world)) == ["11:00", "12:00", "13:00"]
    # editing: read-only refused, full access completes and moves through the target
    base = f"/api/v1/installations/{world.iid}/tasks/calendar"
    assert ben.post(f"{base}/{ids['Project']}/complete").status_code == 403
    assert ben.post(f"{base}/{ids['Email']}/complete").status_code == 404
    assert ben.patch(f"{base}/{ids['Offer']}", json={"due": "2026-12-03T10:00"}).status_code == 403
    moved = ben.patch(f"{base}/{ids['Meeting']}", json={"due": "2026-12-03T10:30"})
    assert moved.status_code == 200, moved.get_json()
    assert ben.patch(f"{base}/{ids['Meeting']}", json={"due": "tomorrow"}).get_json()["fields"] == {
        "due": "a date and time in the account's time zone: YYYY-MM-DDTHH:MM"}
    assert ben.post(f"{base}/{ids['Meeting']}/complete").status_code == 200
    meeting = next(t for t in WORLD.tasks.values() if t["name"] == "Meeting task")
    assert (meeting["status"], meeting["due"]) == ("completed", "2026-12-03T10:30:00Z")
