"""The ingest's per-process cache of installations and their webhook secrets (hub/webhooks/ingest.py
`endpoints`): a webhook costs no read and no decryption, yet a change made by ANY process (rotated
secret, uninstall, reinstall, a key rotation) refuses the very next webhook that no longer proves
itself. "Another process" here is a second hub on the same database, with its own engine and the
real functions that change things; the ingest's cache is never told (as it is not across processes)."""
from __future__ import annotations

import pytest
from sqlalchemy import event, func, select

from hub.oauth import installs
from hub.store import InboxEvent, Installation, Job
from hub.webhooks.credentials import password_ref
from hub.webhooks.ingest import endpoints
from tests.webhooks.test_parts import hub, post_acme, stored  # noqa: F401  (the `hub` fixture: acme + formco)


@pytest.fixture
def other(hub, make_hub):
    """Another web process: its own app and engine on the same database and keys."""
    return make_hub().extensions["hub"]


def post_formco(hub, password, event_id, token="tok-formco-1"):
    return hub.client.post(f"/hooks/formco/{token}", data={"event": "ONTASKUPDATE", "data[ID]": "7", "ts": str(event_id),
                                                          "auth[token]": password})


def statements(hub):
    """The SQL statements the hub's own engine sends while the block runs."""
    seen: list[str] = []

    def record(conn, cursor, statement, *args):
        seen.append(" ".join(statement.split()))
    event.listen(hub.services.db.engine, "before_cursor_execute", record)
    return seen, lambda: event.remove(hub.services.db.engine, "before_cursor_execute", record)


def test_a_cached_endpoint_costs_no_read_of_its_own(hub):
    password = hub.made["formco"][1]
    assert post_formco(hub, password, 1).status_code == 200          # reads the installation: now cached
    seen, stop = statements(hub)
    try:
        assert post_formco(hub, password, 2).get_json() == {"ok": True}
    finally:
        stop()
    writes = [s for s in seen if s.upper().startswith(("INSERT", "WITH"))]
    assert [s for s in seen if s.upper().startswith("SELECT")] == [], seen
    if hub.services.db.is_postgres:   # inbox row, job and NOTIFY: one autocommitted statement
        assert len(seen) == len(writes) == 1 and "pg_notify" in writes[0], seen
    else:   # SQLite: BEGIN IMMEDIATE (on the driver), the inbox row and its job
        assert len(seen) == len(writes) == 2, seen
    assert stored(hub) == (2, 2)


def test_a_password_rotated_by_another_process_refuses_the_old_one_at_once(hub, other):
    iid, password = hub.made["formco"]
    assert post_formco(hub, password, 1).status_code == 200
    with other.db.begin() as s:
        other.secrets.put(s, password_ref(iid), "rotated-password")
    answer = post_formco(hub, password, 2)
    assert answer.status_code == 401 and "auth[token]" in answer.get_json()["message"]
    assert post_formco(hub, "rotated-password", 3).get_json() == {"ok": True}
    assert post_formco(hub, password, 4).status_code == 401
    assert stored(hub) == (2, 2)


def test_a_secret_deleted_by_another_process_refuses_at_once(hub, other):
    iid, password = hub.made["formco"]
    assert post_formco(hub, password, 1).status_code == 200
    with other.db.begin() as s:
        other.secrets.delete(s, password_ref(iid))
    assert post_formco(hub, password, 2).status_code == 401
    assert stored(hub) == (1, 1)


def test_an_uninstall_in_another_process_refuses_at_once_and_a_reinstall_keeps_the_old_url_dead(hub, other):
    iid, password = hub.made["formco"]
    assert post_formco(hub, password, 1).status_code == 200
    installs.uninstall(other, iid, "test", revoke_at_provider=False)
    answer = post_formco(hub, password, 2)
    assert answer.status_code == 404 and answer.get_json()["error"] == "not_found"
    with other.db.begin() as s:                                      # reinstalled: active again, a new URL
        s.get(Installation, iid).status = "active"
        token = s.get(Installation, iid).endpoint_token
    assert post_formco(hub, password, 3).status_code == 404          # the old URL stays dead
    assert post_formco(hub, password, 4, token=token).get_json() == {"ok": True}
    assert stored(hub) == (2, 2)


