"""PeopleClient against the Google emulator over HTTP: every method, paging, sync tokens, batch
limits, and every error path the connector maps (etag, cap, quota, 5xx, 401/refresh, reauth)."""
from __future__ import annotations

import pytest

from hub.connectors.google.client import (BatchRejected, ContactLimitReached, EtagMismatch, GroupNameTaken,
                                          NotFound, PeopleApiError, QuotaExceeded, SyncTokenExpired,
                                          WriteOutcomeUnknown)
from hub.errors import Fatal, NeedsReauth, Retriable

from .conftest import ANNA, person

FIELDS = "names,emailAddresses,clientData,memberships,metadata"
CONNECTIONS = "/v1/people/me/connections"


def make_contacts(sandbox, n: int, prefix: str = "P") -> list[str]:
    return [sandbox.create_contact(ANNA, person(f"{prefix}{i}", email=f"{prefix.lower()}{i}@x.example"))["resourceName"]
            for i in range(n)]


# -- contact groups ---------------------------------------------------------------------------------
def test_groups_pages_through_every_group(client, sandbox, recorder):
    for i in range(5):
        sandbox.create_group(ANNA, f"Label {i}")
    groups = list(client.groups(page_size=2))
    assert sorted(g["name"] for g in groups if g["groupType"] == "USER_CONTACT_GROUP") == [f"Label {i}" for i in range(5)]
    assert {"contactGroups/myContacts", "contactGroups/starred"} <= {g["resourceName"] for g in groups}
    assert recorder.count("GET", "/v1/contactGroups") == 4  # 7 groups, 2 per page


def test_create_group_adopts_an_existing_name(client, sandbox):
    created = client.create_group("Pipedrive – Kunden", {"relayhub.sync_id": "sync-42"})
    assert created["groupType"] == "USER_CONTACT_GROUP"
    assert created["clientData"] == [{"key": "relayhub.sync_id", "value": "sync-42"}]
    again = client.create_group("Pipedrive – Kunden", {"relayhub.sync_id": "sync-42"})
    assert again["resourceName"] == created["resourceName"]
    assert again["clientData"] == created["clientData"]  # caller can tell it is ours
    assert len(sandbox.groups(ANNA)) == 1
    with pytest.raises(GroupNameTaken) as taken:
        client.create_group("Pipedrive – Kunden", adopt_existing=False)
    assert taken.value.status == 409 and isinstance(taken.value, Fatal)


def test_group_members_and_count(client, sandbox):
    label = client.create_group("Kunden")
    names = make_contacts(sandbox, 3)
    client.modify_members(label["resourceName"], add=names)
    got = client.group(label["resourceName"], max_members=2)
    assert got["memberCount"] == 3 and len(got["memberResourceNames"]) == 2
    assert "memberResourceNames" not in client.group(label["resourceName"])
    assert client.delete_group(label["resourceName"]) is True
    assert client.delete_group(label["resourceName"]) is False
    with pytest.raises(NotFound):
        client.group(label["resourceName"])


def test_modify_members_chunks_at_1000(client, sandbox, recorder):
    label = client.create_group("Kunden")
    real = make_contacts(sandbox, 3)
    ghosts = [f"people/c{900000000 + i}" for i in range(1197)]
    result = client.modify_members(label["resourceName"], add=real + ghosts)
    path = f"/v1/{label['resourceName']}/members:modify"
    assert recorder.count("POST", path) == 2
    assert sorted(result["notFoundResourceNames"]) == sorted(ghosts)  # merged over both chunks
    assert sandbox.group_by_name(ANNA, "Kunden")["memberCount"] == 3
    result = client.modify_members(label["resourceName"], remove=real[:2])
    assert result == {"notFoundResourceNames": [], "canNotRemoveLastContactGroupResourceNames": []}
    assert sandbox.group_by_name(ANNA, "Kunden")["memberResourceNames"] == [real[2]]


