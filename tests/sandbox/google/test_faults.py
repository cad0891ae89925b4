"""Fault knobs and per-minute quotas, rendered as Google renders them."""
import time

import pytest

from .conftest import error_of, new_person

LIST = ("/v1/people/me/connections", {"personFields": "names"})


def info_of(resp) -> dict:
    return next(d for d in error_of(resp)["details"] if d["@type"].endswith("ErrorInfo"))


def test_burst_429_with_retry_after(anna):
    resp = anna.http.post(f"{anna.base}/_sandbox/faults", json={"burst_429": 2, "retry_after": 7})
    assert resp.status_code == 200
    for _ in range(2):
        resp = anna.get(LIST[0], params=LIST[1])
        assert resp.status_code == 429 and error_of(resp)["status"] == "RESOURCE_EXHAUSTED"
        assert resp.headers["Retry-After"] == "7" and info_of(resp)["reason"] == "RATE_LIMIT_EXCEEDED"
    assert anna.get(LIST[0], params=LIST[1]).status_code == 200


@pytest.mark.parametrize("status, name", [(500, "INTERNAL"), (503, "UNAVAILABLE"), (502, "UNAVAILABLE"),
                                          (504, "DEADLINE_EXCEEDED")])
def test_5xx_knob(anna, faults, status, name):
    faults.update({"error_rate": 1.0, "error_status": status})
    resp = anna.post("/v1/people:createContact", json=new_person("X"))
    assert resp.status_code == status and error_of(resp)["status"] == name
    faults.update({"error_rate": 0.0})
    assert anna.get(LIST[0], params=LIST[1]).status_code == 200


def test_latency_knob(anna, faults):
    faults.update({"latency_ms": 120})
    started = time.monotonic()
    assert anna.get(LIST[0], params=LIST[1]).status_code == 200
    assert time.monotonic() - started >= 0.12




@pytest.mark.parametrize("options", [{"write_quota_per_minute": 8}], indirect=True)
def test_write_quota_counts_google_costs(anna, clock):
    for i in range(2):  # 1 critical write each
        assert anna.post("/v1/people:createContact", json=new_person(f"Q{i}")).status_code == 200
    batch = {"contacts": [{"contactPerson": new_person("B")}], "readMask": "names"}
    assert anna.post("/v1/people:batchCreateContacts", json=batch).status_code == 200  # 6 units -> 8 used
    resp = anna.post("/v1/people:createContact", json=new_person("over"))
    assert resp.status_code == 429
    assert info_of(resp)["metadata"]["quota_metric"] == "people.googleapis.com/critical_write_requests"
    assert info_of(resp)["metadata"]["quota_limit"] == "CriticalWritesPerMinutePerProjectPerUser"
    assert "Retry-After" in resp.headers
    clock.advance(60)
    assert anna.post("/v1/people:createContact", json=new_person("next minute")).status_code == 200


@pytest.mark.parametrize("options", [{"read_quota_per_minute": 2}], indirect=True)
def test_read_quota(anna, clock):
    for _ in range(2):
        assert anna.get(LIST[0], params=LIST[1]).status_code == 200
    resp = anna.get("/v1/people/me", params={"personFields": "names"})
    assert resp.status_code == 429 and info_of(resp)["reason"] == "RATE_LIMIT_EXCEEDED"
    # group reads are another bucket
    assert anna.get("/v1/contactGroups").status_code == 200


def test_unknown_fault_knob_refused(anna):
    resp = anna.http.post(f"{anna.base}/_sandbox/faults", json={"explode": True})
    assert resp.status_code == 400
