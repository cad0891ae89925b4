"""The conformance checker itself: it accepts Google's own examples and rejects broken bodies,
so a passing API test means something."""
import copy

import pytest

from .discovery import ERROR_ENVELOPE, ConformanceError

BASE = "https://people.googleapis.com"


def test_examples_validate(discovery, google_examples):
    person = google_examples("person-with-memberships.json")
    discovery.check("Person", person["response"]["body"], "example person")
    page = google_examples("connections-list-last-page.json")
    discovery.check_exchange("GET", page["request"]["url"], None, 200, page["response"]["body"])
    batch_req = google_examples("batch-create-contacts.request.json")["request"]["body"]
    batch = google_examples("batch-create-contacts.response.json")
    discovery.check_exchange("POST", f"{BASE}/v1/people:batchCreateContacts", batch_req, 200, batch["response"]["body"])
    discovery.check(ERROR_ENVELOPE, batch["alternate_error_response"]["body"], "batch error")
    group = google_examples("contact-group-create.json")
    discovery.check_exchange("POST", f"{BASE}/v1/contactGroups", group["request"]["body"], 200, group["response"]["body"])
    for name in ("error-etag-failed-precondition.json", "error-expired-sync-token.json"):
        ex = google_examples(name)
        discovery.check_exchange(ex["request"]["method"], ex["request"]["url"], ex["request"].get("body"),
                                 ex["response"]["status"], ex["response"]["body"])


@pytest.mark.parametrize("mutate, where", [
    (lambda p: p.update(nickName=[]), "unknown top-level field"),
    (lambda p: p["names"][0].update(givenName=5), "wrong type"),
    (lambda p: p["metadata"]["sources"][0].update(type="FRIEND"), "enum"),
    (lambda p: p["metadata"]["sources"][0].update(updateTime="yesterday"), "google-datetime"),
    (lambda p: p["memberships"][0]["contactGroupMembership"].update(groupName="x"), "nested unknown field"),
])
def test_broken_person_is_rejected(discovery, google_examples, mutate, where):
    person = copy.deepcopy(google_examples("person-with-memberships.json")["response"]["body"])
    mutate(person)
    with pytest.raises(ConformanceError):
        discovery.check("Person", person, where)


def test_method_table_and_parameters(discovery):
    assert discovery.find("PATCH", "/v1/people/c1:updateContact").id == "people.people.updateContact"
    assert discovery.find("GET", "/v1/people/me/connections").id == "people.people.connections.list"
    assert discovery.find("POST", "/v1/contactGroups/abc/members:modify").id == "people.contactGroups.members.modify"
    assert discovery.find("GET", "/v1/people:batchGet").id == "people.people.getBatchGet"
    assert discovery.find("POST", "/v1/people/c1:updateContact") is None
    with pytest.raises(ConformanceError, match="personFields"):
        discovery.check_exchange("GET", f"{BASE}/v1/people/me/connections?pageSize=10", None, 200, {})
    with pytest.raises(ConformanceError, match="unknown query parameter"):
        discovery.check_exchange("GET", f"{BASE}/v1/people/me/connections?personFields=names&limit=1", None, 200, {})
    with pytest.raises(ConformanceError, match="sortOrder"):
        discovery.check_exchange("GET", f"{BASE}/v1/people/me/connections?personFields=names&sortOrder=NEWEST",
                                 None, 200, {})
    with pytest.raises(ConformanceError, match="not a method"):
        discovery.check_exchange("GET", f"{BASE}/v1/people:search", None, 200, {})
    with pytest.raises(ConformanceError):  # Empty means exactly {}
        discovery.check_exchange("DELETE", f"{BASE}/v1/people/c1:deleteContact", None, 200, {"ok": True})


@pytest.mark.parametrize("body, status", [
    ({"error": {"code": 400, "message": "x"}}, 400),                                     # no status
    ({"error": {"code": 404, "message": "x", "status": "INVALID_ARGUMENT"}}, 404),       # wrong mapping
    ({"error": {"code": 400, "message": "x", "status": "FAILED_PRECONDITION",
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "domain": "d"}]}}, 400),
    ({"error": "invalid_grant"}, 400),                                                   # OAuth shape
])
def test_broken_error_bodies_are_rejected(discovery, body, status):
    with pytest.raises(ConformanceError):
        discovery.check_exchange("GET", f"{BASE}/v1/contactGroups", None, status, body)
