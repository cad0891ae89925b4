"""What Google refuses, the emulator refuses: a label name that is not Unicode (an unpaired
surrogate, sent as a JSON escape) gets 400 INVALID_ARGUMENT, so it never reaches the saved state;
and the state file itself survives whatever an emulator kept."""
from __future__ import annotations

import json

import pytest

from hub.sandbox.common import SandboxState
from hub.sandbox.google.errors import ApiError

from .conftest import ANNA, error_of


@pytest.mark.parametrize("name", ["\ud800", "Kunden \udfff", "\udc00\ud800"])
def test_a_label_named_with_an_unpaired_surrogate_is_refused(anna, sandbox, name):
    before = {g["name"] for g in anna.ok("GET", "/v1/contactGroups")["contactGroups"]}
    body = json.dumps({"contactGroup": {"name": name}}).encode()      # ASCII: the surrogate as \\udXXX
    resp = anna.post("/v1/contactGroups", data=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and error_of(resp)["status"] == "INVALID_ARGUMENT"
    assert {g["name"] for g in anna.ok("GET", "/v1/contactGroups")["contactGroups"]} == before
    rn = sandbox.group_by_name(ANNA, "Kunden")["resourceName"]
    rename = anna.call("PUT", f"/v1/{rn}", data=json.dumps({"contactGroup": {"name": name}}).encode(),
                       headers={"Content-Type": "application/json"})
    assert rename.status_code == 400 and error_of(rename)["status"] == "INVALID_ARGUMENT"
    with pytest.raises(ApiError) as refused:                      # the emulator's own entry point too
        sandbox.create_group(ANNA, name)
    assert refused.value.http == 400 and refused.value.status == "INVALID_ARGUMENT"


def test_state_round_trips_any_string_and_survives_a_broken_file(tmp_path):
    path = tmp_path / "google.json"
    state = SandboxState(path, save_interval=3600)
    with state.change() as data:
        data["groups"] = {"1": {"name": "\ud800 kept before input was checked"}}
    state.close()
    again = SandboxState(path, save_interval=3600)
    assert again.data["groups"]["1"]["name"].startswith("\ud800")
    again.close()
    path.write_text("{not json", encoding="utf-8")
    fresh = SandboxState(path, save_interval=3600)
    assert fresh.data == {} and (tmp_path / "google.json.broken").read_text() == "{not json"
    fresh.close()