# -- listing and incremental sync ------------------------------------------------------------------
def test_full_then_incremental_sync(client, sandbox, recorder):
    names = make_contacts(sandbox, 5)
    pages = list(client.iter_connections(FIELDS, page_size=2))
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [p.next_sync_token is None for p in pages] == [True, True, False]  # token on the last page only
    assert [p.is_last for p in pages] == [False, False, True]
    assert pages[0].page_token is None and pages[1].page_token == pages[0].next_page_token
    assert [x["resourceName"] for p in pages for x in p] == names
    assert not any(p.incremental for p in pages)
    token = pages[-1].next_sync_token

    sandbox.update_contact(ANNA, names[1], {"names": [{"givenName": "Renamed", "familyName": "Test"}]})
    sandbox.delete_contact(ANNA, names[3])
    added = sandbox.create_contact(ANNA, person("New"))["resourceName"]

    changes = list(client.iter_connections(FIELDS, sync_token=token, page_size=2))
    assert changes[-1].next_sync_token and all(p.incremental for p in changes)
    assert all(p.next_sync_token is None for p in changes[:-1])
    by_name = {x["resourceName"]: x for p in changes for x in p}
    assert set(by_name) == {names[1], names[3], added}
    assert by_name[names[1]]["names"][0]["givenName"] == "Renamed"
    assert by_name[names[3]]["metadata"]["deleted"] is True
    assert "deleted" not in by_name[added]["metadata"]

    # nothing changed since: an incremental run of no people still ends with a fresh token
    quiet = list(client.iter_connections(FIELDS, sync_token=changes[-1].next_sync_token))
    assert len(quiet) == 1 and len(quiet[0]) == 0 and quiet[0].next_sync_token


def test_resume_a_run_from_a_checkpointed_page_token(client, sandbox):
    names = make_contacts(sandbox, 5)
    first = next(client.iter_connections(FIELDS, page_size=2))
    rest = list(client.iter_connections(FIELDS, page_size=2, page_token=first.next_page_token))
    assert [x["resourceName"] for p in [first, *rest] for x in p] == names
    assert rest[-1].next_sync_token


def test_expired_sync_token_raises_sync_token_expired(client, sandbox):
    make_contacts(sandbox, 2)
    token = list(client.iter_connections(FIELDS))[-1].next_sync_token
    sandbox.expire_sync_tokens(ANNA)
    with pytest.raises(SyncTokenExpired) as expired:
        list(client.iter_connections(FIELDS, sync_token=token))
    assert expired.value.status == 400 and "EXPIRED_SYNC_TOKEN" in expired.value.google.reasons
    with pytest.raises(SyncTokenExpired):
        list(client.iter_connections(FIELDS, sync_token="EAEnever-issued"))


def test_sync_token_with_other_person_fields_is_refused(client, sandbox):
    make_contacts(sandbox, 1)
    token = list(client.iter_connections(FIELDS))[-1].next_sync_token
    with pytest.raises(PeopleApiError) as refused:
        list(client.iter_connections("names", sync_token=token))
    assert refused.value.status == 400 and not isinstance(refused.value, SyncTokenExpired)


# -- reading single people -------------------------------------------------------------------------
def test_get_person_and_batch_get(client, sandbox, recorder):
    names = make_contacts(sandbox, 3)
    got = client.get_person(names[0], "names,emailAddresses")
    assert got["names"][0]["givenName"] == "P0" and "memberships" not in got
    sandbox.delete_contact(ANNA, names[2])
    many = client.batch_get(names + [names[0]], ["names"])
    assert many[names[0]]["names"][0]["givenName"] == "P0" and many[names[2]] is None
    with pytest.raises(NotFound):
        client.get_person(names[2], "names")

    ghosts = [f"people/c{800000000 + i}" for i in range(250)]
    assert set(client.batch_get(ghosts, "names").values()) == {None}
    assert recorder.count("GET", "/v1/people:batchGet") == 1 + 2  # 250 names -> 200 + 50


# -- single writes ---------------------------------------------------------------------------------
def test_create_update_delete_contact(client, sandbox):
    created = client.create_contact(person("Ada", email="ada@x.example"), FIELDS)
    name = created["resourceName"]
    updated = client.update_contact(name, {"etag": created["etag"], "emailAddresses": [{"value": "ada@y.example"}]},
                                    ["emailAddresses"], FIELDS)
    assert [e["value"] for e in updated["emailAddresses"]] == ["ada@y.example"]
    # consecutive updates chain etags
    client.update_contact(name, {"etag": updated["etag"], "names": [{"givenName": "Ada", "familyName": "L"}]},
                          "names", FIELDS)
    with pytest.raises(EtagMismatch) as stale:
        client.update_contact(name, {"etag": updated["etag"], "names": [{"givenName": "X"}]}, "names", FIELDS)
    assert stale.value.status == 400 and isinstance(stale.value, Fatal)
    with pytest.raises(ValueError):
        client.update_contact(name, {"names": [{"givenName": "X"}]}, "names", FIELDS)
    assert client.delete_contact(name) is True
    assert client.delete_contact(name) is False
    assert sandbox.contact_count(ANNA) == 0


