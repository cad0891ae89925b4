"""The sync engine against the sandbox emulators over HTTP: both directions, conflicts, echo
suppression, expired tokens, stale etags, 429s, kill-and-resume, the cap and the deletion pause."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from hub.connectors.base import CrmEvent
from hub.connectors.contract.contacts import ContactsContext
from hub.connectors.google.client import PeopleClient
from hub.connectors.google.store import GoogleContacts
from hub.events import record
from hub.store import RunLog
from hub.store.models import ContactSync, SyncConflict, SyncLink, SyncRun
from hub.sync.engine import SyncEngine
from hub.oauth.tokens import ConnectionTokens
from tests.sync.conftest import Setup, make_setup


class Killed(BaseException):
    """Stands in for kill -9: nothing after it runs, the database keeps what was committed."""


def link_of(setup: Setup, crm_id) -> SyncLink | None:
    with setup.hub.services.db.begin() as s:
        return s.scalar(select(SyncLink).where(SyncLink.sync_id == setup.sync_id, SyncLink.crm_id == str(crm_id)))


def delete_event(setup: Setup, person_id: int) -> None:
    """What the webhook ingest records for a Pipedrive person delete."""
    with setup.hub.services.db.begin() as s:
        record(setup.hub.services, s, setup.iid, CrmEvent(
            kind="person.deleted", object_type="person", object_id=str(person_id), event_id=f"del-{person_id}",
            occurred_at=None, current=None, previous={"id": person_id}), source="webhook")


def google_store(setup: Setup, cls=PeopleClient) -> GoogleContacts:
    """The sync's contact store, talking through a People client of class `cls`."""
    with setup.hub.services.db.begin() as s:
        sync = s.get(ContactSync, setup.sync_id)
        from hub.store import Connection
        conn = s.get(Connection, sync.store_connection_id)
        client = cls(conn.api_base, ConnectionTokens(setup.hub.services, conn.id))
    return GoogleContacts(ContactsContext(conn.api_base, client=client))


def test_initial_sync_then_nothing_to_do(setup: Setup):
    result = setup.run()
    assert result["status"] == "done", result
    persons = setup.persons()
    contacts = setup.label_contacts()
    assert result["created_store"] == len(persons) == len(contacts) == 3
    katrin = setup.by_name("Katrin")
    assert katrin["names"][0]["familyName"] == "Vogel"
    assert katrin["organizations"][0]["name"]          # the person's organization, by name
    marker = {c["key"]: c["value"] for c in katrin["clientData"]}
    assert marker["relayhub.crm_id"] == str(persons["Katrin Vogel"]["id"])
    again = setup.run()
    assert again["status"] == "done" and again["message"] == "nothing to do", again


def test_crm_create_update_delete_reach_google(setup: Setup):
    setup.run()
    pd = setup.pipedrive
    new = pd.create_person(first_name="Lena", last_name="Berg", emails=[{"value": "lena@berg.example", "primary": True,
                                                                          "label": "work"}])
    assert setup.run()["created_store"] == 1
    assert setup.by_name("Lena")["emailAddresses"][0]["value"] == "lena@berg.example"
    pd.update_person(new["id"], {"phones": [{"value": "+49 30 1234567", "label": "mobile", "primary": True}]})
    result = setup.run()
    assert result["updated_store"] == 1 and result["updated_crm"] == 0, result
    assert setup.by_name("Lena")["phoneNumbers"][0]["value"] == "+49 30 1234567"
    pd.delete_person(new["id"])
    delete_event(setup, new["id"])
    result = setup.run()
    assert result["deleted_store"] == 1, result
    assert not [c for c in setup.label_contacts() if c["names"][0].get("givenName") == "Lena"]
    assert link_of(setup, new["id"]) is None


