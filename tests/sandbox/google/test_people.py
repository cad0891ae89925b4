"""people.* methods: read, create, update (etag precondition), delete, batches, the contact cap."""
import copy

import pytest

from .conftest import ALL_FIELDS, ANNA, BEN, error_of, new_person, reason_of


def label(sandbox, account=ANNA, name="Kunden") -> str:
    return sandbox.group_by_name(account, name)["resourceName"]


def create(anna, person, fields=ALL_FIELDS) -> dict:
    return anna.ok("POST", "/v1/people:createContact", params={"personFields": fields}, json=person)


def test_get_person_with_field_mask(anna, sandbox):
    rn = sandbox.contacts(ANNA)[0]["resourceName"]
    person = anna.ok("GET", f"/v1/{rn}", params={"personFields": "names,memberships"})
    assert set(person) == {"resourceName", "etag", "names", "memberships"}
    groups = {m["contactGroupMembership"]["contactGroupResourceName"] for m in person["memberships"]}
    assert groups == {label(sandbox), "contactGroups/myContacts"}
    full = anna.ok("GET", f"/v1/{rn}", params={"personFields": ALL_FIELDS})
    assert full["metadata"]["sources"][0]["type"] == "CONTACT"
    assert full["metadata"]["sources"][0]["etag"].startswith("#") and full["etag"].startswith("%")
    assert full["phoneNumbers"][0]["canonicalForm"] == "+48601234567"
    assert full["names"][0]["displayNameLastFirst"] == "Ñúñez-Łęcki, José"


def test_get_errors(anna, sandbox):
    rn = sandbox.contacts(ANNA)[0]["resourceName"]
    resp = anna.get(f"/v1/{rn}")
    assert resp.status_code == 400 and error_of(resp)["status"] == "INVALID_ARGUMENT"
    resp = anna.get(f"/v1/{rn}", params={"personFields": "names,shoeSize"})
    assert resp.status_code == 400 and error_of(resp)["status"] == "INVALID_ARGUMENT"
    resp = anna.get("/v1/people/c999", params={"personFields": "names"})
    assert resp.status_code == 404 and error_of(resp)["status"] == "NOT_FOUND"
    # another account's contact is invisible
    other = sandbox.contacts(BEN)[0]["resourceName"]
    assert anna.get(f"/v1/{other}", params={"personFields": "names"}).status_code == 404


def test_unknown_path_is_404_in_google_shape(anna):
    resp = anna.get("/v1/people:searchContacts", params={"query": "x"})
    assert resp.status_code == 404 and error_of(resp)["status"] == "NOT_FOUND"


def test_create_contact(anna, sandbox):
    person = new_person("Ada", "Lovelace", "ada@example.org", [label(sandbox)])
    person["names"][0]["displayName"] = "ignored output-only"
    person["phoneNumbers"] = [{"value": "+44 20 7946 0000", "type": "mobile", "canonicalForm": "x"}]
    person["clientData"] = [{"key": "relayhub.id", "value": "7"}]
    created = create(anna, person)
    assert created["resourceName"].startswith("people/c")
    assert created["names"][0]["displayName"] == "Ada Lovelace"
    assert created["phoneNumbers"][0]["canonicalForm"] == "+442079460000"
    assert created["clientData"][0]["key"] == "relayhub.id"
    groups = [m["contactGroupMembership"]["contactGroupResourceName"] for m in created["memberships"]]
    assert groups == [label(sandbox), "contactGroups/myContacts"]
    only_names = create(anna, new_person("Bo"), fields="names")
    assert set(only_names) == {"resourceName", "etag", "names"}


@pytest.mark.parametrize("person", [
    {"names": [{"givenName": "A"}], "nickName": "x"},                            # unknown field
    {"names": [{"givenName": "A"}, {"givenName": "B"}]},                         # singleton
    {"emailAddresses": [{"value": "not-an-email"}]},                             # bad email
    {"memberships": [{"contactGroupMembership": {"contactGroupResourceName": "contactGroups/nope"}}]},
    {"memberships": [{"contactGroupMembership": {"contactGroupResourceName": "contactGroups/blocked"}}]},
    {"names": {"givenName": "A"}},                                               # not a list
])
def test_create_contact_rejects_invalid(anna, sandbox, person):
    before = sandbox.contact_count(ANNA)
    resp = anna.post("/v1/people:createContact", params={"personFields": "names"}, json=person)
    assert resp.status_code == 400 and error_of(resp)["status"] == "INVALID_ARGUMENT"
    assert sandbox.contact_count(ANNA) == before


