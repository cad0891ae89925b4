"""The planner on plain data, without a database or a provider: what a run decides from the changes
both sides reported and the link table."""
from __future__ import annotations

from hub.connectors.contract.contacts import Contact
from hub.sync.links import CrmSide, Link, LinkIndex, StoreSide
from hub.sync.mapping import DEFAULT_FIELD_MAP, FieldMap, fingerprint
from hub.sync.planner import Planner, deletion_limit, room

FIELDS = FieldMap(list(DEFAULT_FIELD_MAP))
LABEL = "contactGroups/team"


def record(given: str, family: str = "Laine", email: str = "", org: str = "") -> dict:
    return {"name": [given, family], "emails": [[email, "work"]] if email else [], "phones": [], "organization": org}


def crm(rec: dict, version: str = "2026-01-01T10:00:00") -> CrmSide:
    return CrmSide(rec, fingerprint(rec), version)


def store(cid: str, rec: dict, *, marker: str | None = None, in_label: bool = True,
          updated: str = "2026-01-01T10:00:00") -> StoreSide:
    contact = Contact(id=cid, etag=f"etag-{cid}", marker=marker, groups=(LABEL,) if in_label else ())
    return StoreSide(rec, fingerprint(rec), contact, in_label, marker, updated)


def linked(crm_id: str, cid: str, rec: dict) -> Link:
    fp = fingerprint(rec)
    return Link(None, crm_id, cid, "linked", dict(rec), fp, "2026-01-01T09:00:00", fp, "etag-old", " ".join(rec["name"]))


def planner(*links: Link, direction: str = "two_way", policy: str = "newest", read_only: bool = False,
            pending: dict | None = None, parent: dict | None = None) -> Planner:
    index = LinkIndex({l.crm_id: l for l in links})
    return Planner(index, FIELDS, direction=direction, policy=policy, read_only=read_only, pending=pending,
                   parent_records=parent)


def test_a_field_changed_on_both_sides_is_a_conflict_won_by_the_policy_the_rest_merges():
    base = record("Aino")
    p = planner(linked("1", "people/1", base))
    ours = dict(base, name=["Aino", "CRM"], emails=[["aino@crm.example", "work"]])
    theirs = dict(base, name=["Aino", "Store"], organization="Laine Oy")
    plan = p.plan({"1": crm(ours, "2026-01-02T00:00:00")}, set(), {"people/1": store("people/1", theirs)}, set(), {})
    [conflict] = plan.conflicts
    assert (conflict["field"], conflict["winner"]) == ("name", "crm")            # the CRM's change is newer
    merged = plan.store_updates["1"]
    assert merged["name"] == ["Aino", "CRM"] and merged["emails"] == [["aino@crm.example", "work"]]
    assert merged["organization"] == "Laine Oy"
    assert plan.crm_updates["1"] == merged                                       # both sides get the merge
    assert plan.current["1"].etag == "etag-people/1"                             # the update is sent on what was read


def test_what_a_side_already_holds_is_not_written_and_the_link_takes_the_new_fingerprints():
    base = record("Aino")
    link = linked("1", "people/1", base)
    edited = dict(base, organization="Laine Oy")
    plan = planner(link).plan({"1": crm(edited)}, set(), {"people/1": store("people/1", edited)}, set(), {})
    assert not plan.store_updates and not plan.crm_updates and not plan.conflicts
    assert link.base == edited and link.crm_fp == link.store_fp == fingerprint(edited) and link in plan.saves


def test_deletions_follow_signals_only_where_the_sync_writes_and_never_while_held():
    a, b, c = linked("1", "people/1", record("A")), linked("2", "people/2", record("B")), linked("3", "people/3", record("C"))
    plan = planner(a, b, c, pending={"crm": ["3"]}).plan({}, {"1", "3"}, {}, {"people/2"}, {})
    assert plan.store_deletes == ["1"] and plan.crm_deletes == ["2"] and not plan.drop_links   # 3 waits for confirmation
    one_way = planner(linked("1", "people/1", record("A")), linked("2", "people/2", record("B")),
                      direction="crm_to_store").plan({}, set(), {}, {"people/2"}, {})
    assert one_way.crm_deletes == [] and one_way.drop_links == ["2"]              # the CRM is not written: unlinked


def test_a_contact_carrying_a_marker_is_linked_not_created_again():
    rec = record("Olli")
    plan = planner().plan({"9": crm(rec)}, set(), {"people/9": store("people/9", rec, marker="9")}, set(), {})
    assert not plan.store_creates and not plan.crm_creates
    [link] = plan.saves
    assert (link.crm_id, link.resource_name, link.state) == ("9", "people/9", "linked")
    fresh = planner().plan({"8": crm(record("New"))}, set(), {}, set(), {})
    assert [k for k, _ in fresh.store_creates] == ["8"]


def test_a_marker_of_a_person_not_read_links_only_when_the_person_still_exists():
    rec = record("Tonis")
    p = planner()
    contacts = {"people/5": store("people/5", rec, marker="5"), "people/6": store("people/6", rec, marker="6")}
    assert p.markers_to_read({}, contacts) == ["5", "6"]
    plan = p.plan({}, set(), contacts, set(), {"5": crm(rec), "6": None})
    assert [(l.crm_id, l.resource_name) for l in plan.saves] == [("5", "people/5")]
    assert not plan.crm_creates                                                   # 6 is gone: never resurrected


def test_a_read_only_share_reverts_edits_additions_and_deletions():
    base = record("Aino")
    kept, deleted = linked("1", "people/1", base), linked("2", "people/2", record("Ben"))
    parent = {"1": crm(base), "2": crm(record("Ben"))}
    p = planner(kept, deleted, direction="crm_to_store", read_only=True, parent=parent)
    seen = {"people/1": store("people/1", dict(base, name=["Aino", "Edit"])),
            "people/x": store("people/x", record("Private"))}
    plan = p.plan({}, set(), seen, {"people/2"}, {})
    assert plan.store_updates["1"]["name"] == ["Aino", "Laine"]                   # the edit is undone
    assert plan.label_removes == ["people/x"]                                     # the addition leaves the label
    assert plan.drop_links == ["2"] and [k for k, _ in plan.store_creates] == ["2"]   # the deletion comes back
    assert len(plan.reverted) == 3 and not plan.crm_updates and not plan.crm_creates


def test_write_ahead_links_find_the_person_a_killed_run_created():
    rec = record("Mira")
    ahead = Link(None, None, "people/7", "crm_creating", dict(rec), "", "", fingerprint(rec), "")
    p = Planner(LinkIndex({"~people/7": ahead}), FIELDS, direction="two_way", policy="newest", read_only=False,
                pending=None, parent_records=None)
    found = p.write_ahead({"44": crm(rec), "45": crm(record("Other"))}, {"people/7": store("people/7", rec)})
    assert found == [ahead] and (ahead.crm_id, ahead.state) == ("44", "linked")
    assert p.links["44"] is ahead and "~people/7" not in p.links and p.by_resource["people/7"] == "44"


def test_deletion_pause_and_cap_arithmetic():
    assert deletion_limit(100, 0.2, 5) == 20 and deletion_limit(10, 0.2, 5) == 5
    assert room(10, 25000, 24995) == 5 and room(10, 25000, 25000) == 0 and room(3, 25000, 25010) == 0
