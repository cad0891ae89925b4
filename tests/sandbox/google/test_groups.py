"""contactGroups.*: labels, their paging and sync, members:modify."""
from .conftest import ANNA, error_of, new_person


def test_list_groups_defaults_and_fields(anna, sandbox):
    body = anna.ok("GET", "/v1/contactGroups")
    names = {g["name"]: g for g in body["contactGroups"]}
    assert {"myContacts", "starred", "Kunden"} <= set(names)
    assert names["Kunden"]["groupType"] == "USER_CONTACT_GROUP" and names["Kunden"]["memberCount"] == 3
    assert names["myContacts"]["formattedName"] == "My Contacts"
    assert "clientData" not in names["Kunden"] and "nextSyncToken" in body
    with_data = anna.ok("GET", "/v1/contactGroups", params={"groupFields": "name,clientData"})
    kunden = next(g for g in with_data["contactGroups"] if g.get("name") == "Kunden")
    assert set(kunden) == {"resourceName", "etag", "name", "formattedName", "clientData"}
    page = anna.ok("GET", "/v1/contactGroups", params={"pageSize": 1})
    assert len(page["contactGroups"]) == 1 and "nextPageToken" in page and "nextSyncToken" not in page
    resp = anna.get("/v1/contactGroups", params={"groupFields": "members"})
    assert resp.status_code == 400 and error_of(resp)["status"] == "INVALID_ARGUMENT"


def test_create_get_update_delete_group(anna, sandbox, google_examples):
    example = google_examples("contact-group-create.json")
    created = anna.ok("POST", "/v1/contactGroups", json=example["request"]["body"])
    # the example shows no formattedName; we send it with `name` (== name for user groups, DD ContactGroup)
    assert set(created) - set(example["response"]["body"]) == {"formattedName"}
    assert created["name"] == "Pipedrive – Kunden" and created["clientData"] == [{"key": "relayhub.sync_id",
                                                                                   "value": "sync-42"}]
    rn = created["resourceName"]
    dup = anna.post("/v1/contactGroups", json={"contactGroup": {"name": "Pipedrive – Kunden"}})
    assert dup.status_code == 409 and error_of(dup)["status"] == "ALREADY_EXISTS"
    renamed = anna.ok("PUT", f"/v1/{rn}", json={"contactGroup": {"name": "Renamed", "etag": created["etag"]}})
    assert renamed["name"] == "Renamed"
    stale = anna.call("PUT", f"/v1/{rn}", json={"contactGroup": {"name": "Again", "etag": created["etag"]}})
    assert stale.status_code == 400 and error_of(stale)["status"] == "FAILED_PRECONDITION"
    dup = anna.call("PUT", f"/v1/{rn}", json={"contactGroup": {"name": "Kunden"}})
    assert dup.status_code == 409
    got = anna.ok("GET", f"/v1/{rn}", params={"maxMembers": 10})
    assert got["name"] == "Renamed" and "memberResourceNames" not in got
    assert anna.ok("DELETE", f"/v1/{rn}") == {}
    assert anna.get(f"/v1/{rn}").status_code == 404
    system = anna.call("DELETE", "/v1/contactGroups/myContacts")
    assert system.status_code == 400


def test_get_with_max_members(anna, sandbox):
    rn = sandbox.group_by_name(ANNA, "Kunden")["resourceName"]
    none = anna.ok("GET", f"/v1/{rn}")
    assert none["memberCount"] == 3 and "memberResourceNames" not in none
    two = anna.ok("GET", f"/v1/{rn}", params={"maxMembers": 2})
    assert len(two["memberResourceNames"]) == 2 and two["memberCount"] == 3
    batch = anna.ok("GET", "/v1/contactGroups:batchGet", params=[("resourceNames", rn),
                                                                   ("resourceNames", "contactGroups/nope")])
    assert batch["responses"][0]["contactGroup"]["name"] == "Kunden"
    assert batch["responses"][1]["status"]["code"] == 5


def test_members_modify(anna, sandbox):
    kunden = sandbox.group_by_name(ANNA, "Kunden")["resourceName"]
    only_in_label = sandbox.create_contact(ANNA, new_person("Solo", groups=[kunden]))
    sandbox.modify_members(ANNA, "contactGroups/myContacts", remove=[only_in_label["resourceName"]])
    outsider = sandbox.contacts(ANNA)[3]["resourceName"]
    body = anna.ok("POST", f"/v1/{kunden}/members:modify", json={
        "resourceNamesToAdd": [outsider, "people/c404"],
        "resourceNamesToRemove": [only_in_label["resourceName"]]})
    assert body == {"notFoundResourceNames": ["people/c404"],
                    "canNotRemoveLastContactGroupResourceNames": [only_in_label["resourceName"]]}
    members = anna.ok("GET", f"/v1/{kunden}", params={"maxMembers": 100})["memberResourceNames"]
    assert outsider in members and only_in_label["resourceName"] in members
    resp = anna.post(f"/v1/{kunden}/members:modify",
                     json={"resourceNamesToAdd": [outsider] * 600, "resourceNamesToRemove": [outsider] * 401})
    assert resp.status_code == 400 and error_of(resp)["status"] == "INVALID_ARGUMENT"
    resp = anna.post("/v1/contactGroups/nope/members:modify", json={"resourceNamesToAdd": [outsider]})
    assert resp.status_code == 404


def test_group_sync_reports_deleted_groups(anna, sandbox):
    token = anna.ok("GET", "/v1/contactGroups")["nextSyncToken"]
    created = sandbox.create_group(ANNA, "Temp")
    kunden = sandbox.group_by_name(ANNA, "Kunden")["resourceName"]
    sandbox.delete_group(ANNA, kunden)
    body = anna.ok("GET", "/v1/contactGroups", params={"syncToken": token})
    by_rn = {g["resourceName"]: g for g in body["contactGroups"]}
    assert set(by_rn) == {created["resourceName"], kunden}
    assert by_rn[kunden]["metadata"]["deleted"] is True
    assert kunden not in {g["resourceName"] for g in anna.ok("GET", "/v1/contactGroups")["contactGroups"]}
    # deleting a label without deleteContacts keeps its contacts
    assert sandbox.contact_count(ANNA) == 5


def test_delete_group_with_contacts(anna, sandbox):
    kunden = sandbox.group_by_name(ANNA, "Kunden")["resourceName"]
    assert anna.ok("DELETE", f"/v1/{kunden}", params={"deleteContacts": "true"}) == {}
    assert sandbox.contact_count(ANNA) == 2
