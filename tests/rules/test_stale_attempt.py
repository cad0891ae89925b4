"""An attempt that lost its lease may fail after another attempt finished the run; its progress note
is written in its own transaction and must not turn a finished run back into "retrying" (seen once
in the chaos test: every task made, one run left "retrying")."""
from __future__ import annotations

import pytest

from hub.rules.runner import progress
from hub.store.models import RuleRun


@pytest.mark.parametrize("finished", ["done", "failed", "stopped", "skipped", "waiting"])
def test_a_late_progress_note_leaves_a_settled_run_alone(live_hub, finished):
    services = live_hub.services
    with services.db.begin() as s:
        run = RuleRun(installation_id=1, rule_id=1, hub_event_id=1, effect_key=f"k-{finished}", object_type="deal",
                      object_id="7", status=finished, attempts=1, detail={})
        s.add(run)
        s.flush()
        run_id = run.id
    progress(services, run_id, 99, "retrying", "pipedrive 503; trying again", "info")
    with services.db.begin() as s:
        assert s.get(RuleRun, run_id).status == finished


def test_progress_still_marks_a_running_run(live_hub):
    services = live_hub.services
    with services.db.begin() as s:
        run = RuleRun(installation_id=1, rule_id=1, hub_event_id=1, effect_key="k-running", object_type="deal",
                      object_id="7", status="running", attempts=1, detail={})
        s.add(run)
        s.flush()
        run_id = run.id
    progress(services, run_id, 99, "retrying", "pipedrive 503; trying again", "info")
    with services.db.begin() as s:
        assert s.get(RuleRun, run_id).status == "retrying"