def test_update_contact_replaces_fields_and_chains_etags(anna, sandbox):
    person = new_person("Jo", "Doe", "jo@a.example")
    person["emailAddresses"] += [{"value": "jo@b.example"}, {"value": "jo@c.example"}]
    created = create(anna, person)
    rn = created["resourceName"]
    body = {"etag": created["etag"], "emailAddresses": [{"value": "jo@new.example", "type": "home"}]}
    upd = anna.ok("PATCH", f"/v1/{rn}:updateContact",
                  params={"updatePersonFields": "emailAddresses", "personFields": ALL_FIELDS}, json=body)
    assert [e["value"] for e in upd["emailAddresses"]] == ["jo@new.example"]
    assert upd["names"][0]["givenName"] == "Jo"  # not in the mask: untouched
    assert upd["etag"] != created["etag"]
    # consecutive update with the etag of the previous response, this time via metadata.sources
    body2 = {"metadata": {"sources": [{"type": "CONTACT", "id": upd["metadata"]["sources"][0]["id"],
                                       "etag": upd["metadata"]["sources"][0]["etag"]}]},
             "names": [{"givenName": "Joanna", "familyName": "Doe"}]}
    upd2 = anna.ok("PATCH", f"/v1/{rn}:updateContact",
                   params={"updatePersonFields": "names,phoneNumbers", "personFields": "names,phoneNumbers"}, json=body2)
    assert upd2["names"][0]["displayName"] == "Joanna Doe"


def test_update_contact_stale_etag_matches_google(anna, sandbox, google_examples):
    created = create(anna, new_person("Eve"))
    rn = created["resourceName"]
    sandbox.update_contact(ANNA, rn, {"names": [{"givenName": "Eve", "familyName": "Changed"}]})  # user edits
    resp = anna.call("PATCH", f"/v1/{rn}:updateContact", params={"updatePersonFields": "names"},
                     json={"etag": created["etag"], "names": [{"givenName": "Mine"}]})
    expected = google_examples("error-etag-failed-precondition.json")["response"]
    assert resp.status_code == expected["status"]
    assert resp.json() == expected["body"]
    assert sandbox.contact(ANNA, rn)["names"][0]["familyName"] == "Changed"
    # the source-etag variant
    resp = anna.call("PATCH", f"/v1/{rn}:updateContact", params={"updatePersonFields": "names"},
                     json={"metadata": {"sources": [{"type": "CONTACT", "etag": "#stale"}]}, "names": []})
    assert resp.status_code == 400 and error_of(resp)["errors"][0]["reason"] == "failedPrecondition"


def test_update_contact_errors(anna, sandbox):
    created = create(anna, new_person("Kim"))
    rn = created["resourceName"]
    resp = anna.call("PATCH", f"/v1/{rn}:updateContact", json={"etag": created["etag"]})
    assert resp.status_code == 400 and error_of(resp)["status"] == "INVALID_ARGUMENT"   # no updatePersonFields
    resp = anna.call("PATCH", f"/v1/{rn}:updateContact", params={"updatePersonFields": "names"},
                     json={"names": [{"givenName": "X"}]})
    assert resp.status_code == 400 and error_of(resp)["status"] == "INVALID_ARGUMENT"   # no etag / sources
    resp = anna.call("PATCH", f"/v1/{rn}:updateContact", params={"updatePersonFields": "memberships"},
                     json={"etag": created["etag"], "memberships": []})
    assert resp.status_code == 400 and error_of(resp)["status"] == "INVALID_ARGUMENT"   # no group left
    resp = anna.call("PATCH", f"/v1/{rn}:updateContact", params={"updatePersonFields": "photos"},
                     json={"etag": created["etag"]})
    assert resp.status_code == 400                                                      # not updatable
    resp = anna.call("PATCH", "/v1/people/c1:updateContact", params={"updatePersonFields": "names"},
                     json={"etag": "%x"})
    assert resp.status_code == 404


def test_delete_contact(anna, sandbox):
    rn = create(anna, new_person("Del"))["resourceName"]
    resp = anna.call("DELETE", f"/v1/{rn}:deleteContact")
    assert resp.status_code == 200 and resp.json() == {}
    assert anna.get(f"/v1/{rn}", params={"personFields": "names"}).status_code == 404
    assert anna.call("DELETE", f"/v1/{rn}:deleteContact").status_code == 404


def test_batch_create_matches_google_example(anna, sandbox, google_examples):
    request = copy.deepcopy(google_examples("batch-create-contacts.request.json")["request"]["body"])
    for item in request["contacts"]:
        item["contactPerson"]["memberships"][0]["contactGroupMembership"]["contactGroupResourceName"] = label(sandbox)
    before = sandbox.contact_count(ANNA)
    resp = anna.post("/v1/people:batchCreateContacts", json=request)
    expected = google_examples("batch-create-contacts.response.json")["alternate_error_response"]
    assert resp.status_code == expected["status"] and resp.json() == expected["body"]
    assert sandbox.contact_count(ANNA) == before  # all or nothing
    request["contacts"] = request["contacts"][:2]
    body = anna.ok("POST", "/v1/people:batchCreateContacts", json=request)
    assert [set(p) for p in body["createdPeople"]] == [{"httpStatusCode", "person", "status"}] * 2
    first = body["createdPeople"][0]["person"]
    assert first["names"][0]["displayName"] == "Anna Kowalska"
    assert {m["contactGroupMembership"]["contactGroupResourceName"] for m in first["memberships"]} == \
        {label(sandbox), "contactGroups/myContacts"}
    assert sandbox.contact_count(ANNA) == before + 2
    # an empty readMask skips the read-back
    assert anna.ok("POST", "/v1/people:batchCreateContacts",
                   json={"contacts": [{"contactPerson": new_person("Q")}], "readMask": ""}) == {}