def test_google_create_update_delete_reach_crm(setup: Setup):
    setup.run()
    g = setup.google
    created = g.create_contact(setup.account, {
        "names": [{"givenName": "Mira", "familyName": "Holm"}],
        "emailAddresses": [{"value": "mira@holm.example", "type": "work"}],
        "memberships": [{"contactGroupMembership": {"contactGroupResourceName": setup.label}}]})
    result = setup.run()
    assert result["created_crm"] == 1, result
    mira = setup.persons()["Mira Holm"]
    assert mira["emails"][0]["value"] == "mira@holm.example"
    # the new contact now carries the marker, so a lost link would be found again
    assert {c["key"]: c["value"] for c in setup.google.contact(setup.account, created["resourceName"])["clientData"]} \
        == {"relayhub.crm_id": str(mira["id"])}
    assert setup.run()["message"] == "nothing to do"          # neither echo comes back
    g.update_contact(setup.account, created["resourceName"], {"names": [{"givenName": "Mira", "familyName": "Holm-Berg"}]})
    result = setup.run()
    assert result["updated_crm"] == 1 and result["updated_store"] == 0, result
    assert "Mira Holm-Berg" in setup.persons()
    g.delete_contact(setup.account, created["resourceName"])
    result = setup.run()
    assert result["deleted_crm"] == 1, result
    assert "Mira Holm-Berg" not in setup.persons()


def test_own_writes_are_not_echoed_and_events_of_them_do_not_trigger_runs(setup: Setup):
    setup.run()
    katrin = setup.persons()["Katrin Vogel"]
    rn = link_of(setup, katrin["id"]).resource_name
    setup.google.update_contact(setup.account, rn, {"names": [{"givenName": "Katrin", "familyName": "Vogel-Kern"}]})
    assert setup.run()["updated_crm"] == 1
    after = setup.run()
    assert after["message"] == "nothing to do", after
    # the person.updated event of our own write (same update_time) starts no run
    person = setup.persons()["Katrin Vogel-Kern"]
    from hub.sandbox.pipedrive.models import person_hook, v2_time
    fields = setup.pipedrive.fields("person")
    with setup.hub.services.db.begin() as s:
        record(setup.hub.services, s, setup.iid, CrmEvent(
            kind="person.updated", object_type="person", object_id=str(person["id"]), event_id="echo-1",
            occurred_at=None, current=person_hook(person, fields),
            previous={}, version=v2_time(person["update_time"])), source="webhook")
        from hub.store import Job
        assert s.scalar(select(func.count()).select_from(Job).where(Job.kind == "sync.run")) == 0
    # a real edit's event does (a later second: events of one second share their occurrence)
    setup.pipedrive.clock = lambda: time.time() + 5
    setup.pipedrive.update_person(person["id"], {"name": "Katrin Kern"})
    fresh = setup.persons()["Katrin Kern"]
    with setup.hub.services.db.begin() as s:
        record(setup.hub.services, s, setup.iid, CrmEvent(
            kind="person.updated", object_type="person", object_id=str(fresh["id"]), event_id="real-1",
            occurred_at=None, current=person_hook(fresh, fields),
            previous={}, version=v2_time(fresh["update_time"])), source="webhook")
    setup.hub.run_jobs()
    with setup.hub.services.db.begin() as s:
        from hub.store import Job
        assert [r.trigger for r in s.scalars(select(SyncRun).where(SyncRun.sync_id == setup.sync_id))][-1] == "event"
    assert setup.by_name("Katrin")["names"][0]["familyName"] == "Kern"


