"""Reconciliation against the emulator: objects modified since a moment, oldest first, and the
transition a lost webhook missed (a stage or lifecycle stage that differs from the known state)."""
from __future__ import annotations

from datetime import datetime, timezone

from hub.connectors.hubspot import CONNECTOR


def test_poll_reads_deals_contacts_and_leads_and_changes_names_what_moved(hs):
    hooks = CONNECTOR.webhooks
    first = list(hooks.poll(hs.client, None))
    kinds = {s.object_type for s in first}
    assert kinds == {"deal", "person", "lead"}
    known = {(s.object_type, s.object_id): s.data for s in first}
    assert all(hooks.changes(None, s) == [] for s in first)          # first sight: a baseline
    lead = next(s for s in first if s.object_type == "lead")
    since = datetime.now(timezone.utc).replace(microsecond=0)
    hs.emu.move_lead(hs.hub_id, lead.object_id, "connected-stage-id")
    later = [s for s in hooks.poll(hs.client, since) if s.object_type == "lead"]
    assert [s.object_id for s in later] == [lead.object_id]
    [moved] = hooks.changes(known[("lead", lead.object_id)], later[0])
    assert (moved.kind, moved.from_stage_id, moved.to_stage_id) == ("lead.stage_changed", "attempting-stage-id",
                                                                    "connected-stage-id")
    assert moved.occurrence.startswith("connected-stage-id@")
    assert hooks.changes(later[0].data, later[0]) == []