def test_an_app_wide_endpoint_sees_a_rotation_by_another_process_at_once(hub, other):
    iid, secret = hub.made["acme"]
    assert post_acme(hub, [{"portalId": "portal-1", "eventId": 1, "objectId": 5}]).status_code == 200
    with other.db.begin() as s:
        other.secrets.put(s, password_ref(iid), "rotated-secret")
    assert post_acme(hub, [{"portalId": "portal-1", "eventId": 2, "objectId": 5}]).status_code == 401
    assert post_acme(hub, [{"portalId": "portal-1", "eventId": 4, "objectId": 5},   # several parts: one transaction
                           {"portalId": "portal-1", "eventId": 5, "objectId": 6}]).status_code == 401
    assert post_acme(hub, [{"portalId": "portal-1", "eventId": 3, "objectId": 5}], secret="rotated-secret"
                     ).get_json() == {"ok": True}
    assert stored(hub) == (2, 2)
    with other.db.begin() as s:                                     # and again, now under the multi-part path
        other.secrets.put(s, password_ref(iid), "rotated-again")
    assert post_acme(hub, [{"portalId": "portal-1", "eventId": 6, "objectId": 5},
                           {"portalId": "portal-1", "eventId": 7, "objectId": 6}], secret="rotated-secret"
                     ).status_code == 401
    assert post_acme(hub, [{"portalId": "portal-1", "eventId": 6, "objectId": 5},
                           {"portalId": "portal-1", "eventId": 7, "objectId": 6}], secret="rotated-again"
                     ).get_json() == {"ok": True, "events": 2, "duplicates": 0}
    assert stored(hub) == (4, 4)


def test_a_key_rotation_elsewhere_reads_the_same_secret_again_and_loses_nothing(hub, other):
    """Re-encrypted ciphertexts fail the guard: the request is read again, verified, stored once."""
    password = hub.made["formco"][1]
    assert post_formco(hub, password, 1).status_code == 200
    assert other.secrets.rotate_all(other.db) > 0
    assert post_formco(hub, password, 2).get_json() == {"ok": True}
    assert post_formco(hub, password, 2).get_json() == {"ok": True, "duplicate": True}
    assert stored(hub) == (2, 2)


def test_a_redelivery_is_a_duplicate_not_a_stale_endpoint(hub):
    password = hub.made["formco"][1]
    assert post_formco(hub, password, 1).get_json() == {"ok": True}
    seen, stop = statements(hub)
    try:
        assert post_formco(hub, password, 1).get_json() == {"ok": True, "duplicate": True}
    finally:
        stop()
    reads = [s for s in seen if s.upper().startswith("SELECT")]
    assert len(reads) == 1 and "EXISTS" in reads[0], seen     # only the guard (to tell it from a change): no re-read
    assert stored(hub) == (1, 1)
    with hub.services.db.begin() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 1
        assert s.scalar(select(func.count()).select_from(InboxEvent)) == 1


def test_a_change_that_keeps_coming_is_answered_503_not_stored(hub, monkeypatch):
    """Every read is stale by the time it stores (a change racing each attempt): a bounded number of
    tries, then 503 with Retry-After (the provider delivers again), nothing stored."""
    iid, password = hub.made["formco"]
    real = endpoints.by_token

    def stale(services, token, **kw):
        found = real(services, token, **kw)
        return found and found._replace(guard={**found.guard, "g_password_ct": b"not what is stored"})
    monkeypatch.setattr(endpoints, "by_token", stale)
    answer = post_formco(hub, password, 1)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    assert stored(hub) == (0, 0)


def test_a_webhook_gets_no_session_but_keeps_the_security_headers(hub):
    """Providers have no hub session: none is read or written for /hooks/ (hub/web/headers.py)."""
    app = hub.app
    with app.test_request_context("/hooks/formco/tok-formco-1", method="POST"):
        from flask import request
        assert app.session_interface.is_null_session(app.session_interface.open_session(app, request))
    with app.test_request_context("/i/1/events"):
        from flask import request
        assert not app.session_interface.is_null_session(app.session_interface.open_session(app, request))
    answer = post_formco(hub, hub.made["formco"][1], 1)
    assert answer.status_code == 200 and answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["X-Content-Type-Options"] == "nosniff" and "Set-Cookie" not in answer.headers