def test_batch_limits(anna, sandbox):
    too_many = {"contacts": [{"contactPerson": new_person(f"P{i}")} for i in range(201)], "readMask": "names"}
    resp = anna.post("/v1/people:batchCreateContacts", json=too_many)
    assert resp.status_code == 400 and error_of(resp)["status"] == "INVALID_ARGUMENT"
    rn = sandbox.contacts(ANNA)[0]["resourceName"]
    resp = anna.post("/v1/people:batchUpdateContacts", json={
        "contacts": {f"people/c{i}": {"etag": "x"} for i in range(201)}, "updateMask": "names", "readMask": "names"})
    assert resp.status_code == 400
    resp = anna.post("/v1/people:batchDeleteContacts", json={"resourceNames": [rn] * 501})
    assert resp.status_code == 400 and error_of(resp)["status"] == "INVALID_ARGUMENT"
    assert sandbox.contact_count(ANNA) == 5


def test_batch_update(anna, sandbox):
    people = sandbox.contacts(ANNA)[:2]
    contacts = {p["resourceName"]: {"etag": p["etag"], "organizations": [{"name": "NewCo"}]} for p in people}
    body = anna.ok("POST", "/v1/people:batchUpdateContacts",
                   json={"contacts": contacts, "updateMask": "organizations", "readMask": "organizations,names"})
    assert set(body["updateResult"]) == set(contacts)
    for rn, result in body["updateResult"].items():
        assert result["person"]["organizations"][0]["name"] == "NewCo"
        assert result["requestedResourceName"] == rn
    # stale etag (from before the update) and an unknown contact: per-contact errors, nothing applied
    resp = anna.post("/v1/people:batchUpdateContacts", json={
        "contacts": dict(contacts, **{"people/c404": {"etag": "%x"}}), "updateMask": "organizations",
        "readMask": "names"})
    assert resp.status_code == 400
    detail = error_of(resp)["details"][0]
    assert detail["@type"].endswith("BatchUpdateContactsErrorDetails")
    assert {k: v["code"] for k, v in detail["contactErrors"].items()} == \
        {**{rn: 9 for rn in contacts}, "people/c404": 5}
    resp = anna.post("/v1/people:batchUpdateContacts", json={"contacts": contacts, "readMask": "names"})
    assert resp.status_code == 400  # updateMask is required


def test_batch_delete(anna, sandbox):
    names = [p["resourceName"] for p in sandbox.contacts(ANNA)[:3]]
    resp = anna.post("/v1/people:batchDeleteContacts", json={"resourceNames": names + ["people/c404"]})
    assert resp.status_code == 404 and sandbox.contact_count(ANNA) == 5
    assert anna.ok("POST", "/v1/people:batchDeleteContacts", json={"resourceNames": names}) == {}
    assert sandbox.contact_count(ANNA) == 2


def test_get_batch_get(anna, sandbox):
    rn = sandbox.contacts(ANNA)[0]["resourceName"]
    body = anna.ok("GET", "/v1/people:batchGet",
                   params=[("resourceNames", rn), ("resourceNames", "people/c404"), ("personFields", "names")])
    ok, missing = body["responses"]
    assert ok["person"]["resourceName"] == rn and ok["httpStatusCode"] == 200
    assert missing["status"]["code"] == 5 and "person" not in missing


@pytest.mark.parametrize("options", [{"contact_limit": 7}], indirect=True)
def test_contact_limit_counts_the_whole_account(anna, sandbox):
    assert sandbox.contact_count(ANNA) == 5  # labelled and unlabelled contacts together
    create(anna, new_person("Six"))
    resp = anna.post("/v1/people:batchCreateContacts", json={
        "contacts": [{"contactPerson": new_person("A")}, {"contactPerson": new_person("B")}], "readMask": "names"})
    assert resp.status_code == 400 and error_of(resp)["status"] == "FAILED_PRECONDITION"
    assert reason_of(resp) == "CONTACT_LIMIT_EXCEEDED"
    create(anna, new_person("Seven"))
    resp = anna.post("/v1/people:createContact", json=new_person("Eight"))
    assert resp.status_code == 400 and reason_of(resp) == "CONTACT_LIMIT_EXCEEDED"
    anna.call("DELETE", f"/v1/{sandbox.contacts(ANNA)[0]['resourceName']}:deleteContact")
    create(anna, new_person("Eight"))  # room again after a delete


@pytest.mark.parametrize("options", [{"contact_limit": 5, "contact_limit_status": 429}], indirect=True)
def test_contact_limit_as_429(anna):
    resp = anna.post("/v1/people:createContact", json=new_person("Six"))
    assert resp.status_code == 429 and error_of(resp)["status"] == "RESOURCE_EXHAUSTED"


def test_undeclared_query_parameter_is_refused(anna):
    # the emulator, like Google, refuses it; the request never reaches the conformance check as a 2xx
    resp = anna.get("/v1/people/me/connections", params={"personFields": "names", "limit": "5"})
    assert resp.status_code == 400 and "Cannot bind query parameter" in error_of(resp)["message"]
