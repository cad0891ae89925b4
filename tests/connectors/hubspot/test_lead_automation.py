"""HubSpot's lead pipeline automation end to end, against the emulator: the admin installs the app
from the sandbox's marketplace, configures the behaviours on the hub's lead automation page, and a
HubSpot user's changes travel as signed webhook batches (webhook -> event -> rule -> HubSpot call)."""
from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
from sqlalchemy import select, update

from hub.rules import service
from hub.store import AuditEvent, HubEvent, InboxEvent, Job, utcnow
from hub.store.models import ObjectFlag, RuleRun, RuleStepRun

# the page's form: s0 = lead pipelines; e<n> = the n-th pipeline; p<n> = the n-th preset of
# presets.py; f<n> = its n-th fill (f0, the pipeline itself, is not shown)
LIFECYCLE, FOLLOW_UP, OUTREACH, RESPONSE, ON_STAGE = "p0", "p1", "p2", "p3", "p4"


class Play:
    """The installed hub, its admin, and the HubSpot account a user plays in the emulator."""

    def __init__(self, hub, admin, iid, sb, portal):
        self.hub, self.admin, self.iid, self.sb, self.portal = hub, admin, iid, sb, portal

    @property
    def services(self):
        return self.hub.services

    def settle(self) -> None:
        """HubSpot sends what is pending; the hub runs every due job (ingest, rules)."""
        self.sb.deliver_pending(force=True)
        self.hub.run_jobs()
        self.sb.deliver_pending(force=True)       # what the rules' own changes fired
        self.hub.run_jobs()

    def contact(self, first: str) -> dict:
        return next(c for c in self.sb.records(self.portal, "contacts") if c["properties"]["firstname"] == first)

    def leads(self, contact_id=None) -> list[dict]:
        rows = self.sb.records(self.portal, "leads")
        if contact_id is None:
            return rows
        return [r for r in rows if str(contact_id) in self.sb.associated_ids(self.portal, "leads", r["id"], "contacts")]

    def stage(self, lead: dict) -> str:
        return self.sb.value(self.portal, "leads", lead["id"], "hs_pipeline_stage")