@pytest.mark.parametrize("policy,winner", [("newest", "store"), ("crm", "crm"), ("store", "store")])
def test_both_sides_changed_conflict_policy(live_hub, policy, winner):
    setup = make_setup(live_hub, conflict_policy=policy)
    setup.run()
    aino = setup.persons()["Aino Laine"]
    rn = link_of(setup, aino["id"]).resource_name
    setup.pipedrive.update_person(aino["id"], {"name": "Aino Laine-CRM",
                                               "phones": [{"value": "+358 40 111", "label": "work", "primary": True}]})
    setup.google.clock = lambda: time.time() + 60   # the Google edit is the newer one for "newest"
    setup.google.update_contact(setup.account, rn, {"names": [{"givenName": "Aino", "familyName": "Laine-Google"}]})
    result = setup.run()
    assert result["conflicts"] == 1, result
    with live_hub.services.db.begin() as s:
        [conflict] = s.scalars(select(SyncConflict).where(SyncConflict.sync_id == setup.sync_id)).all()
    assert (conflict.field, conflict.winner, conflict.policy) == ("name", winner, policy)
    family = "Laine-Google" if winner == "store" else "Laine-CRM"
    assert setup.by_name("Aino")["names"][0]["familyName"] == family
    person = setup.pipedrive.data["pd_persons"][str(aino["id"])]
    assert person["last_name"] == family
    # the field only the CRM changed is merged in, whoever won the name
    assert setup.by_name("Aino")["phoneNumbers"][0]["value"] == "+358 40 111"


def test_expired_sync_token_full_comparison_creates_no_duplicates(setup: Setup):
    setup.run()
    setup.pipedrive.create_person("Olli Paju")
    setup.google.expire_sync_tokens(setup.account)
    result = setup.run()
    assert result["full_listing"] and result["created_store"] == 1, result
    assert len(setup.label_contacts()) == 4
    # links lost entirely (e.g. restored backup): the markers re-link, still no duplicates
    with setup.hub.services.db.begin() as s:
        s.query(SyncLink).filter(SyncLink.sync_id == setup.sync_id).delete()
    setup.google.expire_sync_tokens(setup.account)
    setup.run()
    assert len(setup.label_contacts()) == 4
    with setup.hub.services.db.begin() as s:
        assert s.scalar(select(func.count()).select_from(SyncLink).where(SyncLink.sync_id == setup.sync_id)) == 4


def test_previous_resource_names_rekey_links(setup: Setup):
    setup.run()
    tonis = setup.persons()["Tonis Kask"]
    old = link_of(setup, tonis["id"]).resource_name
    new = setup.google.relink_contact(setup.account, old)
    result = setup.run()
    assert result["relinked"] == 1 and link_of(setup, tonis["id"]).resource_name == new
    setup.pipedrive.update_person(tonis["id"], {"name": "Tonis Kask-Uus"})
    assert setup.run()["updated_store"] == 1
    assert len(setup.label_contacts()) == 3


@pytest.mark.parametrize("race_after", ["batch_get", "iter_connections"])
def test_stale_etag_is_reread_and_merged(setup: Setup, race_after):
    """A user edits the contact after the hub read it: right after the etag was fetched (the update
    meets a stale etag: re-read, merge, send again), or after the listing (the fresh read merges)."""
    setup.run()
    assert setup.run()["message"] == "nothing to do"   # the echoes are read: the next listing is empty
    katrin = setup.persons()["Katrin Vogel"]
    rn = link_of(setup, katrin["id"]).resource_name
    setup.pipedrive.update_person(katrin["id"], {"phones": [{"value": "+49 40 555", "label": "work", "primary": True}]})
    sandbox, account = setup.google, setup.account

    class Racing(PeopleClient):
        raced = False

        @staticmethod
        def race():
            if not Racing.raced:   # a user edits the contact right after we read it
                Racing.raced = True
                sandbox.update_contact(account, rn, {"names": [{"givenName": "Katrin", "familyName": "Vogel-Neu"}]})

        def iter_connections(self, *args, **kwargs):
            yield from super().iter_connections(*args, **kwargs)
            if race_after == "iter_connections":
                self.race()

        def batch_get(self, *args, **kwargs):
            got = super().batch_get(*args, **kwargs)
            if race_after == "batch_get":
                self.race()
            return got

    result = SyncEngine(setup.hub.services, setup.sync_id, store=google_store(setup, Racing)).run()
    assert result["status"] == "done" and Racing.raced, result
    assert result["conflicts"] == 0                                    # different fields: merged, no conflict
    contact = sandbox.contact(account, rn)
    assert contact["phoneNumbers"][0]["value"] == "+49 40 555"          # our change
    assert contact["names"][0]["familyName"] == "Vogel-Neu"             # theirs, kept by the merge
    assert setup.persons()["Katrin Vogel-Neu"]["phones"][0]["value"] == "+49 40 555"   # both reach the CRM
    assert setup.run()["message"] == "nothing to do"


