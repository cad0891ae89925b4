"""Pipedrive as a target: activities made once per effect key (marker look-up after a lost answer),
completed and read back; deal updates; the validation of both step kinds against the catalogs."""
from __future__ import annotations

from datetime import date, datetime

import pytest
import requests
import urllib3

from hub.connectors import connector
from hub.connectors.contract.records import Carry, SourceContext
from hub.connectors.contract.targets import AttachmentRefused, TargetContext, TaskSpec
from hub.connectors.pipedrive.catalogs import CATALOGS
from hub.connectors.pipedrive.targets import marker
from hub.errors import Fatal, Retriable

KEY = "relayhub:pipedrive:7004211:r3:deal:100:0123abcd:s1"


@pytest.fixture
def catalog(client):
    cache: dict = {}

    def load(name: str):
        if name not in cache:
            cache[name] = CATALOGS[name].load(client)
        return cache[name]
    return load


@pytest.fixture
def ctx(client, server, catalog):
    return TargetContext(client=client, api_base=server.url, catalog=catalog)


@pytest.fixture
def deal(client, server, catalog, emu):
    source = connector("pipedrive").source(SourceContext(client=client, api_base=server.url, catalog=catalog))
    d = next(d for d in emu.data["pd_deals"].values() if d["title"].startswith("Nordwind GmbH - 40"))
    return source.load("deal", str(d["id"]), None, Carry(), [])


def step(what: str):
    return connector("pipedrive").targets[what]


def lose_answers(client, method: str, path_end: str, times: int = 1) -> list[int]:
    """The next `times` matching requests reach Pipedrive, but their answers are lost on the way back."""
    real = client.http.request
    lost: list[int] = []

    def request(m, url, **kwargs):
        response = real(m, url, **kwargs)
        if m == method and url.split("?")[0].endswith(path_end) and len(lost) < times:
            lost.append(response.status_code)
            raise requests.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted."))
        return response
    client.http.request = request
    return lost


def spec(deal, **kw) -> TaskSpec:
    return TaskSpec(name=kw.pop("name", "Send the contract"), notes_html=kw.pop("notes_html", "<p>Won deal</p>"),
                    record=deal, **kw)


def test_activity_types_catalog(catalog):
    assert [t["key"] for t in catalog("activity_types")][:4] == ["call", "meeting", "task", "deadline"]


def test_validation_against_the_catalogs(catalog, emu):
    task, record = step("task").validate, step("record").validate
    ben = str(emu.users()[1]["id"])
    assert task({"type": "call", "user_id": ben}, catalog, True) == {}
    assert task({}, catalog, True) == {} and task({"type": "séance"}, None, True) == {}
    assert task({"type": "séance", "user_id": "42"}, catalog, True) == {
        "type": "'séance' is not an active activity type in Pipedrive",
        "user_id": "this user is not an active user of the Pipedrive company"}
    tier = next(f for f in catalog("deal_fields") if f["label"] == "Tier")
    stage = catalog("stages")[2]["id"]
    assert record({"stage_id": stage, "fields": {tier["key"]: "Silver"}}, catalog, True) == {}
    assert record({}, catalog, True) == {"stage_id": "pick the stage to move the deal to, or fields to set"}
    assert record({}, catalog, False) == {}
    assert record({"stage_id": "999", "fields": {tier["key"]: "Platinum", "nope": 1, "add_time": "x"}},
                  catalog, True) == {
        "stage_id": "this stage does not exist in Pipedrive",
        f"fields.{tier['key']}": "'Platinum' is not an option of Tier",
        "fields.nope": "this deal field does not exist or cannot be set by a rule",
        "fields.add_time": "this deal field does not exist or cannot be set by a rule"}
    assert record({"fields": ["x"]}, catalog, True) == {"fields": "give the fields to set as an object: field key -> value"}


def test_ensure_twice_gives_one_activity_linked_to_the_deal(ctx, deal, emu):
    target = step("task").target(ctx)
    ben = emu.users()[1]["id"]
    first = target.ensure(spec(deal, due="2026-12-01T09:30:00Z", settings={"type": "call", "user_id": str(ben)}),
                          KEY, first_try=True)
    again = target.ensure(spec(deal, settings={"type": "call", "user_id": str(ben)}), KEY, first_try=False)
    assert first.created and not again.created and first.external_id == again.external_id
    assert first.url == f"{ctx.api_base}/deal/{deal.id}" and first.name == "Send the contract"
    [a] = emu.activities()
    assert (a["type"], a["owner_id"], a["deal_id"], a["person_id"], a["org_id"]) == (
        "call", ben, int(deal.id), deal.data["person_id"], deal.data["org_id"])
    assert (a["due_date"], a["due_time"], a["done"]) == ("2026-12-01", "09:30", False)
    assert a["note"] == f"<p>Won deal</p>\n<p>{marker(KEY)}</p>"
    # another effect (another rule, same subject, same deal and day) is another activity
    other = target.ensure(spec(deal, due="2026-12-01"), KEY + "x", first_try=False)
    assert other.created and len(emu.activities()) == 2 and emu.activities()[1]["type"] == "task"