def install(hub):
    admin = hub.browser()
    first = admin.get("/install/hubspot", allow_redirects=False)
    assert first.status_code == 302, first.text[:500]
    authorize = first.headers["Location"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    sb = hub.emulator("hubspot")
    portal = sb.portals()[0]["hub_id"]
    user = sb.users(portal)[0]                                   # Ada, the account's super admin
    consent = admin.post(authorize.split("?")[0], data={**query, "decision": "allow",
                                                        "account": f"{portal}:{user['id']}"}, allow_redirects=False)
    assert consent.status_code == 302, consent.text[:500]
    landed = admin.get(urljoin(authorize, consent.headers["Location"]))
    assert landed.status_code == 200, landed.text[:500]
    iid = int(re.search(r"/i/(\d+)/", landed.url).group(1))
    done = admin.form_post(f"/i/{iid}/visibility", {"visibility": "only_me", "setup": "1"},
                           csrf_from=f"/i/{iid}/visibility?setup=1")
    assert done.status_code == 200, done.text[:500]
    return admin, iid, sb, portal


@pytest.fixture
def play(make_live_hub):
    hub = make_live_hub()
    admin, iid, sb, portal = install(hub)
    hub.run_jobs()
    return Play(hub, admin, iid, sb, portal)


def configure(play, entry: int = 0, **behaviours) -> None:
    """The admin saves the lead automation page: {preset: {fill number: value}} for one pipeline."""
    form = {}
    for preset, fills in behaviours.items():
        name = f"s0e{entry}{preset}"
        form[f"{name}on"] = "1"
        for n, value in fills.items():
            form[f"{name}f{n}"] = value
    done = play.admin.form_post(f"/i/{play.iid}/automation", form, csrf_from=f"/i/{play.iid}/automation")
    assert done.status_code == 200 and "Saved" in done.text, re.findall(r'class="error[^>]*>([^<]*)', done.text)


def ids(play):
    """Names -> ids in the demo account (its lead pipelines, stages, reasons)."""
    pipes = play.sb.pipelines(play.portal, "leads")
    stages = {(p["label"], st["label"]): st["id"] for p in pipes for st in p["stages"]}
    reasons = {o["label"]: o["value"] for o in
               play.sb.property(play.portal, "leads", "hs_lead_disqualification_reason")["options"]}
    return {p["label"]: p["id"] for p in pipes}, stages, reasons


def runs(play) -> list[RuleRun]:
    with play.services.db.begin() as s:
        return list(s.scalars(select(RuleRun).order_by(RuleRun.id)))


def test_1_a_contact_entering_a_chosen_lifecycle_stage_gets_a_lead_but_not_through_company_sync(play):
    pipes, stages, _ = ids(play)
    configure(play, **{LIFECYCLE: {1: ["salesqualifiedlead", "marketingqualifiedlead"],
                                   2: "{{ record.firstname }} {{ record.lastname }} - inbound"}})
    ana, maria = play.contact("Ana"), play.contact("Maria")
    assert play.leads(ana["id"]) == []
    play.sb.set_lifecycle(play.portal, "contacts", ana["id"], "salesqualifiedlead")
    play.settle()
    [lead] = play.leads(ana["id"])
    props = lead["properties"]
    assert props["hs_lead_name"] == "Ana Trujillo - inbound"
    assert props["hs_pipeline"] == pipes["Lead pipeline"] and play.stage(lead) == stages[("Lead pipeline", "New")]
    assert props["hubspot_owner_id"] == ana["properties"]["hubspot_owner_id"]

    # the company's stage syncs down to Maria: a lifecycle change, but not a person's: no lead
    company = play.sb.records(play.portal, "companies")[0]
    play.sb.set_lifecycle(play.portal, "companies", company["id"], "marketingqualifiedlead")
    play.settle()
    assert play.sb.value(play.portal, "contacts", maria["id"], "lifecyclestage") == "marketingqualifiedlead"
    assert play.leads(maria["id"]) == []
    with play.services.db.begin() as s:
        causes = [e.data["extra"]["cause"] for e in s.scalars(select(HubEvent).where(
            HubEvent.kind == "person.lifecycle_changed", HubEvent.object_id == str(maria["id"])))]
    assert causes == ["company_sync"]
    # a stage not chosen: no lead either; the same stage again (a duplicate): still one lead for Ana
    play.sb.set_lifecycle(play.portal, "contacts", maria["id"], "opportunity")
    play.settle()
    assert play.leads(maria["id"]) == [] and len(play.leads(ana["id"])) == 1


def test_2_a_disqualified_lead_gets_a_follow_up_lead_after_the_delay(play):
    pipes, stages, reasons = ids(play)
    configure(play, **{FOLLOW_UP: {1: [reasons["Wrong timing"]], 2: pipes["Partner leads"],
                                   3: stages[("Partner leads", "Contacted")], 4: "Later: {{ lead.title }}",
                                   5: "2", "5_unit": "days"}})
    thomas = play.contact("Thomas")
    [lead] = play.leads(thomas["id"])
    play.sb.disqualify_lead(play.portal, lead["id"], reasons["Wrong timing"])
    play.settle()
    assert len(play.leads(thomas["id"])) == 1            # it waits two days
    [run] = runs(play)
    assert run.status == "waiting"
    with play.services.db.begin() as s:
        s.execute(update(Job).where(Job.status == "queued").values(run_at=utcnow() - timedelta(seconds=1)))
    play.settle()
    follow = [x for x in play.leads(thomas["id"]) if x["id"] != lead["id"]]
    assert len(follow) == 1
    props = follow[0]["properties"]
    assert props["hs_lead_name"] == "Later: Thomas Hardy - new business"
    assert (props["hs_pipeline"], props["hs_pipeline_stage"]) == (pipes["Partner leads"],
                                                                  stages[("Partner leads", "Contacted")])

    # another reason: no follow-up
    ana = play.contact("Ana")
    other = play.sb.create(play.portal, "leads", {"hs_lead_name": "Ana", "hs_pipeline": pipes["Lead pipeline"],
                                                  "hs_pipeline_stage": stages[("Lead pipeline", "New")]},
                           [{"to": {"id": str(ana["id"])}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                                      "associationTypeId": 578}]}],
                           source=play.sb.ui_source(play.portal))
    play.settle()
    play.sb.disqualify_lead(play.portal, other["id"], reasons["No budget"])
    play.settle()
    assert len(play.leads(ana["id"])) == 1


def test_3_5_outreach_moves_a_lead_forward_until_a_person_moves_it_back(play):
    pipes, stages, _ = ids(play)
    attempting, connected = stages[("Lead pipeline", "Attempting")], stages[("Lead pipeline", "Connected")]
    configure(play, **{OUTREACH: {1: attempting, 2: connected, 3: ["email", "call"]}})
    thomas = play.contact("Thomas")
    [lead] = play.leads(thomas["id"])
    assert play.stage(lead) == attempting
    play.sb.log_activity(play.portal, thomas["id"], "linkedin")          # does not count
    play.settle()
    assert play.stage(lead) == attempting
    play.sb.log_activity(play.portal, thomas["id"], "email")
    play.settle()
    assert play.stage(lead) == connected
    history = play.sb.find(play.portal, "leads", lead["id"])["history"]["hs_pipeline_stage"]
    assert history[0]["sourceType"] == "INTEGRATION"                      # the hub moved it (newest first)

    # a person moves it back by hand: auto-advance goes off for this lead
    play.sb.move_lead(play.portal, lead["id"], attempting)
    play.settle()
    with play.services.db.begin() as s:
        [flag] = s.scalars(select(ObjectFlag)).all()
        assert (flag.object_type, flag.object_id, flag.value) == ("lead", str(lead["id"]), False)
    play.sb.log_activity(play.portal, thomas["id"], "call")
    play.settle()
    assert play.stage(lead) == attempting
    with play.services.db.begin() as s:
        [skipped] = s.scalars(select(RuleStepRun).where(RuleStepRun.status == "skipped")).all()
        event_id = s.scalar(select(HubEvent.id).where(HubEvent.kind == "lead.stage_changed",
                                                      HubEvent.object_id == str(lead["id"]))
                            .order_by(HubEvent.id.desc()).limit(1))
    assert "auto-advance is off for lead" in skipped.detail["reason"]

    # the admin switches it back on from the lead's trace: the next outreach moves it again
    trace = play.admin.get(f"/i/{play.iid}/events/{event_id}")
    assert "Switch auto-advance back on" in trace.text
    play.admin.form_post(f"/i/{play.iid}/objects/lead/{lead['id']}/auto-advance", {"on": "1", "event_id": event_id},
                         csrf_from=f"/i/{play.iid}/events/{event_id}")
    with play.services.db.begin() as s:
        assert s.scalar(select(AuditEvent.id).where(AuditEvent.action == "object.auto_advance_on"))
    play.sb.log_activity(play.portal, thomas["id"], "call")
    play.settle()
    assert play.stage(lead) == connected