def test_user_edit_between_read_and_write_is_an_etag_mismatch(client, sandbox):
    name = make_contacts(sandbox, 1)[0]
    read = client.get_person(name, FIELDS)
    sandbox.update_contact(ANNA, name, {"names": [{"givenName": "Edited by hand"}]})
    with pytest.raises(EtagMismatch) as stale:
        client.update_contact(name, {"etag": read["etag"], "names": [{"givenName": "From CRM"}]}, "names", FIELDS)
    assert stale.value.resource_names == []
    assert sandbox.contact(ANNA, name)["names"][0]["givenName"] == "Edited by hand"


# -- batch writes ----------------------------------------------------------------------------------
def test_batch_create_250_in_two_chunks(client, sandbox, recorder):
    bodies = [person(f"B{i}", email=f"b{i}@x.example", crm_id=str(1000 + i)) for i in range(250)]
    chunks = list(client.iter_batch_create(bodies, FIELDS))
    assert [len(c) for c in chunks] == [200, 50]
    assert recorder.count("POST", "/v1/people:batchCreateContacts") == 2
    created = [p for c in chunks for p in c]
    assert [p["names"][0]["givenName"] for p in created] == [f"B{i}" for i in range(250)]  # input order
    assert sandbox.contact_count(ANNA) == 250
    found = client.find_by_marker("relayhub.crm_id", ["1000", "1249", "nope"])
    assert set(found) == {"1000", "1249"}
    assert found["1249"]["resourceName"] == created[249]["resourceName"]


def test_batch_create_convenience_and_empty_read_mask(client, sandbox):
    assert len(client.batch_create([person("A"), person("B")], ["names"])) == 2
    assert client.batch_create([person("C")], "") == []  # Google skips the read: no people back
    assert sandbox.contact_count(ANNA) == 3


def test_batch_update_and_stale_etag(client, sandbox, recorder):
    names = make_contacts(sandbox, 3)
    read = client.batch_get(names, FIELDS)
    result = client.batch_update({n: {"etag": read[n]["etag"], "names": [{"givenName": f"U{i}"}]}
                                  for i, n in enumerate(names)}, "names", "names,metadata")
    assert {n: p["names"][0]["givenName"] for n, p in result.items()} == {n: f"U{i}" for i, n in enumerate(names)}

    fresh = client.batch_get(names, FIELDS)
    sandbox.update_contact(ANNA, names[1], {"names": [{"givenName": "Hand edit"}]})
    with pytest.raises(EtagMismatch) as stale:
        client.batch_update({n: {"etag": fresh[n]["etag"], "names": [{"givenName": "V"}]} for n in names},
                            ["names"], ["names"])
    assert stale.value.resource_names == [names[1]]
    assert [sandbox.contact(ANNA, n)["names"][0]["givenName"] for n in names] == ["U0", "Hand edit", "U2"]


def test_batch_update_chunks_at_200(client, sandbox, recorder):
    created = client.batch_create([person(f"C{i}") for i in range(201)], "names,metadata")
    result = client.batch_update({p["resourceName"]: {"etag": p["etag"], "names": [{"givenName": "Same"}]}
                                  for p in created}, "names", "names")
    assert len(result) == 201 and recorder.count("POST", "/v1/people:batchUpdateContacts") == 2


def test_batch_update_with_invalid_contact_is_rejected_per_contact(client, sandbox):
    names = make_contacts(sandbox, 2)
    read = client.batch_get(names, FIELDS)
    with pytest.raises(BatchRejected) as rejected:
        client.batch_update({names[0]: {"etag": read[names[0]]["etag"], "emailAddresses": [{"value": "not-an-email"}]},
                             names[1]: {"etag": read[names[1]]["etag"], "emailAddresses": [{"value": "ok@x.example"}]}},
                            "emailAddresses", "names")
    assert set(rejected.value.google.contact_errors) == {names[0]}
    assert not isinstance(rejected.value, EtagMismatch)


def test_batch_delete_chunks_and_tolerates_gone_contacts(client, sandbox, recorder):
    created = client.batch_create([person(f"D{i}") for i in range(3)], "names")
    names = [p["resourceName"] for p in created]
    sandbox.delete_contact(ANNA, names[0])
    client.batch_delete(names)  # the chunk's 404 falls back to one by one
    assert sandbox.contact_count(ANNA) == 0

    many = client.batch_create([person(f"E{i}") for i in range(501)], "names")
    recorder.calls.clear()
    client.batch_delete([p["resourceName"] for p in many])
    assert recorder.count("POST", "/v1/people:batchDeleteContacts") == 2 and sandbox.contact_count(ANNA) == 0


# -- limits, quota, server errors, tokens ----------------------------------------------------------
@pytest.mark.parametrize("options", [{"contact_limit": 3}, {"contact_limit": 3, "contact_limit_status": 429}],
                         indirect=True)
