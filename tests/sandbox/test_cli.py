"""`flask --app hub sandbox ...` drives the sandbox of a running hub over HTTP."""
from __future__ import annotations


def test_cli_plays_the_crm_user_and_turns_knobs(live_hub):
    runner = live_hub.app.test_cli_runner()
    pd = live_hub.emulator("pipedrive")
    created = runner.invoke(args=["sandbox", "deal", "create", "CLI deal", "--value", "990"])
    assert created.exit_code == 0, created.output
    deal_id = int(created.output.split()[1])
    assert pd.data["pd_deals"][str(deal_id)]["title"] == "CLI deal"
    assert runner.invoke(args=["sandbox", "deal", "won", str(deal_id)]).exit_code == 0
    assert pd.data["pd_deals"][str(deal_id)]["status"] == "won"
    knobs = runner.invoke(args=["sandbox", "faults", "asana", "latency_ms=5", "burst_429=2"])
    assert knobs.exit_code == 0 and "burst_429                2" in knobs.output
    assert live_hub.emulator("asana").faults.settings.latency_ms == 5
    bad = runner.invoke(args=["sandbox", "faults", "asana", "no_such_knob=1"])
    assert bad.exit_code != 0 and "unknown fault setting: no_such_knob" in bad.output
    google = runner.invoke(args=["sandbox", "faults", "google", "late_echoes=2", "batch_partial_reject=1"])
    assert google.exit_code == 0 and "late_echoes              2" in google.output, google.output
    assert live_hub.emulator("google").faults.knob("batch_partial_reject") == 1
    assert runner.invoke(args=["sandbox", "expire-tokens", "google"]).exit_code == 0
    missing = runner.invoke(args=["sandbox", "deal", "won", "999999"])
    assert missing.exit_code != 0 and "404" in missing.output
