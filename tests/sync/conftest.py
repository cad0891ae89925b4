"""A live hub with its sandbox, installed, with a Google account connected and a sync set up."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from hub.connectors.google.manifest import CONTACTS_SCOPE
from hub.sync import service
from hub.sync.engine import SyncEngine
from tests.web.conftest import install


@dataclass
class Setup:
    hub: object
    admin: object
    iid: int
    account: str          # the Google account id
    sync_id: int
    label: str

    @property
    def google(self):
        return self.hub.emulator("google")

    @property
    def pipedrive(self):
        return self.hub.emulator("pipedrive")

    def run(self, **kw) -> dict:
        return SyncEngine(self.hub.services, self.sync_id, **kw).run()

    def label_contacts(self) -> list[dict]:
        gid = self.label
        return [c for c in self.google.contacts(self.account)
                if any((m.get("contactGroupMembership") or {}).get("contactGroupResourceName") == gid
                       for m in c.get("memberships") or [])]

    def by_name(self, given: str) -> dict:
        [c] = [c for c in self.google.contacts(self.account) if (c.get("names") or [{}])[0].get("givenName") == given]
        return c

    def persons(self) -> dict[str, dict]:
        return {p["name"]: p for p in self.pipedrive.data["pd_persons"].values() if not p.get("is_deleted")}

    def change(self, **values) -> None:
        from hub.store.models import ContactSync
        with self.hub.services.db.begin() as s:
            sync = s.get(ContactSync, self.sync_id)
            for k, v in values.items():
                setattr(sync, k, v)


def connect_google(hub, admin, iid, email="anna@sandbox.example") -> str:
    account = next(a["id"] for a in hub.emulator("google").accounts() if a["email"] == email)
    landed = admin.authorize_target(iid, "google", {"decision": "allow", "account": account,
                                                    "granted_scope": CONTACTS_SCOPE})
    assert landed.status_code == 200, landed.text[:500]
    return account


def make_setup(hub, **sync_values) -> Setup:
    admin, iid = install(hub)
    account = connect_google(hub, admin, iid)
    with hub.services.db.begin() as s:
        conn = service.store_connections(s, iid)[0]
    data = {"name": "Team contacts", "store_connection_id": conn.id, "group": "__new__",
            "new_group_name": "Acme CRM", "schedule_seconds": 0, **sync_values}
    sync = service.create(hub.services, iid, "test", data)
    return Setup(hub, admin, iid, account, sync.id, sync.group_resource_name)


@pytest.fixture
def setup(live_hub) -> Setup:
    return make_setup(live_hub)
