"""Google-only fault knobs (knobs.py), set at runtime through /_sandbox/faults like every knob."""
from __future__ import annotations

from .conftest import ALL_FIELDS, ANNA, error_of, new_person, reason_of

SYNC = {"personFields": ALL_FIELDS, "requestSyncToken": "true"}


def set_knobs(anna, **values) -> dict:
    resp = anna.http.post(f"{anna.base}/_sandbox/faults", json=values)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_knobs_are_listed_set_and_checked(anna):
    listed = anna.http.get(f"{anna.base}/_sandbox/faults").json()
    for knob in ("empty_pages", "expire_sync_token_mid_run", "batch_timeout_after_apply", "batch_partial_reject",
                 "rename_on_update", "late_echoes"):
        assert listed[knob] == 0
    assert set_knobs(anna, late_echoes="2")["late_echoes"] == 2
    bad = anna.http.post(f"{anna.base}/_sandbox/faults", json={"late_echoes": "many"})
    assert bad.status_code == 400 and "late_echoes" in bad.json()["error"]


def test_sync_token_expires_mid_run(anna, sandbox):
    token = anna.list_all(**SYNC)[1]["nextSyncToken"]
    for i in range(3):
        sandbox.create_contact(ANNA, new_person(f"N{i}"))
    set_knobs(anna, expire_sync_token_mid_run=1)
    first = anna.ok("GET", "/v1/people/me/connections", params={"personFields": ALL_FIELDS, "syncToken": token,
                                                                "pageSize": 2})
    resp = anna.get("/v1/people/me/connections", params={"personFields": ALL_FIELDS, "syncToken": token,
                                                        "pageSize": 2, "pageToken": first["nextPageToken"]})
    assert resp.status_code == 400 and reason_of(resp) == "EXPIRED_SYNC_TOKEN"
    again = anna.get("/v1/people/me/connections", params={"personFields": ALL_FIELDS, "syncToken": token, "pageSize": 2})
    assert reason_of(again) == "EXPIRED_SYNC_TOKEN"          # the token is dead from then on


def test_empty_page_that_is_not_the_last(anna):
    set_knobs(anna, empty_pages=1)
    first = anna.ok("GET", "/v1/people/me/connections", params={"personFields": "names"})
    assert "connections" not in first and first["nextPageToken"]
    people, _ = anna.list_all(personFields="names")
    assert len(people) == 5


def test_batch_applied_then_timed_out(anna, sandbox):
    before = sandbox.contact_count(ANNA)
    set_knobs(anna, batch_timeout_after_apply=1)
    resp = anna.post("/v1/people:batchCreateContacts", json={"contacts": [{"contactPerson": new_person("T")}],
                                                            "readMask": "names"})
    assert resp.status_code == 504 and error_of(resp)["status"] == "DEADLINE_EXCEEDED"
    assert sandbox.contact_count(ANNA) == before + 1        # it was applied all the same


def test_partial_batch_rejection_applies_the_others(anna, sandbox):
    before = sandbox.contact_count(ANNA)
    set_knobs(anna, batch_partial_reject=1)
    resp = anna.post("/v1/people:batchCreateContacts", json={
        "contacts": [{"contactPerson": new_person("R0")}, {"contactPerson": new_person("R1")}], "readMask": "names"})
    assert resp.status_code == 400
    [detail] = [d for d in error_of(resp)["details"] if d["@type"].endswith("BatchCreateContactsErrorDetails")]
    assert list(detail["contactErrors"]) == ["0"]
    names = {c["names"][0]["givenName"] for c in sandbox.contacts(ANNA)}
    assert sandbox.contact_count(ANNA) == before + 1 and "R1" in names and "R0" not in names


def test_update_renames_the_person(anna, sandbox):
    person = sandbox.contacts(ANNA)[0]
    set_knobs(anna, rename_on_update=1)
    body = {"resourceName": person["resourceName"], "etag": person["etag"], "names": [{"givenName": "Renamed"}]}
    answer = anna.ok("PATCH", f"/v1/{person['resourceName']}:updateContact",
                     params={"updatePersonFields": "names", "personFields": "names,metadata"}, json=body)
    assert answer["resourceName"] != person["resourceName"]
    assert sandbox.contact(ANNA, person["resourceName"])["resourceName"] == answer["resourceName"]


def test_late_echo_shows_one_listing_later(anna):
    token = anna.list_all(**SYNC)[1]["nextSyncToken"]
    set_knobs(anna, late_echoes=1)
    created = anna.ok("POST", "/v1/people:createContact", json=new_person("Echo"))
    changes, last = anna.list_all(personFields=ALL_FIELDS, syncToken=token)
    assert created["resourceName"] not in {p["resourceName"] for p in changes}
    later, _ = anna.list_all(personFields=ALL_FIELDS, syncToken=last["nextSyncToken"])
    assert [p["resourceName"] for p in later] == [created["resourceName"]]
    assert later[0]["etag"] == created["etag"]             # the same write, only late