def test_429_storm_is_ridden_out(setup: Setup):
    from hub.errors import Retriable
    setup.google.faults.update({"burst_429": 1, "retry_after": 0})
    setup.pipedrive.faults.update({"burst_429": 1, "retry_after": 0})
    result = setup.run()            # short bursts: retried once inside the call, Retry-After honoured
    assert result["status"] == "done" and result["created_store"] == 3
    setup.pipedrive.create_person("Storm Person")
    setup.google.faults.update({"burst_429": 2, "retry_after": 0})
    with pytest.raises(Retriable):  # a long storm: the job is retried later and the run resumes
        setup.run()
    with setup.hub.services.db.begin() as s:
        run = s.scalars(select(SyncRun).where(SyncRun.sync_id == setup.sync_id).order_by(SyncRun.id.desc())).first()
        assert run.status == "running" and "interrupted" in run.message
    setup.google.faults.update({"burst_429": 0})
    result = setup.run()
    assert result["status"] == "done" and result["run_id"] == run.id and result["created_store"] == 1


def bulk_persons(setup: Setup, n: int) -> None:
    for i in range(n):
        setup.pipedrive.create_person(first_name=f"P{i:03d}", last_name="Bulk")


def test_killed_after_a_batch_resumes_without_duplicates(setup: Setup):
    bulk_persons(setup, 250)

    def kill_after_first(engine, what):
        if what == "create_store":
            raise Killed()

    with pytest.raises(Killed):
        setup.run(after_batch=kill_after_first)
    assert len(setup.label_contacts()) == 200
    with setup.hub.services.db.begin() as s:
        [run] = s.scalars(select(SyncRun).where(SyncRun.sync_id == setup.sync_id)).all()
        assert run.status == "running" and run.progress["create_store"] == {"done": 200, "total": 253}
    result = setup.run()
    assert result["status"] == "done" and result["run_id"] == run.id, result
    assert len(setup.label_contacts()) == 253
    with setup.hub.services.db.begin() as s:
        assert s.get(SyncRun, run.id).attempts == 2


def test_killed_after_google_created_but_before_links_were_saved(setup: Setup):
    bulk_persons(setup, 5)

    class LostAnswer(PeopleClient):
        def iter_batch_create(self, contacts, read_mask):
            for chunk in super().iter_batch_create(contacts, read_mask):
                raise Killed()   # Google created them; we never learn the resource names
                yield chunk

    with pytest.raises(Killed):
        SyncEngine(setup.hub.services, setup.sync_id, store=google_store(setup, LostAnswer)).run()
    assert len(setup.label_contacts()) == 8
    result = setup.run()
    assert result["status"] == "done" and result["created_store"] == 0, result
    assert len(setup.label_contacts()) == 8          # found by their marker, not created again
    with setup.hub.services.db.begin() as s:
        assert s.scalar(select(func.count()).select_from(SyncLink).where(SyncLink.sync_id == setup.sync_id,
                                                                         SyncLink.state == "linked")) == 8