def test_contact_cap_is_contact_limit_reached(client, sandbox, recorder):
    client.batch_create([person("A"), person("B")], "names")
    recorder.calls.clear()
    with pytest.raises(ContactLimitReached) as capped:
        client.batch_create([person("C"), person("D")], "names")
    assert isinstance(capped.value, Fatal) and not isinstance(capped.value, Retriable)
    assert recorder.count("POST", "/v1/people:batchCreateContacts") == 1  # not retried, even as a 429
    client.create_contact(person("C"), "names")
    with pytest.raises(ContactLimitReached):
        client.create_contact(person("D"), "names")
    assert sandbox.contact_count(ANNA) == 3


def test_429_burst_is_retriable_with_retry_after(client, faults, recorder):
    faults(burst_429=5, retry_after=2)
    with pytest.raises(QuotaExceeded) as quota:
        list(client.groups())
    assert isinstance(quota.value, Retriable) and quota.value.retry_after == 2
    assert "RATE_LIMIT_EXCEEDED" in quota.value.google.reasons
    assert recorder.sleeps == [2] and recorder.count("GET", "/v1/contactGroups") == 2  # one retry in the call


def test_429_on_a_create_is_retried_once_refused(client, sandbox, faults, recorder):
    faults(burst_429=1)
    client.create_contact(person("Once"), "names")
    assert recorder.count("POST", "/v1/people:createContact") == 2 and recorder.sleeps == [1]
    assert sandbox.contact_count(ANNA) == 1


@pytest.mark.parametrize("options", [{"write_quota_per_minute": 12}], indirect=True)
def test_per_user_quota_with_a_long_retry_after_goes_to_the_job_queue(client, recorder):
    client.batch_create([person("A")], "names")  # 6 critical writes
    client.batch_create([person("B")], "names")  # 12
    recorder.calls.clear()
    with pytest.raises(QuotaExceeded) as quota:
        client.batch_create([person("C")], "names")
    assert quota.value.retry_after == 40  # the fake clock is 20 s into the minute
    assert recorder.sleeps == [] and len(recorder.calls) == 1  # too long to sleep in-call
    assert quota.value.google.metadata["quota_metric"] == "people.googleapis.com/critical_write_requests"


def test_5xx_goes_to_the_job_queue_then_succeeds(client, sandbox, faults, recorder):
    sandbox.create_group(ANNA, "Kunden")
    faults(error_rate=1.0, error_status=503)                 # no Retry-After: nothing to sleep on here
    with pytest.raises(Retriable) as err:
        list(client.groups())
    assert err.value.retry_after is None and recorder.sleeps == []
    faults(error_rate=0.0)
    assert [g["name"] for g in client.groups() if g["groupType"] == "USER_CONTACT_GROUP"] == ["Kunden"]
    assert [c[2] for c in recorder.calls] == [503, 200]


def test_5xx_that_persists_is_retriable(client, faults, recorder):
    faults(error_rate=1.0, error_status=500)
    with pytest.raises(Retriable):
        client.get_person("people/c1", "names")
    assert len(recorder.calls) == 1 and recorder.sleeps == []


def test_5xx_on_a_create_is_not_retried_blindly(client, sandbox, faults, recorder):
    faults(error_rate=1.0, error_status=502)
    with pytest.raises(WriteOutcomeUnknown) as unknown:
        client.batch_create([person("X", crm_id="77")], "names")
    assert isinstance(unknown.value, Retriable)
    assert recorder.count("POST", "/v1/people:batchCreateContacts") == 1
    faults(error_rate=0.0)
    assert client.find_by_marker("relayhub.crm_id", ["77"]) == {}  # reconcile: nothing landed, safe to create
    client.batch_create([person("X", crm_id="77")], "names")
    assert set(client.find_by_marker("relayhub.crm_id")) == {"77"}


def test_401_refreshes_once_and_succeeds(client, tokens, server, sandbox, recorder):
    import requests
    assert requests.post(f"{server.url}/_sandbox/tokens/expire", timeout=5).status_code == 200
    old = tokens.access
    assert list(client.groups())
    assert tokens.refreshes == 1 and tokens.access != old
    assert [c[2] for c in recorder.calls] == [401, 200]


def test_refused_refresh_is_needs_reauth(client, tokens, server, sandbox):
    import requests
    sandbox.tokens.revoke(tokens.refresh)
    requests.post(f"{server.url}/_sandbox/tokens/expire", timeout=5)
    with pytest.raises(NeedsReauth):
        list(client.groups())


def test_error_message_is_googles(client):
    with pytest.raises(NotFound) as missing:
        client.get_person("people/c424242", "names")
    assert "NOT_FOUND" in str(missing.value) and "Requested entity was not found." in str(missing.value)