def test_4_a_response_moves_a_lead_forward(play):
    pipes, stages, _ = ids(play)
    attempting, connected = stages[("Lead pipeline", "Attempting")], stages[("Lead pipeline", "Connected")]
    configure(play, **{RESPONSE: {1: attempting, 2: connected, 3: ["meeting", "call"]}})
    thomas = play.contact("Thomas")
    [lead] = play.leads(thomas["id"])
    play.sb.log_activity(play.portal, thomas["id"], "call")              # no answer: outreach, not a response
    play.sb.log_activity(play.portal, thomas["id"], "email", response=True)   # a reply, but not chosen
    play.settle()
    assert play.stage(lead) == attempting
    play.sb.log_activity(play.portal, thomas["id"], "meeting", response=True)
    play.settle()
    assert play.stage(lead) == connected


def test_6_steps_when_a_lead_enters_a_stage_and_won_deals_make_hubspot_tasks(play):
    pipes, stages, _ = ids(play)
    connected = stages[("Lead pipeline", "Connected")]
    configure(play, **{ON_STAGE: {1: connected, 2: "Qualify {{ lead.title }}"}})
    thomas = play.contact("Thomas")
    [lead] = play.leads(thomas["id"])
    before = len(play.sb.records(play.portal, "tasks"))
    play.sb.move_lead(play.portal, lead["id"], connected)
    play.settle()
    tasks = play.sb.records(play.portal, "tasks")
    assert len(tasks) == before + 1
    task = tasks[-1]
    assert task["properties"]["hs_task_subject"] == "Qualify Thomas Hardy - new business"
    assert str(lead["id"]) in play.sb.associated_ids(play.portal, "tasks", task["id"], "leads")

    rule = service.create(play.services, play.iid, {"preset": "hubspot-task-on-won-deal"}, "admin")
    service.set_status(play.services, play.iid, rule["id"], "active", "admin")
    deal = play.sb.records(play.portal, "deals")[1]
    play.sb.close_deal(play.portal, deal["id"], won=True)
    play.settle()
    task = play.sb.records(play.portal, "tasks")[-1]
    assert task["properties"]["hs_task_subject"] == f"Kick-off: {deal['properties']['dealname']}"
    assert str(deal["id"]) in play.sb.associated_ids(play.portal, "tasks", task["id"], "deals")


def test_a_duplicated_and_reordered_batch_makes_each_effect_once(play):
    pipes, stages, _ = ids(play)
    configure(play, **{LIFECYCLE: {1: ["salesqualifiedlead"], 2: "{{ record.title }}"}})
    play.sb.faults.update({"webhook_duplicate_rate": 1.0, "webhook_reorder_rate": 1.0})
    ana, christina = play.contact("Ana"), play.contact("Christina")
    play.sb.set_lifecycle(play.portal, "contacts", ana["id"], "marketingqualifiedlead")
    play.sb.set_lifecycle(play.portal, "contacts", ana["id"], "salesqualifiedlead")
    play.sb.set_lifecycle(play.portal, "contacts", christina["id"], "salesqualifiedlead")
    play.settle()
    play.sb.faults.update({"webhook_duplicate_rate": 0.0, "webhook_reorder_rate": 0.0})
    with play.services.db.begin() as s:
        stored = s.scalars(select(InboxEvent.event_key)).all()
    assert len(stored) == len(set(stored))                 # duplicates stored once
    assert [x["properties"]["hs_lead_name"] for x in play.leads(ana["id"])] == ["Ana Trujillo"]
    assert [x["properties"]["hs_lead_name"] for x in play.leads(christina["id"])] == ["Christina Berglund"]
    assert [r.status for r in runs(play)] == ["done", "done"]
