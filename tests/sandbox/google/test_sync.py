"""people.connections.list: paging, sync tokens, deletions, expiry, and hand edits seen by sync."""
import pytest

from .conftest import ALL_FIELDS, ANNA, error_of, new_person, reason_of

SYNC = {"personFields": ALL_FIELDS, "requestSyncToken": "true"}


def test_person_fields_required(anna):
    resp = anna.get("/v1/people/me/connections")
    assert resp.status_code == 400 and error_of(resp)["status"] == "INVALID_ARGUMENT"


def test_full_listing_pages_and_sync_token_only_on_last_page(anna, sandbox):
    first = anna.ok("GET", "/v1/people/me/connections", params=dict(SYNC, pageSize=2))
    assert len(first["connections"]) == 2 and "nextSyncToken" not in first and first["totalItems"] == 5
    people, last = anna.list_all(**SYNC, pageSize=2)
    assert len(people) == 5 and len({p["resourceName"] for p in people}) == 5
    assert "nextSyncToken" in last and "nextPageToken" not in last
    assert all("deleted" not in p["metadata"] for p in people)
    plain, last_plain = anna.list_all(personFields="names")
    assert "nextSyncToken" not in last_plain and len(plain) == 5


def test_page_token_parameters_must_match(anna):
    first = anna.ok("GET", "/v1/people/me/connections", params=dict(SYNC, pageSize=2))
    resp = anna.get("/v1/people/me/connections",
                    params={"personFields": "names", "pageSize": 2, "pageToken": first["nextPageToken"]})
    assert resp.status_code == 400 and error_of(resp)["status"] == "INVALID_ARGUMENT"
    resp = anna.get("/v1/people/me/connections", params=dict(SYNC, pageToken="garbage"))
    assert resp.status_code == 400


def test_sort_orders(anna):
    by_first = anna.ok("GET", "/v1/people/me/connections",
                       params={"personFields": "names", "sortOrder": "FIRST_NAME_ASCENDING"})["connections"]
    givens = [p["names"][0]["givenName"] for p in by_first]
    assert givens == sorted(givens, key=str.casefold)
    newest = anna.ok("GET", "/v1/people/me/connections",
                     params={"personFields": "names", "sortOrder": "LAST_MODIFIED_DESCENDING"})["connections"]
    assert newest[0]["names"][0]["givenName"] == "山田"


def test_incremental_sync_changes_and_deletions(anna, sandbox):
    _, last = anna.list_all(**SYNC)
    token = last["nextSyncToken"]
    kept, gone = sandbox.contacts(ANNA)[:2]
    # a change by the user in Google Contacts (sandbox page / helper), one by API, one deletion
    sandbox.update_contact(ANNA, kept["resourceName"], {"phoneNumbers": [{"value": "+48 500 000 000"}]})
    new = anna.ok("POST", "/v1/people:createContact", json=new_person("Neu"))
    sandbox.delete_contact(ANNA, gone["resourceName"])
    changes, last = anna.list_all(personFields=ALL_FIELDS, syncToken=token)
    by_name = {p["resourceName"]: p for p in changes}
    assert set(by_name) == {kept["resourceName"], new["resourceName"], gone["resourceName"]}
    assert by_name[gone["resourceName"]]["metadata"]["deleted"] is True
    assert set(by_name[gone["resourceName"]]) == {"resourceName", "etag", "metadata"}
    assert by_name[kept["resourceName"]]["phoneNumbers"][0]["value"] == "+48 500 000 000"
    assert "deleted" not in by_name[kept["resourceName"]]["metadata"]
    # the chain continues: nothing changed since
    quiet = anna.ok("GET", "/v1/people/me/connections", params={"personFields": ALL_FIELDS,
                                                                "syncToken": last["nextSyncToken"]})
    assert "connections" not in quiet and "nextSyncToken" in quiet
    # a full listing never shows the deleted one
    assert gone["resourceName"] not in {p["resourceName"] for p in anna.list_all()[0]}


def test_sync_run_is_paged_and_ends_with_token(anna, sandbox):
    token = anna.list_all(**SYNC)[1]["nextSyncToken"]
    for i in range(5):
        sandbox.create_contact(ANNA, new_person(f"N{i}"))
    first = anna.ok("GET", "/v1/people/me/connections", params={"personFields": ALL_FIELDS, "syncToken": token,
                                                                "pageSize": 2})
    assert len(first["connections"]) == 2 and "nextSyncToken" not in first
    changes, last = anna.list_all(personFields=ALL_FIELDS, syncToken=token, pageSize=2)
    assert len(changes) == 5 and "nextSyncToken" in last


