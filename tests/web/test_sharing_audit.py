"""The unauthenticated app-sharing callback cannot flood the audit trail: a row only for a real change,
and consecutive signals coalesce into one row, so real entries stay in the audit views."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from hub.oauth.installs import audit
from hub.store import AuditEvent, Installation

SETTINGS_VIEW = 20  # rows the settings page shows (hub/web/pages.py); the API shows 200


def newest(app, installation_id: int, limit: int) -> list[AuditEvent]:
    with app.extensions["hub"].db.begin() as s:
        return s.scalars(select(AuditEvent).where(AuditEvent.installation_id == installation_id)
                         .order_by(AuditEvent.id.desc()).limit(limit)).all()


def installed(app) -> int:
    with app.extensions["hub"].db.begin() as s:
        installation = Installation(provider="pipedrive", company_id="7004211", installer_user_id="1",
                                    endpoint_token="tok-sharing-audit", visibility="all")
        s.add(installation)
        s.flush()
        audit(s, installation.id, "Ada (1)", "installation.created")
        audit(s, installation.id, "Ada (1)", "visibility.changed", visibility="all")
        return installation.id


@pytest.fixture
def sqlite_hub(tmp_path):
    """SQLite only: the thousand calls check the coalescing, which is the same SQL on both engines."""
    from hub import create_app
    from hub.store import migrate
    from tests.conftest import hub_config

    app = create_app(hub_config(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path / "instance"))
    migrate.upgrade(app.extensions["hub"].db.engine)
    yield app
    app.extensions["hub"].db.dispose()


def test_a_thousand_callbacks_cannot_push_real_entries_out_of_view(sqlite_hub):
    app = sqlite_hub
    iid = installed(app)
    client = app.test_client()
    for n in range(1000):  # flip-flopping, so every call is a change of the stored signal
        sent = client.post("/oauth/pipedrive/callback", json={"company_id": 7004211, "user_id": 1, "isShared": n % 2 == 0})
        assert sent.status_code == 200
    rows = newest(app, iid, SETTINGS_VIEW)
    assert [r.action for r in rows] == ["sharing.signal", "visibility.changed", "installation.created"]
    assert rows[0].detail["changes"] == 1000 and rows[0].detail["is_shared"] is False
    with app.extensions["hub"].db.begin() as s:
        assert s.get(Installation, iid).shared_signal is False

    # a real entry, then more signals: again at most one row after it
    with app.extensions["hub"].db.begin() as s:
        audit(s, iid, "Ada (1)", "connection.connected", provider="asana")
    for n in range(50):
        client.post("/oauth/pipedrive/callback", json={"company_id": 7004211, "user_id": 1, "isShared": n % 2 == 0})
    assert [r.action for r in newest(app, iid, 3)] == ["sharing.signal", "connection.connected", "sharing.signal"]


def test_a_repeated_signal_writes_nothing(make_hub):
    app = make_hub()
    iid = installed(app)
    client = app.test_client()
    for _ in range(5):
        client.post("/oauth/pipedrive/callback", json={"company_id": 7004211, "user_id": 1, "isShared": True})
    with app.extensions["hub"].db.begin() as s:
        audit(s, iid, "Ada (1)", "connection.connected", provider="asana")
    for _ in range(5):
        client.post("/oauth/pipedrive/callback", json={"company_id": 7004211, "user_id": 1, "isShared": True})
    with app.extensions["hub"].db.begin() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "sharing.signal")) == 1  # the first one: unknown -> shared
    assert newest(app, iid, 1)[0].action == "connection.connected"