def test_a_lost_answer_to_an_activity_create_is_found_on_the_retry(ctx, deal, emu, client):
    target = step("task").target(ctx)
    lost = lose_answers(client, "POST", "/api/v2/activities")
    with pytest.raises(Retriable):
        target.ensure(spec(deal), KEY, first_try=True)
    assert lost == [200] and len(emu.activities()) == 1     # it was made; we never heard
    made = target.ensure(spec(deal), KEY, first_try=False)
    assert not made.created and made.external_id == str(emu.activities()[0]["id"])
    assert len(emu.activities()) == 1


def test_the_look_up_pages_through_the_records_activities(ctx, deal, emu, client):
    client.page_size = 2
    for n in range(5):
        emu.create_activity({"subject": f"Someone's call {n}", "type": "call", "deal_id": int(deal.id)})
    target = step("task").target(ctx)
    first = target.ensure(spec(deal), KEY, first_try=True)
    for n in range(3):
        emu.create_activity({"subject": f"Later call {n}", "type": "call", "deal_id": int(deal.id)})
    assert target.ensure(spec(deal), KEY, first_try=False).external_id == first.external_id
    assert len(emu.activities()) == 9


def test_an_activity_without_a_record_is_found_by_its_owner(ctx, emu):
    target = step("task").target(ctx)
    ben = str(emu.users()[1]["id"])
    first = target.ensure(TaskSpec(name="Weekly review", settings={"user_id": ben}), KEY, first_try=True)
    assert first.url.endswith("/activities/list")
    again = target.ensure(TaskSpec(name="Weekly review", settings={"user_id": ben}), KEY, first_try=False)
    assert again.external_id == first.external_id and len(emu.activities()) == 1


def test_complete_status_and_no_files(ctx, deal, emu):
    target = step("task").target(ctx)
    made = target.ensure(spec(deal), KEY, first_try=True)
    assert target.status(made.external_id) == "open"
    assert target.complete(made.external_id) == "completed"
    assert target.status(made.external_id) == "completed" and emu.activities()[0]["done"] is True
    emu.delete_activity(int(made.external_id))
    assert target.status(made.external_id) == "deleted"
    with pytest.raises(AttachmentRefused):
        target.attach(made.external_id, {"id": "1", "name": "a.pdf", "size": 3}, iter([b"abc"]))


def test_state_reads_the_due_date_and_time_and_a_deleted_activity_as_gone(ctx, deal, emu):
    target = step("task").target(ctx)
    made = target.ensure(spec(deal, due="2026-12-15T09:30"), KEY, first_try=True)
    state = target.state(made.external_id)
    assert (state.status, state.deadline) == ("open", datetime(2026, 12, 15, 9, 30))
    assert state.changed_at is not None and state.responsible
    target.complete(made.external_id)
    assert target.state(made.external_id).status == "completed"
    dated = target.ensure(spec(deal, due="2026-12-20"), KEY + ":2", first_try=True)
    assert target.state(dated.external_id).deadline == date(2026, 12, 20)
    emu.delete_activity(int(made.external_id))
    assert target.state(made.external_id).status == "gone"


def test_record_step_sets_the_stage_and_custom_fields(ctx, deal, emu, catalog):
    fields = {f["label"]: f for f in catalog("deal_fields")}
    target = step("record").target(ctx)
    stage = next(s for s in catalog("stages") if s["name"] == "Proposal made")
    s = spec(deal, settings={"stage_id": stage["id"], "fields": {fields["Tier"]["key"]: "Silver",
                                                                  fields["Modules"]["key"]: "CRM, Campaigns"}},
             fields={fields["Seats"]["key"]: "45"})
    made = target.ensure(s, KEY, first_try=True)
    again = target.ensure(s, KEY, first_try=False)            # setting the same values again is harmless
    assert made.external_id == again.external_id == deal.id
    stored = emu.data["pd_deals"][deal.id]
    options = {o["label"]: o["id"] for o in fields["Tier"]["options"]}
    modules = {o["label"]: o["id"] for o in fields["Modules"]["options"]}
    assert stored["stage_id"] == int(stage["id"])
    assert stored["custom_fields"][fields["Tier"]["key"]] == int(options["Silver"])
    assert sorted(stored["custom_fields"][fields["Modules"]["key"]]) == sorted(
        [int(modules["CRM"]), int(modules["Campaigns"])])
    assert stored["custom_fields"][fields["Seats"]["key"]] == 45
    with pytest.raises(Fatal) as err:
        target.ensure(spec(deal, fields={fields["Seats"]["key"]: "many"}), KEY, first_try=True)
    assert err.value.status == 400 and "Seats needs a number" in str(err.value)
    lead = type(deal)(kind="lead", id="x", data={})
    with pytest.raises(Fatal) as err:
        target.ensure(TaskSpec(name="x", settings={"stage_id": stage["id"]}, record=lead), KEY, first_try=True)
    assert "updates deals; the rule's record is a lead" in str(err.value)
