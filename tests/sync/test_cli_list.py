"""`flask --app hub sync list` tells a colleague's shared copy from the original."""
from __future__ import annotations

from hub.store.models import ContactSync


def test_an_empty_list_says_so(live_hub):
    out = live_hub.app.test_cli_runner().invoke(args=["sync", "list"])
    assert out.exit_code == 0 and out.output.startswith("No contact syncs yet"), out.output


def test_list_marks_shares_and_their_originals(live_hub):
    with live_hub.services.db.begin() as s:
        original = ContactSync(installation_id=1, store_connection_id=1, group_name="Clients", direction="two_way")
        lonely = ContactSync(installation_id=1, store_connection_id=1, group_name="Partners", direction="two_way")
        s.add_all([original, lonely])
        s.flush()
        s.add_all([ContactSync(installation_id=1, store_connection_id=2, group_name="Clients", parent_id=original.id,
                               share_mode="edit", direction="two_way"),
                   ContactSync(installation_id=1, store_connection_id=3, group_name="Clients", parent_id=original.id,
                               share_mode="read", direction="crm_to_store")])
    out = live_hub.app.test_cli_runner().invoke(args=["sync", "list"])
    assert out.exit_code == 0, out.output
    rows = [line.split("\t") for line in out.output.strip().splitlines()]
    assert [(r[2], r[5]) for r in rows] == [("Clients", "original, shared 2x"), ("Partners", "original"),
                                            ("Clients", f"share of sync {original.id} (can edit)"),
                                            ("Clients", f"share of sync {original.id} (read only)")]
    assert all(r[6] == "never ran" for r in rows)
