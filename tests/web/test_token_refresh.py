"""Token refresh: single flight across 8 processes under rotating refresh tokens, and the
'needs reconnection' state when the provider refuses a refresh."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests
from sqlalchemy import func, select

from hub import create_app
from hub.errors import NeedsReauth
from hub.jobs import Worker, handler
from hub.oauth.tokens import ConnectionTokens, store_tokens
from hub.sandbox.common import Faults
from hub.sandbox.pipedrive import create_app as pipedrive_app
from hub.store import Connection, Installation, Job, migrate
from tests.conftest import REPO, TEST_KEY, hub_config
from tests.support.live import live_server
from tests.web.conftest import ADMIN, install

CLIENT = {"client_id": "relay-hub-sandbox", "client_secret": "sandbox-secret", "redirect_uris": []}


def seed_connection(services, emulator, api_domain: str) -> int:
    """An installation whose installer's tokens were minted by the emulator (as an install would)."""
    grant = {"client_id": CLIENT["client_id"], "company_id": emulator.company()["id"], "user_id": ADMIN,
             "scopes": ["base", "deals:full", "contacts:full", "admin", "users:read", "leads:read"]}
    issued = emulator.tokens.issue(CLIENT["client_id"], grant)
    with services.db.begin() as s:
        inst = Installation(provider="pipedrive", company_id=str(emulator.company()["id"]), installer_user_id=str(ADMIN),
                            company_name="Acme Sandbox", installer_email="ada.admin@acme-sandbox.example",
                            endpoint_token="tok-refresh-test", api_domain=api_domain)
        s.add(inst)
        s.flush()
        conn = Connection(installation_id=inst.id, provider="pipedrive", role="crm", account_id=str(ADMIN),
                          api_base=api_domain, token_url=f"{api_domain}/oauth/token", revoke_url=f"{api_domain}/oauth/revoke")
        s.add(conn)
        s.flush()
        store_tokens(services, s, conn, {"access_token": issued["access_token"], "refresh_token": issued["refresh_token"],
                                         "expires_in": emulator.tokens.access_ttl})
        return conn.id


@pytest.mark.postgres
@pytest.mark.slow
def test_eight_processes_share_one_connection_without_invalid_grant(pg_url, tmp_path):
    from tests.conftest import _truncate_pg
    _truncate_pg(pg_url)
    faults = Faults(strict_refresh=True)
    emulator_app = pipedrive_app(faults=faults, options={"clients": [CLIENT], "access_ttl": 1})
    emulator = emulator_app.extensions["sandbox"]
    with live_server(emulator_app) as sandbox:
        settings = {"pipedrive.origin": sandbox.url, "pipedrive.client_id": CLIENT["client_id"],
                    "pipedrive.client_secret": CLIENT["client_secret"]}
        app = create_app(hub_config(pg_url, tmp_path / "i", **settings))
        services = app.extensions["hub"]
        connection_id = seed_connection(services, emulator, sandbox.url)
        env = dict(os.environ, HUB_DATABASE_URL=pg_url, HUB_SECRET_KEYS=TEST_KEY, HUB_SESSION_SECRET="t",
                   HUB_INSTANCE_PATH=str(tmp_path / "i"), HUB_SANDBOX="false", HUB_LOG_LEVEL="WARNING",
                   HUB_PIPEDRIVE_ORIGIN=sandbox.url, HUB_PIPEDRIVE_CLIENT_ID=CLIENT["client_id"],
                   HUB_PIPEDRIVE_CLIENT_SECRET=CLIENT["client_secret"], PYTHONPATH=str(REPO))
        procs = [subprocess.Popen([sys.executable, "-m", "tests.web.token_worker", str(connection_id), "125", sandbox.url],
                                  env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(8)]
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err[-3000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
        counters = requests.get(f"{sandbox.url}/_sandbox/oauth/counters").json()
    with services.db.begin() as s:
        conn = s.get(Connection, connection_id)
        refreshes, status = conn.refresh_count, conn.status
    total_ok = sum(r["ok"] for r in results)
    errors = [e for r in results for e in r["errors"]]
    print(f"8 processes, {total_ok} API calls, {refreshes} refreshes by the hub, "
          f"{counters.get('refreshes', 0)} at the provider, {counters.get('invalid_grant', 0)} invalid_grant")
    assert errors == [] and total_ok == 1000
    assert counters.get("invalid_grant", 0) == 0
    assert status == "connected"
    assert refreshes == counters["refreshes"] >= 2  # tokens lived one second: many refreshes, each exactly once
    services.db.dispose()


@handler("test.crm_call")
def crm_call(ctx):
    from hub.connectors.pipedrive.client import PipedriveClient
    services = ctx.app.extensions["hub"]
    PipedriveClient(ctx.payload["api"], ConnectionTokens(services, ctx.payload["connection_id"])).me()


def test_refused_refresh_marks_needs_reconnection_mails_once_and_jobs_wait(live_hub, smtp):
    admin, iid = install(live_hub)
    live_hub.run_jobs()  # the install's own follow-up (webhook registration)
    services = live_hub.services
    emulator = live_hub.emulator("pipedrive")
    with services.db.begin() as s:
        conn = s.scalar(select(Connection).where(Connection.installation_id == iid, Connection.role == "crm"))
        connection_id, api = conn.id, conn.api_base
        refresh_token = services.secrets.get(s, f"connection:{conn.id}:refresh_token")
    emulator.tokens.revoke(refresh_token)  # the admin revoked the app in the CRM, say
    emulator.tokens.expire_all_now()
    with services.db.begin() as s:
        job_id = services.queue.enqueue(s, "test.crm_call", {"connection_id": connection_id, "api": api}, installation_id=None)
    worker = Worker(services.queue, app=live_hub.app, worker_id="w")
    assert worker.run_once() == 1
    with services.db.begin() as s:
        job = s.get(Job, job_id)
        conn = s.get(Connection, connection_id)
        assert job.status == "queued" and job.attempts == 0 and "needs reconnection" in job.last_error
        assert conn.status == "needs_reconnection" and "refused the refresh token" in conn.status_reason
    with pytest.raises(NeedsReauth):  # later calls fail fast without asking the provider again
        ConnectionTokens(services, connection_id).access_token()
    live_hub.run_jobs()
    mails = smtp.wait_for(1)
    assert len(mails) == 1 and mails[0][0] == ["ada.admin@acme-sandbox.example"]
    assert "reconnect Pipedrive" in mails[0][1]["Subject"]
    with services.db.begin() as s:
        assert s.scalar(select(func.count()).select_from(Job).where(Job.kind == "mail.send")) == 1
    page = admin.get(f"/i/{iid}/settings")
    assert "Needs reconnection" in page.text