def test_changes_during_paging_come_in_next_sync(anna, sandbox):
    first = anna.ok("GET", "/v1/people/me/connections", params=dict(SYNC, pageSize=3))
    late = sandbox.create_contact(ANNA, new_person("Late"))
    rest = anna.ok("GET", "/v1/people/me/connections", params=dict(SYNC, pageSize=3, pageToken=first["nextPageToken"]))
    assert late["resourceName"] not in {p["resourceName"] for p in first["connections"] + rest["connections"]}
    changes, _ = anna.list_all(personFields=ALL_FIELDS, syncToken=rest["nextSyncToken"])
    assert [p["resourceName"] for p in changes] == [late["resourceName"]]


def test_expired_sync_token_matches_google(anna, sandbox, clock, google_examples):
    token = anna.list_all(**SYNC)[1]["nextSyncToken"]
    clock.advance(6 * 86400)
    anna.login(ANNA)  # the access token expired long ago
    token2 = anna.ok("GET", "/v1/people/me/connections", params={"personFields": ALL_FIELDS,
                                                                 "syncToken": token})["nextSyncToken"]
    clock.advance(86400 + 1)  # 7 days after the FULL sync, even for the newer token of the chain
    anna.login(ANNA)
    resp = anna.get("/v1/people/me/connections", params={"personFields": ALL_FIELDS, "syncToken": token2})
    expected = google_examples("error-expired-sync-token.json")["response"]
    assert resp.status_code == expected["status"] and resp.json() == expected["body"]
    assert reason_of(anna.get("/v1/people/me/connections", params={"personFields": ALL_FIELDS,
                                                                    "syncToken": "bogus"})) == "EXPIRED_SYNC_TOKEN"


@pytest.mark.parametrize("options", [{"sync_token_ttl": 60}], indirect=True)
def test_sync_token_ttl_is_configurable_and_knob_expires(anna, sandbox):
    token = anna.list_all(**SYNC)[1]["nextSyncToken"]
    assert anna.get("/v1/people/me/connections", params={"personFields": ALL_FIELDS,
                                                         "syncToken": token}).status_code == 200
    sandbox.expire_sync_tokens(ANNA)
    resp = anna.get("/v1/people/me/connections", params={"personFields": ALL_FIELDS, "syncToken": token})
    assert resp.status_code == 400 and reason_of(resp) == "EXPIRED_SYNC_TOKEN"


def test_sync_token_params_must_match(anna):
    token = anna.list_all(**SYNC)[1]["nextSyncToken"]
    resp = anna.get("/v1/people/me/connections", params={"personFields": "names", "syncToken": token})
    assert resp.status_code == 400 and error_of(resp)["status"] == "INVALID_ARGUMENT"


def test_previous_resource_names_after_relink(anna, sandbox):
    token = anna.list_all(**SYNC)[1]["nextSyncToken"]
    old = sandbox.contacts(ANNA)[0]["resourceName"]
    new = sandbox.relink_contact(ANNA, old)
    changes, _ = anna.list_all(personFields=ALL_FIELDS, syncToken=token)
    assert [p["resourceName"] for p in changes] == [new]
    assert changes[0]["metadata"]["previousResourceNames"] == [old]
    full = anna.ok("GET", f"/v1/{old}", params={"personFields": "metadata"})
    assert full["resourceName"] == new and "previousResourceNames" not in full["metadata"]


def test_ui_edit_is_seen_by_sync(anna, sandbox):
    token = anna.list_all(**SYNC)[1]["nextSyncToken"]
    contact = sandbox.contacts(ANNA)[3]
    aid = sandbox.accounts()[0]["id"]
    pid = contact["resourceName"].split("/")[1]
    resp = anna.http.post(f"{anna.base}/_sandbox/ui/accounts/{aid}/contacts/{pid}", allow_redirects=False, data={
        "given_name": "Chiara", "family_name": "Rossi", "emails": "chiara@rossi.example\n", "phones": "",
        "organization": "", "label": ["contactGroups/myContacts"]})
    assert resp.status_code == 302 and "error" not in resp.headers["Location"]
    changes, _ = anna.list_all(personFields=ALL_FIELDS, syncToken=token)
    assert [p["names"][0]["familyName"] for p in changes] == ["Rossi"]
    assert changes[0]["emailAddresses"][0]["value"] == "chiara@rossi.example"


def test_page_tokens_share_one_snapshot(anna, sandbox):
    for i in range(20):
        sandbox.create_contact(ANNA, new_person(f"Bulk{i}"))
    people, _ = anna.list_all(**SYNC, pageSize=3)
    assert len(people) == 25
    with sandbox.state.lock:
        google = sandbox.state.data["google"]
        assert len(google["runs"]) == 1 and len(google["page_tokens"]) == 8
