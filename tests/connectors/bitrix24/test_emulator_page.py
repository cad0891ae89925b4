"""The sandbox page plays the portal's users: their clicks change the same data and fire the same
events as REST calls do."""
from __future__ import annotations

from .test_emulator import CLIENT_ID, app, clock, connect, emu, faults, recorder, rest, web  # noqa: F401


def act_as(web, user_id):
    web.post("/_sandbox/ui/who", data={"actor": str(user_id), "next": "/_sandbox/ui/"})


def test_a_user_works_a_controlled_task_and_the_creator_approves(web, emu):
    token = connect(web)["access_token"]
    rest(web, "event.bind", token, {"event": "ONTASKUPDATE", "handler": "https://hub.test/hooks/bitrix24"})
    emu.deliver_pending()
    task = emu.create_task("demo", {"TITLE": "Sign the papers", "RESPONSIBLE_ID": 2, "TASK_CONTROL": "Y"}, actor=1)
    tid = task["id"]
    listing = web.get("/_sandbox/ui/tasks").text
    assert "Sign the papers" in listing and "not viewed" in listing
    act_as(web, 2)
    page = web.get(f"/_sandbox/ui/tasks/{tid}")                       # Bob opens it: viewed
    assert page.status_code == 200 and "(viewed)" in page.text
    for step in ("start", "complete"):
        assert web.post(f"/_sandbox/ui/tasks/{tid}", data={"do": step}).status_code == 302
    assert emu.task("demo", tid)["status"] == 4                       # awaiting control
    refused = web.post(f"/_sandbox/ui/tasks/{tid}", data={"do": "approve"})
    assert refused.status_code == 400 and "not allowed" in refused.text
    act_as(web, 1)
    web.post(f"/_sandbox/ui/tasks/{tid}", data={"do": "approve"})
    assert emu.task("demo", tid)["status"] == 5
    sent = [d["body"]["event"] for d in emu.deliver_pending()]
    assert sent == ["ONTASKUPDATE"] * 3


def test_deals_move_win_lose_and_leads_convert(web, emu):
    board = web.get("/_sandbox/ui/")
    assert board.status_code == 200 and "Acme rollout" in board.text and "Deal won" in board.text
    web.post("/_sandbox/ui/deals/1", data={"do": "move", "stage": "EXECUTING"})
    assert emu.record("demo", "deals", 1)["STAGE_ID"] == "EXECUTING"
    web.post("/_sandbox/ui/deals/1", data={"do": "win"})
    web.post("/_sandbox/ui/deals/2", data={"do": "lose"})
    assert [emu.record("demo", "deals", i)["STAGE_SEMANTIC_ID"] for i in (1, 2)] == ["S", "F"]
    bad = web.post("/_sandbox/ui/deals/3", data={"do": "move", "stage": "C1:WON"})
    assert bad.status_code == 400 and emu.record("demo", "deals", 3)["STAGE_ID"] == "EXECUTING"
    web.post("/_sandbox/ui/leads", data={"title": "Walk-in", "name": "Ivy", "last_name": "Lane"})
    lead = emu.records("demo", "leads")[-1]
    web.post(f"/_sandbox/ui/leads/{lead['ID']}", data={"do": "convert"})
    converted = emu.record("demo", "leads", lead["ID"])
    assert converted["STATUS_SEMANTIC_ID"] == "S" and converted["CONTACT_ID"]
    assert any(d["LEAD_ID"] == lead["ID"] for d in emu.records("demo", "deals"))
    assert web.get("/portal/demo/crm/deal/details/1/").status_code == 302


def test_the_events_page_delivers_and_uninstalls(web, emu, recorder):
    connect(web)
    page = web.get("/_sandbox/ui/events")
    assert "Relay Hub" in page.text and "1 waiting" in page.text
    web.post("/_sandbox/ui/events/deliver")
    assert [p["form"]["event"] for p in recorder.posts] == ["ONAPPINSTALL"]
    web.post(f"/_sandbox/ui/apps/{CLIENT_ID}/uninstall")
    assert emu.installed("demo", CLIENT_ID) is None
    assert web.post("/_sandbox/ui/faults", data={"drop_event_rate": "0.25"}).status_code == 302
    assert emu.faults.knob("drop_event_rate") == 0.25
