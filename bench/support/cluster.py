"""A whole scale-out hub on one machine, for bench/scale.py, bench/chaos.py and tests/scale.

`Cluster` creates a fresh PostgreSQL database, migrates it and starts real processes, each as an
operator would: the sandbox (bench/support/sandbox_server.py), gunicorn web processes, `flask --app
hub worker` processes and `flask --app hub scheduler` processes. They share only the database (and
reach the sandbox over HTTP). The marketplace install, the Asana connection and the rules go
through the hub's own pages and JSON API, as an admin's browser would.

Each process writes its log to `<workdir>/logs/<name>.log` (JSON lines when log_format="json")."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urljoin, urlsplit

import requests
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[2]
PG_ADMIN = os.environ.get("HUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PYTHON = sys.executable
ADMIN_USER = 12400001  # the sandbox company's admin (hub/sandbox/pipedrive/seed.py)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll another process's progress (there is no in-process event to wait on)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (requests.ConnectionError, requests.Timeout):
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Proc:
    name: str
    argv: list[str]
    popen: subprocess.Popen | None = None
    starts: int = 0

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


@dataclass
class Cluster:
    workdir: Path
    web: int = 2
    web_threads: int = 4
    workers: int = 4
    worker_concurrency: int = 4
    schedulers: int = 1
    log_format: str = "text"
    log_level: str = "WARNING"
    settings: dict[str, str] = field(default_factory=dict)   # extra HUB_* variables
    access_ttl: int = 0                                     # sandbox access-token lifetime (0 = documented)
    webhook_time_scale: float = 0.1

    db_url: str = ""
    db_name: str = ""
    web_url: str = ""
    sandbox_url: str = ""
    procs: dict[str, Proc] = field(default_factory=dict)
    installation_id: int | None = None
    browser: Any = None

    # -- life cycle -----------------------------------------------------------------------------
    def __enter__(self) -> "Cluster":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        self._create_database()
        self.web_url = f"http://127.0.0.1:{free_port()}"
        self.sandbox_url = f"http://127.0.0.1:{free_port()}"
        self.key = Fernet.generate_key().decode()
        self.start_sandbox()
        self.start_web()   # one gunicorn master with `web` worker processes
        for i in range(self.workers):
            self.start_worker(i)
        for i in range(self.schedulers):
            self.start_scheduler(i)

    def stop(self) -> None:
        for proc in list(self.procs.values()):
            self._terminate(proc)
        if self.db_name:
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
            admin.dispose()
            self.db_name = ""
        if getattr(self, "_engine", None) is not None:
            self._engine.dispose()

    def _create_database(self) -> None:
        from hub.store import migrate

        self.db_name = f"hub_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.db_name}"'))
        admin.dispose()
        self.db_url = PG_ADMIN.rsplit("/", 1)[0] + f"/{self.db_name}"
        self._engine = create_engine(self.db_url, pool_size=2)
        migrate.upgrade(self._engine)

    # -- processes ------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for key in [k for k in env if k.startswith("HUB_")]:
            del env[key]
        origin = f"{self.sandbox_url}/sandbox"
        env.update({
            "HUB_DATABASE_URL": self.db_url, "HUB_SECRET_KEYS": self.key, "HUB_SESSION_SECRET": "bench-session",
            "HUB_INSTANCE_PATH": str(self.workdir / "instance"), "HUB_EMBEDDED": "false", "HUB_SANDBOX": "false",
            "HUB_BASE_URL": self.web_url, "HUB_LOG_LEVEL": self.log_level, "HUB_LOG_FORMAT": self.log_format,
            "HUB_MAIL_BACKEND": "log", "PYTHONPATH": str(REPO),
        })
        for provider in ("pipedrive", "asana", "google"):
            up = provider.upper()
            env[f"HUB_{up}_ORIGIN"] = f"{origin}/{provider}"
            env[f"HUB_{up}_CLIENT_ID"] = "relay-hub-sandbox"
            env[f"HUB_{up}_CLIENT_SECRET"] = "sandbox-secret"
        env.update(self.settings)
        return env

    def _spawn(self, proc: Proc) -> Proc:
        log = open(self.workdir / "logs" / f"{proc.name}.log", "ab")
        proc.popen = subprocess.Popen(proc.argv, cwd=REPO, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        log.close()
        proc.starts += 1
        self.procs[proc.name] = proc
        return proc

    def _terminate(self, proc: Proc, timeout: float = 20) -> None:
        if not proc.alive():
            return
        proc.popen.send_signal(signal.SIGTERM)
        try:
            proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            proc.popen.wait(10)

    def start_sandbox(self) -> Proc:
        port = urlsplit(self.sandbox_url).port
        argv = [PYTHON, str(REPO / "bench" / "support" / "sandbox_server.py"), "--port", str(port),
                "--hub-url", self.web_url, "--webhook-time-scale", str(self.webhook_time_scale)]
        if self.access_ttl:
            argv += ["--access-ttl", str(self.access_ttl)]
        proc = self._spawn(Proc("sandbox", argv))
        wait_until(lambda: requests.get(f"{self.sandbox_url}/healthz", timeout=1).ok, 30, "the sandbox to answer")
        return proc

    def start_web(self) -> Proc:
        port = urlsplit(self.web_url).port
        argv = [PYTHON, "-m", "gunicorn", "--workers", str(self.web), "--threads", str(self.web_threads),
                "--worker-class", "gthread", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
                "--graceful-timeout", "5", "hub:create_app()"]
        proc = self._spawn(Proc("web", argv))
        wait_until(lambda: requests.get(f"{self.web_url}/healthz", timeout=1).ok, 60, "gunicorn to answer")
        return proc

    def start_worker(self, i: int) -> Proc:
        argv = [PYTHON, "-m", "flask", "--app", "hub", "worker", "--concurrency", str(self.worker_concurrency)]
        return self._spawn(Proc(f"worker-{i}", argv))

    def start_scheduler(self, i: int) -> Proc:
        return self._spawn(Proc(f"scheduler-{i}", [PYTHON, "-m", "flask", "--app", "hub", "scheduler"]))

    def tail(self, name: str, lines: int = 20) -> str:
        path = self.workdir / "logs" / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def report_failure(self, out=sys.stderr) -> None:
        """The last lines of every process's log (printed when a bench or test fails)."""
        for name in sorted(self.procs):
            proc = self.procs[name]
            state = "running" if proc.alive() else f"exited {proc.popen.returncode if proc.popen else '-'}"
            print(f"--- {name} ({state}, started {proc.starts}x) ---\n{self.tail(name)}", file=out)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        if proc.alive():
            proc.popen.send_signal(sig)
            proc.popen.wait(30)

    def restart(self, name: str) -> Proc:
        proc = self.procs[name]
        if proc.alive():
            self._terminate(proc)
        return self._spawn(proc)

    def worker_names(self) -> list[str]:
        return sorted(n for n in self.procs if n.startswith("worker-"))

    def wait_workers_ready(self, timeout: float = 60) -> None:
        """Every started worker has written its first heartbeat (it checked the schema and keys)."""
        want = len([n for n in self.worker_names() if self.procs[n].alive()])
        wait_until(lambda: self.scalar("SELECT count(*) FROM process_heartbeats WHERE role = 'worker'") >= want,
                   timeout, f"{want} worker heartbeats")

    # -- database -------------------------------------------------------------------------------
    def scalar(self, sql: str, **params) -> Any:
        with self._engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params) -> list:
        with self._engine.connect() as conn:
            return list(conn.execute(text(sql), params))

    def execute(self, sql: str, **params) -> None:
        with self._engine.begin() as conn:
            conn.execute(text(sql), params)

    def wait_jobs_settled(self, timeout: float, kinds: tuple[str, ...] | None = None) -> None:
        """No job is queued or running (of `kinds`, or any)."""
        where = "status IN ('queued', 'running')"
        if kinds:
            where += " AND kind IN (" + ", ".join(f"'{k}'" for k in kinds) + ")"
        wait_until(lambda: self.scalar(f"SELECT count(*) FROM jobs WHERE {where}") == 0, timeout,
                   "the job queue to settle", interval=0.25)

    # -- sandbox --------------------------------------------------------------------------------
    def sandbox(self, method: str, path: str, **kwargs) -> Any:
        response = requests.request(method, f"{self.sandbox_url}{path}", timeout=kwargs.pop("timeout", 120), **kwargs)
        response.raise_for_status()
        return response.json()

    def faults(self, provider: str, **knobs) -> dict:
        return self.sandbox("POST", f"/sandbox/{provider}/_sandbox/faults", json=knobs)

    def expire_tokens(self, provider: str) -> int:
        return self.sandbox("POST", f"/sandbox/{provider}/_sandbox/tokens/expire")["expired"]

    # -- the admin's clicks ---------------------------------------------------------------------
    def install(self, timeout: float = 60) -> int:
        """Marketplace install (sandbox consent screens), visibility confirmed, webhooks registered
        by a worker, Asana connected: what an admin does on day one."""
        from tests.support.browser import Browser

        browser = Browser(self.web_url)
        first = browser.get("/install/pipedrive", allow_redirects=False)
        assert first.status_code == 302, first.text[:300]
        authorize = first.headers["Location"]
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
        consent = browser.post(authorize.split("?")[0], allow_redirects=False, data={
            "client_id": query["client_id"], "redirect_uri": query["redirect_uri"], "state": query.get("state", ""),
            "user_id": str(ADMIN_USER), "step": "2", "decision": "allow", "visibility": "me"})
        assert consent.status_code == 302, consent.text[:300]
        landed = browser.get(urljoin(authorize, consent.headers["Location"]))
        assert landed.status_code == 200 and "/i/" in landed.url, landed.text[:300]
        iid = int(landed.url.split("/i/")[1].split("/")[0])
        done = browser.form_post(f"/i/{iid}/visibility", {"visibility": "only_me", "setup": "1"},
                                 csrf_from=f"/i/{iid}/visibility?setup=1")
        assert done.status_code == 200, done.text[:300]
        wait_until(lambda: self.scalar("SELECT count(*) FROM registered_webhooks WHERE installation_id = :i", i=iid) >= 3,
                   timeout, "the hub's webhooks to be registered at the CRM")
        summary = self.sandbox("GET", "/_bench/summary")
        dana = next(u["gid"] for u in summary["users"] if u["email"].startswith("dana"))
        start = browser.form_post(f"/i/{iid}/connect/asana", csrf_from=f"/i/{iid}/settings", allow_redirects=False)
        assert start.status_code == 302, start.text[:300]
        authorize = start.headers["Location"]
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
        consent = browser.post(authorize.split("?")[0], data={**query, "decision": "allow", "user": dana},
                               allow_redirects=False)
        assert consent.status_code == 302, consent.text[:300]
        landed = browser.get(urljoin(authorize, consent.headers["Location"]))
        assert landed.status_code == 200, landed.text[:300]
        self.installation_id, self.browser = iid, browser
        return iid

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        """The hub's JSON API as the signed-in admin (session cookie + X-CSRF-Token)."""
        iid = self.installation_id
        token = self.browser.csrf(f"/i/{iid}/settings")
        response = self.browser.request(method, f"/api/v1/installations/{iid}{path}", json=body,
                                        headers={"X-CSRF-Token": token})
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text[:500]}"
        return response.json()

    def create_rules(self) -> dict[str, int]:
        """One active rule per trigger (won, lost, moved to the 2nd stage of Sales), each making an
        Asana task named after the event and the deal, so the checks can tell them apart."""
        summary = self.sandbox("GET", "/_bench/summary")
        sales = next(p for p in summary["pipelines"] if p["name"] == "Sales")
        stages = [s for s in summary["stages"] if s["pipeline_id"] == sales["id"]]
        workspace = next(w["gid"] for w in summary["workspaces"] if w["name"] == "Acme Sandbox Org")
        project = next(p["gid"] for p in summary["projects"] if p["name"] == "Won deals – onboarding")
        asana_id = self.scalar("SELECT id FROM connections WHERE installation_id = :i AND provider = 'asana'",
                               i=self.installation_id)
        rules = {}
        for trigger, extra in (("deal.won", {}), ("deal.lost", {}), ("deal.stage_changed", {"stage_id": str(stages[1]["id"])})):
            body = {"name": f"bench {trigger}", "trigger": trigger, "pipeline_id": str(sales["id"]),
                    "action": "asana.task", "status": "active",
                    "name_template": "{{ event.kind }} deal {{ deal.id }}",
                    "description_template": "{{ deal.title }} ({{ deal.status }})",
                    "carry": {"value": True, "contacts": True, "notes": True, "attachments": True},
                    "target": {"connection_id": asana_id, "workspace_gid": workspace, "project_gid": project}, **extra}
            rules[trigger] = self.api("POST", "/rules", body)["id"]
        return rules
