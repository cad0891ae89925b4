"""`batch` (50 commands, halt, $result references, per-command errors in a 200) and the limits:
the leaky bucket's 503 QUERY_LIMIT_EXCEEDED and the fault knobs."""
from __future__ import annotations

from .test_emulator import app, clock, connect, emu, faults, recorder, rest, web  # noqa: F401


class Ticker:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_batch_runs_commands_with_references(web, emu):
    token = connect(web)["access_token"]
    answer = rest(web, "batch", token, {"halt": 0, "cmd": {
        "deal": "crm.deal.get?id=1",
        "owner": "user.get?ID=$result[deal][ASSIGNED_BY_ID]",
        "task": "tasks.task.add?fields[TITLE]=Call $result[owner][0][NAME]&fields[RESPONSIBLE_ID]=$result[deal][ASSIGNED_BY_ID]"
                "&fields[UF_CRM_TASK][]=D_$result[deal][ID]",
        "list": "crm.deal.list?select[]=ID",
        "bad": "crm.deal.get?id=999",
    }})
    assert answer.status_code == 200
    body = answer.json["result"]
    assert body["result"]["owner"][0]["NAME"] == "Bob"
    task = body["result"]["task"]["task"]
    assert task["title"] == "Call Bob" and task["responsibleId"] == "2"
    assert emu.task("demo", task["id"])["ufCrmTask"] == ["D_1"]
    assert body["result_error"] == {"bad": {"error": "", "error_description": "Not found"}}
    assert body["result_total"] == {"owner": 1, "list": 4} and body["result_next"] == []
    assert set(body["result_time"]) == {"deal", "owner", "task", "list"}


def test_batch_halt_limit_and_no_nesting(web):
    token = connect(web)["access_token"]
    halted = rest(web, "batch", token, {"halt": 1, "cmd": ["crm.deal.get?id=999", "crm.deal.get?id=1"]}).json["result"]
    assert halted["result"] == [] and list(halted["result_error"]) == ["0"] and halted["result_total"] == []
    too_many = rest(web, "batch", token, {"cmd": {f"c{n}": "profile" for n in range(51)}})
    assert too_many.status_code == 400 and too_many.json["error"] == "ERROR_BATCH_LENGTH_EXCEEDED"
    nested = rest(web, "batch", token, {"cmd": {"inner": "batch?cmd[a]=profile"}}).json["result"]
    assert nested["result_error"]["inner"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"
    fifty = rest(web, "batch", token, {"cmd": {f"c{n}": "profile" for n in range(50)}}).json["result"]
    assert len(fifty["result"]) == 50
    form = web.post("/portal/demo/rest/batch", data={"auth": token, "cmd[a]": "crm.deal.get?id=2"}).json
    assert form["result"]["result"]["a"]["TITLE"] == "Globex pilot"


def test_leaky_bucket_answers_503_and_drains(web, emu, faults):
    token = connect(web)["access_token"]
    ticker = Ticker()
    emu.bucket_clock = ticker
    emu.reset_bucket()
    faults.update({"bucket_burst": 5, "bucket_drain": 2.0})
    assert [rest(web, "profile", token).status_code for _ in range(6)] == [200] * 5 + [503]
    limited = rest(web, "profile", token)
    assert limited.json == {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
    ticker.now += 1.0                                                   # two requests drain per second
    assert [rest(web, "profile", token).status_code for _ in range(3)] == [200, 200, 503]
    batch = rest(web, "batch", token, {"cmd": {"a": "profile"}})        # a batch is one request
    assert batch.status_code == 503
    ticker.now += 0.5
    assert rest(web, "batch", token, {"cmd": {f"c{n}": "profile" for n in range(20)}}).status_code == 200
    faults.update({"bucket_enabled": False})
    assert all(rest(web, "profile", token).status_code == 200 for _ in range(10))


def test_fault_knobs_and_token_expiry(web, emu, faults, app):
    token = connect(web)["access_token"]
    faults.update({"error_rate": 1.0, "error_status": 500})
    broken = rest(web, "profile", token)
    assert broken.status_code == 500 and broken.json["error"] == "INTERNAL_SERVER_ERROR"
    faults.update({"error_rate": 0.0, "burst_429": 1})
    assert rest(web, "profile", token).json["error"] == "QUERY_LIMIT_EXCEEDED"
    assert web.post("/_sandbox/tokens/expire").status_code == 200
    assert rest(web, "profile", token).json["error"] == "expired_token"
    assert web.post("/_sandbox/faults", json={"drop_event_rate": 0.5}).json["drop_event_rate"] == 0.5


def test_operation_time_limit_knob(web, faults):
    token = connect(web)["access_token"]
    faults.update({"operation_limit": 2})
    limited = rest(web, "crm.deal.list", token)
    assert limited.status_code == 429 and limited.json["error"] == "OPERATION_TIME_LIMIT"
    inner = rest(web, "batch", token, {"cmd": {"a": "profile", "b": "profile"}}).json["result"]
    assert list(inner["result_error"]) == ["a"] and list(inner["result"]) == ["b"]
    assert rest(web, "crm.deal.list", token).status_code == 200
