"""The sandbox page plays the Livespace user: what it does lands in the account and queues the
webhooks a real account would send; bad input is refused with a message, never a 500."""
from __future__ import annotations

from hub.sandbox.common import Faults, SandboxState
from hub.sandbox.livespace import create_app


def page():
    app = create_app(state=SandboxState(), faults=Faults())
    crm = app.extensions["sandbox"]
    with crm.state.change():   # a subscription already activated, so changes queue deliveries
        sid = crm.new_id("subscription")
        crm.table("subscriptions")[sid] = {"id": sid, "name": "t", "url": "http://127.0.0.1:9/h", "secret": "s",
                                           "triggers": ["*"], "active": True, "handshake": 204,
                                           "last_triggered": None, "created": crm.now()}
    return app.test_client(), crm


def test_win_move_add_and_complete_from_the_page():
    web, crm = page()
    deal = crm.deals()[0]
    stage = crm.processes()[0]["stages"][2]["id"]
    assert web.post(f"/_sandbox/ui/deals/{deal['id']}/stage", data={"stage_id": stage}).status_code == 302
    assert web.post(f"/_sandbox/ui/deals/{deal['id']}/status", data={"status": "won"}).status_code == 302
    bartek = crm.user_by_email("bartek@demo.test")
    web.post("/_sandbox/ui/actor", data={"user_id": bartek["id"]})
    web.post("/_sandbox/ui/todos", data={"title": "Call", "type_id": crm.todo_types()[0]["id"],
                                         "date": "2026-12-09", "deal_id": deal["id"]})
    [todo] = crm.todos()
    assert (todo["owner_id"], todo["type_name"], todo["objects"][0]["object_id"]) == (bartek["id"], "Email", deal["id"])
    web.post(f"/_sandbox/ui/todos/{todo['id']}/complete")
    assert crm.todo(todo["id"])["completed_by_id"] == bartek["id"]
    assert [d["name"] for d in crm.deliveries("pending")] == ["deal.stage_changed", "deal.status_changed",
                                                              "todo.created", "todo.completed"]
    shown = web.get("/_sandbox/ui/").text
    assert "Call" in shown and "won" in shown and "4 webhook(s) waiting" in shown


def test_bad_input_is_refused_with_a_message():
    web, crm = page()
    deal = crm.deals()[0]
    other = crm.processes()[1]["stages"][0]["id"]          # a step of another process
    for path, data in ((f"/_sandbox/ui/deals/{deal['id']}/stage", {"stage_id": other}),
                       (f"/_sandbox/ui/deals/{deal['id']}/status", {"status": "maybe"}),
                       ("/_sandbox/ui/todos", {"title": ""}), ("/_sandbox/ui/todos", {"title": "x", "date": "soon"}),
                       ("/_sandbox/ui/todos/nope/complete", {}), ("/_sandbox/ui/subscriptions", {"url": "ftp://x", "secret": "s"})):
        answer = web.post(path, data=data)
        assert answer.status_code == 302 and "error=1" in answer.headers["Location"], path
    assert crm.todos() == [] and crm.deals()[0]["status"] == "open"
