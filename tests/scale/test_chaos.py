"""bench/chaos.py with reduced counts: the scale-out hub (gunicorn with 2 web processes, 4 worker
processes, a scheduler) on PostgreSQL with the sandbox as its own process, webhooks duplicated and
out of order, workers killed with SIGKILL, 5xx and 429 bursts, access tokens expiring every few
seconds: every won/lost/moved deal ends with exactly one Asana task and nothing else is left over."""
from __future__ import annotations

import pytest

from bench.chaos import Options, run

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(240)]


def test_nothing_lost_or_doubled_under_chaos(tmp_path, pg_url):
    # pg_url: the PostgreSQL server answers (the cluster makes a database of its own next to it)
    # Faults stay on for 15 s, longer than the 700 deliveries take: in the quiet tail the few runs
    # still retrying are the only callers, and each 429 burst (every 2.5 s) lands whole on one of
    # them. Two bursts of 3 on one run used up the default budget of 6 failed calls and ended it
    # (seen in CI): here the budget is 12. What the budget itself does is tested in
    # tests/sync/test_retry_budget.py and tests/rules; bench/chaos.py keeps the default.
    report = run(Options(deliveries=700, workdir=tmp_path, quiet=True, kill_every=(0.8, 2.5), expire_every=2.0,
                         burst_every=2.5, burst_size=3, min_chaos_seconds=15, failed_calls=12))
    text = "\n".join(report.lines())
    assert report.problems == [], text
    d = report.deliveries
    # the faults really happened (a quiet run would prove nothing). A delivery picked for reordering
    # is overtaken only if a later one of its deal comes within the hold: how many are depends on
    # timing (23 in a CI run of about 690), so the bound proves it happened, not how often
    assert d["deliveries"] >= 650 and d["duplicates"] >= 60 and d["reordered"] >= 10, text
    assert report.chaos["kills"] >= 3 and report.chaos["expiries"] >= 5 and report.chaos["bursts"] >= 4, text
    assert all(report.oauth[p].get("refreshes", 0) >= 2 for p in ("pipedrive", "asana")), text
    assert report.tasks == sum(n for action, n in report.deals.items() if action != "none"), text
    assert report.metrics["hub_webhooks_accepted_total{provider=pipedrive,result=duplicate}"] >= d["duplicates"], text
