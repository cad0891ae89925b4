"""What Bitrix24 POSTs: the install event with the application_token, form-encoded change events
carrying ids only, never a retry, offline queues, and the uninstall event."""
from __future__ import annotations

from urllib.parse import parse_qs

from .test_emulator import CLIENT_ID, app, clock, connect, emu, faults, recorder, rest, web  # noqa: F401

HOOK = "https://hub.test/hooks/bitrix24"


def bind(web, token, *events, event_type="online"):
    for event in events:
        assert rest(web, "event.bind", token, {"event": event, "handler": HOOK if event_type == "online" else "",
                                               "event_type": event_type}).status_code == 200


def test_install_event_goes_to_the_apps_handler_after_the_first_exchange(web, emu, recorder):
    token = connect(web)
    [sent] = emu.deliver_pending()
    assert sent["ok"] and sent["url"] == HOOK                              # derived from the OAuth callback
    [post] = recorder.posts
    form = post["form"]
    assert post["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert form["event"] == "ONAPPINSTALL" and form["data"]["INSTALLED"] == "Y"
    portal = emu.portals()[0]
    assert form["auth"]["application_token"] == emu.application_token("demo", CLIENT_ID)
    assert form["auth"]["member_id"] == portal["member_id"] and form["auth"]["domain"] == portal["domain"]
    assert form["auth"]["client_endpoint"] == token["client_endpoint"] and form["auth"]["refresh_token"]
    connect(web)                                                          # a second consent: no second install
    assert emu.deliver_pending() == []


def test_change_events_are_form_posts_with_ids_only(web, emu, recorder, clock):
    token = connect(web)["access_token"]
    emu.deliver_pending()
    recorder.posts.clear()
    bind(web, token, "ONCRMDEALUPDATE", "ONCRMDEALADD", "ONTASKADD", "ONTASKUPDATE", "ONTASKDELETE", "ONCRMLEADADD",
         "ONCRMLEADUPDATE")
    assert emu.deliver_pending() == []                                    # binding itself sends nothing
    deal = emu.win_deal("demo", 1, actor=2)
    task = emu.create_task("demo", {"TITLE": "Follow-up", "RESPONSIBLE_ID": 2, "UF_CRM_TASK": ["D_1"]})
    emu.task_action("demo", task["id"], "start", actor=2)
    emu.delete_task("demo", task["id"])
    lead = emu.create_lead("demo", {"TITLE": "New one"})
    result = emu.convert_lead("demo", lead["ID"])
    sent = emu.deliver_pending()
    events = [(s["body"]["event"], s["body"]["data"]) for s in sent]
    assert events == [
        ("ONCRMDEALUPDATE", {"FIELDS": {"ID": "1"}}),
        ("ONTASKADD", {"FIELDS_BEFORE": "undefined", "FIELDS_AFTER": {"ID": task["id"]},
                       "IS_ACCESSIBLE_BEFORE": "N", "IS_ACCESSIBLE_AFTER": "undefined"}),
        ("ONTASKUPDATE", {"FIELDS_BEFORE": {"ID": task["id"]}, "FIELDS_AFTER": {"ID": task["id"]},
                          "IS_ACCESSIBLE_BEFORE": "undefined", "IS_ACCESSIBLE_AFTER": "undefined"}),
        ("ONTASKDELETE", {"FIELDS_BEFORE": {"ID": task["id"]}, "FIELDS_AFTER": "undefined",
                          "IS_ACCESSIBLE_BEFORE": "undefined", "IS_ACCESSIBLE_AFTER": "N"}),
        ("ONCRMLEADADD", {"FIELDS": {"ID": lead["ID"]}}),
        ("ONCRMDEALADD", {"FIELDS": {"ID": result["deal"]["ID"]}}),
        ("ONCRMLEADUPDATE", {"FIELDS": {"ID": lead["ID"]}}),
    ]
    raw = parse_qs(recorder.posts[0]["body"])
    assert raw["event"] == ["ONCRMDEALUPDATE"] and raw["data[FIELDS][ID]"] == ["1"]
    assert raw["auth[application_token]"] == [emu.application_token("demo", CLIENT_ID)]
    assert raw["ts"] == [str(int(clock.now))] and raw["event_handler_id"][0].isdigit()
    assert set(k for k in raw if k.startswith("auth[")) == {
        "auth[access_token]", "auth[expires_in]", "auth[scope]", "auth[domain]", "auth[server_endpoint]",
        "auth[status]", "auth[client_endpoint]", "auth[member_id]", "auth[application_token]"}
    # the access token in an event is a real one for the user who made the change
    me = rest(web, "user.current", raw["auth[access_token]"][0]).json["result"]
    assert me["ID"] == "2" and deal["STAGE_SEMANTIC_ID"] == "S"
    assert result["lead"]["STATUS_ID"] == "CONVERTED" and result["deal"]["LEAD_ID"] == lead["ID"]


def test_failed_deliveries_are_not_retried_and_the_drop_knob_loses_them(web, emu, recorder, faults):
    token = connect(web)["access_token"]
    emu.deliver_pending()
    bind(web, token, "ONCRMDEALUPDATE")
    recorder.status = 500
    emu.move_deal("demo", 1, "PREPARATION")
    [failed] = emu.deliver_pending()
    assert not failed["ok"] and "not retried" in failed["error"]
    assert emu.deliver_pending() == [] and emu.pending() == []
    recorder.status = 200
    faults.update({"drop_events": 1})
    emu.move_deal("demo", 1, "EXECUTING")
    emu.move_deal("demo", 1, "WON")
    dropped, delivered = emu.deliver_pending()
    assert dropped["error"].startswith("dropped") and delivered["ok"]
    assert len(recorder.posts) == 3                                       # install, the 500, the last move
    assert [parse_qs(p["body"])["event"][0] for p in recorder.posts][-1] == "ONCRMDEALUPDATE"


def test_events_need_a_finished_install_and_stop_at_uninstall(web, emu, recorder):
    token = connect(web)["access_token"]
    bind(web, token, "ONCRMDEALUPDATE", "ONAPPUNINSTALL")
    emu.deliver_pending()
    recorder.posts.clear()
    assert emu.uninstall("demo", CLIENT_ID)
    emu.move_deal("demo", 1, "PREPARATION")
    [gone] = emu.deliver_pending()                                        # the handler bound, and the app's own
    assert gone["body"]["event"] == "ONAPPUNINSTALL" and gone["body"]["data"] == {"LANGUAGE_ID": "en", "CLEAN": 0}
    auth = gone["body"]["auth"]
    assert set(auth) == {"domain", "server_endpoint", "client_endpoint", "member_id", "application_token"}
    assert rest(web, "crm.deal.list", token).status_code == 401          # its tokens died with it
    assert emu.bindings("demo") == []


def test_offline_events_queue_one_record_per_object(web, emu, recorder):
    token = connect(web)["access_token"]
    emu.deliver_pending()
    bind(web, token, "ONCRMDEALUPDATE", event_type="offline")
    emu.move_deal("demo", 1, "PREPARATION")
    emu.move_deal("demo", 1, "EXECUTING")
    emu.move_deal("demo", 2, "EXECUTING")
    assert emu.deliver_pending() == []                                    # offline: nothing is pushed
    got = rest(web, "event.offline.get", token, {"clear": 0}).json["result"]
    assert [e["EVENT_DATA"]["FIELDS"]["ID"] for e in got["events"]] == ["1", "2"] and got["process_id"]
    assert rest(web, "event.offline.get", token).json["result"]["events"] == []     # held by the process
    assert rest(web, "event.offline.clear", token, {"process_id": got["process_id"]}).json["result"] is True
    emu.move_deal("demo", 3, "WON")
    again = rest(web, "event.offline.get", token).json["result"]
    assert [e["EVENT_NAME"] for e in again["events"]] == ["ONCRMDEALUPDATE"]
    assert rest(web, "event.offline.get", token).json["result"]["events"] == []     # read and cleared


def test_running_sandbox_posts_by_itself_to_a_live_handler():
    """As mounted in the hub: a thread sends deliveries over HTTP as changes happen (install delayed)."""
    import threading

    from flask import Flask, request

    from hub.sandbox.bitrix24 import create_app
    from hub.sandbox.common import Faults, SandboxState
    from tests.support.live import live_server

    got, arrived = [], threading.Event()
    receiver = Flask("receiver")

    @receiver.post("/hooks/bitrix24")
    def hook():
        got.append(request.form.to_dict())
        arrived.set()
        return ""

    with live_server(receiver) as srv:
        emulator = create_app(state=SandboxState(), faults=Faults(), options={
            "install_event_delay": 0.0, "base_url": "http://b24.test",
            "clients": [{"client_id": CLIENT_ID, "client_secret": "s",
                         "redirect_uris": [srv.url + "/oauth/bitrix24/callback"]}]})
        web = emulator.test_client()
        sb = emulator.extensions["sandbox"]
        sb.install("demo", CLIENT_ID)
        sb.finish_install("demo", CLIENT_ID, sb.grant("demo", CLIENT_ID, 1))
        assert arrived.wait(10)
        assert got[0]["event"] == "ONAPPINSTALL" and got[0]["auth[application_token]"]
        token = sb.issue_tokens("demo", CLIENT_ID, 1)["access_token"]
        assert rest(web, "event.bind", token, {"event": "ONCRMDEALUPDATE", "handler": srv.url + "/hooks/bitrix24"}).json
        arrived.clear()
        sb.lose_deal("demo", 2)
        assert arrived.wait(10)
        assert got[1]["event"] == "ONCRMDEALUPDATE" and got[1]["data[FIELDS][ID]"] == "2"


def test_the_embedding_hub_names_the_apps_handler():
    from hub.sandbox.bitrix24 import create_app

    app = create_app(options={"auto_deliver": False, "hub_url": "http://hub.local:5000/",
                              "clients": [{"client_id": "c", "client_secret": "s"}]})
    assert app.extensions["sandbox"].client_options["c"]["event_handler"] == "http://hub.local:5000/hooks/bitrix24"
    assert app.config["SANDBOX_PAGE"] == "_sandbox/ui/" and app.test_client().get("/_sandbox/ui/").status_code == 200
