"""Activities and activity types: every exchange validated against the official specs, the errors,
and the activity webhooks."""
from __future__ import annotations

import requests

from .test_api import general_error
from .test_webhooks import hook  # noqa: F401  (fixture)


def test_activity_types_conform(api, admin):
    types = api.get(f"{api.server.url}/api/v1/activityTypes", headers=admin.headers).json()["data"]
    assert [t["key_string"] for t in types] == ["call", "meeting", "task", "deadline", "email", "lunch"]
    assert all(t["active_flag"] for t in types)


def test_create_list_get_update_delete_conform(api, admin, emu):
    u, h = api.server.url, admin.headers
    deal = emu.data["pd_deals"]["100"]
    ben = emu.users()[1]["id"]
    made = api.post(f"{u}/api/v2/activities", headers=h, json={
        "subject": "Send the contract", "type": "task", "owner_id": ben, "deal_id": deal["id"],
        "person_id": deal["person_id"], "org_id": deal["org_id"], "due_date": "2026-12-01",
        "note": "<p>marker</p>"}).json()["data"]
    assert (made["subject"], made["type"], made["owner_id"], made["done"]) == ("Send the contract", "task", ben, False)
    assert made["creator_user_id"] == admin.user_id and made["due_time"] is None
    second = api.post(f"{u}/api/v2/activities", headers=h, json={"type": "call"}).json()["data"]
    assert second["subject"] == "Call" and second["owner_id"] == admin.user_id and second["deal_id"] is None

    listed = api.get(f"{u}/api/v2/activities", headers=h, params={"deal_id": deal["id"]}).json()["data"]
    assert [a["id"] for a in listed] == [made["id"]]
    by_due = api.get(f"{u}/api/v2/activities", headers=h, params={"sort_by": "due_date", "limit": 1}).json()
    assert by_due["data"][0]["id"] == second["id"] and by_due["data"][0]["due_date"] is None
    page2 = api.get(f"{u}/api/v2/activities", headers=h, params={"sort_by": "due_date", "limit": 1,
                                                                "cursor": by_due["additional_data"]["next_cursor"]})
    assert [a["id"] for a in page2.json()["data"]] == [made["id"]]
    assert api.get(f"{u}/api/v2/activities/{made['id']}", headers=h).json()["data"]["note"] == "<p>marker</p>"

    done = api.patch(f"{u}/api/v2/activities/{made['id']}", headers=h, json={"done": True}).json()["data"]
    assert done["done"] is True and done["marked_as_done_time"]
    open_ = api.get(f"{u}/api/v2/activities", headers=h, params={"done": "false"}).json()["data"]
    assert [a["id"] for a in open_] == [second["id"]]
    assert api.delete(f"{u}/api/v2/activities/{second['id']}", headers=h).json() == {
        "success": True, "data": {"id": second["id"]}}
    general_error(api.get(f"{u}/api/v2/activities/{second['id']}", headers=h), 404)
    assert [a["id"] for a in api.get(f"{u}/api/v2/activities", headers=h).json()["data"]] == [made["id"]]


def test_bad_activities_are_400s_naming_the_field(server, admin):
    u, h = server.url, admin.headers   # plain requests: the bodies break the spec on purpose
    cases = [({"type": "séance"}, "type"), ({"due_date": "12/01/2026"}, "due_date"), ({"done": 1}, "done"),
             ({"deal_id": 987654}, "Deal"), ({"owner_id": "12"}, "Owner"), ({"colour": "red"}, "colour")]
    for body, word in cases:
        resp = requests.post(f"{u}/api/v2/activities", headers=h, json=body)
        assert word in general_error(resp, 400)["error"], body
    general_error(requests.get(f"{u}/api/v2/activities", headers=h, params={"done": "1"}), 400)
    general_error(requests.patch(f"{u}/api/v2/activities/424242", headers=h, json={"done": True}), 404)


def test_activity_webhooks_carry_the_change(emu, hook, receiver):  # noqa: F811
    hook("*", "activity")
    a = emu.create_activity({"subject": "Call back", "type": "call"})
    emu.complete_activity(a["id"])
    emu.complete_activity(a["id"])          # already done: no change, no event
    emu.delete_activity(a["id"])
    got = {r["json"]["meta"]["action"]: r["json"] for r in receiver.wait_for(lambda r: len(r) == 3, path="/hooks")}
    create, change, delete = got["create"], got["change"], got["delete"]
    assert {p["meta"]["entity"] for p in got.values()} == {"activity"}
    assert create["data"]["subject"] == "Call back" and create["previous"] is None
    assert change["data"]["done"] is True and change["previous"]["done"] is False
    assert delete["data"] is None and delete["previous"]["id"] == a["id"]