def test_cap_counts_the_whole_account_and_reports_who_was_left_out(setup: Setup):
    existing = setup.google.contact_count(setup.account)
    setup.change(contact_cap=existing + 2)             # room for 2 of the 3 persons
    result = setup.run()
    assert result["created_store"] == 2 and result["left_out"] == 1, result
    assert setup.google.contact_count(setup.account) == existing + 2
    with setup.hub.services.db.begin() as s:
        [left] = s.scalars(select(SyncLink).where(SyncLink.sync_id == setup.sync_id, SyncLink.state == "left_out")).all()
        assert left.display_name == "Tonis Kask" and f"cap is {existing + 2}" in left.note
        assert s.scalar(select(RunLog).where(RunLog.sync_id == setup.sync_id, RunLog.step == "sync.left_out"))
    # updates still go through at the cap
    aino = setup.persons()["Aino Laine"]
    setup.pipedrive.update_person(aino["id"], {"name": "Aino Laine-Uus"})
    result = setup.run()
    assert result["updated_store"] == 1 and result["created_store"] == 0
    # room again: the left-out person is added
    setup.change(contact_cap=existing + 3)
    assert setup.run()["created_store"] == 1
    assert len(setup.label_contacts()) == 3


def test_google_contact_limit_error_leaves_persons_out(setup: Setup):
    setup.google.contact_limit = setup.google.contact_count(setup.account) + 1
    result = setup.run()
    assert result["created_store"] == 0 and result["left_out"] == 3, result


def test_mass_deletion_pauses_until_confirmed(setup: Setup):
    from hub.sync import service
    setup.run()
    for c in setup.label_contacts()[:2]:
        setup.google.delete_contact(setup.account, c["resourceName"])
    setup.change(delete_share=0.1)
    engine = SyncEngine(setup.hub.services, setup.sync_id)
    engine.delete_pause_min = 0
    result = engine.run()
    assert result["status"] == "paused" and result["deleted_crm"] == 0, result
    assert len(setup.persons()) == 3
    with setup.hub.services.db.begin() as s:
        sync = s.get(ContactSync, setup.sync_id)
        assert sync.status == "awaiting_confirmation" and len(sync.pending_deletes["crm"]) == 2
    service.decide_deletes(setup.hub.services, setup.iid, setup.sync_id, "test", confirm=True)
    setup.hub.run_jobs()
    assert len(setup.persons()) == 1
    with setup.hub.services.db.begin() as s:
        sync = s.get(ContactSync, setup.sync_id)
        assert sync.status == "idle" and sync.pending_deletes == {}


def test_listing_without_deletion_signal_deletes_nothing(setup: Setup):
    setup.run()
    # the CRM lists nothing (a filter matching nobody): absence is not a deletion signal
    setup.change(person_filter={"owner_id": 999999})
    setup.google.expire_sync_tokens(setup.account)
    result = setup.run()
    assert result["deleted_store"] == 0 and result["deleted_crm"] == 0
    assert len(setup.label_contacts()) == 3 and len(setup.persons()) == 3


@pytest.mark.parametrize("target", ["custom:Language", "notes"])
def test_a_text_custom_field_maps_both_ways(live_hub, target):
    """A text custom field of the person <-> a custom field (or the notes) of the contact."""
    setup = make_setup(live_hub)
    [language] = [f["key"] for f in setup.pipedrive.fields("person") if f["name"] == "Preferred language"]
    setup.change(field_map=[{"crm": "name", "store": "name"}, {"crm": language, "store": target}])

    def value(contact):
        if target == "notes":
            return (contact.get("biographies") or [{}])[0].get("value")
        return {u["key"]: u["value"] for u in contact.get("userDefined") or []}.get("Language")

    aino = setup.persons()["Aino Laine"]
    setup.pipedrive.update_person(aino["id"], {"custom_fields": {language: "fi"}})
    assert setup.run()["created_store"] == 3
    contact = setup.by_name("Aino")
    assert value(contact) == "fi"
    edit = {"biographies": [{"value": "sv", "contentType": "TEXT_PLAIN"}]} if target == "notes" else \
        {"userDefined": [{"key": "Language", "value": "sv"}]}
    setup.google.update_contact(setup.account, contact["resourceName"], edit)
    result = setup.run()
    assert result["updated_crm"] == 1 and result["conflicts"] == 0, result
    assert setup.pipedrive.data["pd_persons"][str(aino["id"])]["custom_fields"][language] == "sv"
    assert setup.run()["message"] == "nothing to do"
