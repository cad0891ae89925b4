"""A registered emulator is mounted by the hub like the built-in ones: /sandbox/<name>/, listed on
the sandbox page, given its own public root; the connector's API root is swapped to it."""
from __future__ import annotations

from hub import create_app, sandbox
from tests.conftest import hub_config

from .connector import CONNECTOR
from .emulator import DEMO_ACCOUNT, signature


def test_the_hub_mounts_a_registered_emulator(registered, tmp_path):
    app = create_app(hub_config(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path / "instance", sandbox=True,
                                base_url="http://hub.test", **{"sandbox.persist": False}))
    try:
        assert "example" in sandbox.providers()
        web = app.test_client()
        target = "/sandbox/example/api/v1/me"   # signed as sent: the mount's prefix is part of the target
        me = web.get(target, headers={"X-Api-Key": DEMO_ACCOUNT["api_key"],
                                      "X-Signature": signature(DEMO_ACCOUNT["api_secret"], "GET", target, b"")})
        assert me.status_code == 200, me.text
        assert me.json["account"]["id"] == DEMO_ACCOUNT["id"]
        assert web.get(target).status_code == 401
        assert "<code>/sandbox/example/</code>" in web.get("/sandbox/").text
        crm = app.extensions["hub"].extras["sandbox"]["example"].extensions["sandbox"]
        assert crm.base_url == "http://hub.test/sandbox/example"
        assert CONNECTOR.auth.with_origin(sandbox.sandbox_origin("http://hub.test", "example")).api_url == crm.base_url
    finally:
        app.extensions["hub"].stop()
        app.extensions["hub"].db.dispose()


def test_unregistered_emulators_are_not_mounted(tmp_path):
    assert "example" not in sandbox.providers()
