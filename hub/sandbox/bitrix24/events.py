"""Event delivery: form-encoded POSTs to the bound handlers, never retried (Bitrix24 drops a failed
delivery after logging it).

Deliveries wait in a queue. With `auto` on (the mounted sandbox) a daemon thread sends them as they
come, off the request that caused them (so a hub that posts to itself cannot deadlock);
`deliver_pending()` sends whatever is queued in the caller's thread (tests decide when Bitrix24's
POSTs happen). Knobs: `webhooks_paused` holds the queue, `drop_events` / `drop_event_rate` lose
deliveries (logged as dropped) to exercise the hub's reconciliation."""
from __future__ import annotations

import copy
import threading
import time
from typing import Any
from urllib.parse import urlencode

import requests

from .util import flatten

LOG_LIMIT = 2000


class Dispatcher:
    def __init__(self, sandbox, *, auto: bool = True, timeout: float = 10.0, session: Any = None):
        self.sb = sandbox
        self.auto = auto
        self.timeout = timeout
        self.session = session or requests.Session()
        self.log: list[dict[str, Any]] = []
        self._queue: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()     # one sender at a time: the thread or deliver_pending
        self._thread: threading.Thread | None = None
        self._seq = 0

    # -- queueing ---------------------------------------------------------------------------------
    def queue(self, portal: str, client_id: str, url: str, event: str, data: dict, *, handler_id: int | None,
              user_id: int | None, tokens: bool = True, with_refresh: bool = False,
              token_override: str | None = None, delay: float = 0.0) -> None:
        """Build the body now (auth as of the change) and queue it."""
        body = self._body(portal, client_id, event, data, handler_id, user_id, tokens, with_refresh, token_override)
        with self._cond:
            self._seq += 1
            self._queue.append({"seq": self._seq, "portal": portal, "client_id": client_id, "url": url,
                                "event": event, "body": body, "not_before": time.monotonic() + delay})
            if self.auto:
                self._ensure_thread()
            self._cond.notify_all()

    def _body(self, portal: str, client_id: str, event: str, data: dict, handler_id: int | None,
              user_id: int | None, tokens: bool, with_refresh: bool, token_override: str | None) -> dict:
        sb = self.sb
        with sb.state.lock:
            p = sb.portal(portal)
            info = dict(p["info"])
            install = dict(p["installs"].get(client_id) or {})
        app_token = token_override or install.get("application_token", "")
        endpoints = sb.endpoints(portal)
        scopes = sb.client_options[client_id]["scopes"]
        auth: dict[str, Any] = {}
        if tokens and user_id:
            if with_refresh:
                issued = sb.issue_tokens(portal, client_id, int(user_id))
            else:   # an access token alone: events do not mint refresh tokens
                issued = {"access_token": sb.tokens._new_access(client_id, sb.grant(portal, client_id, int(user_id)), "")}
            auth.update(access_token=issued["access_token"], expires_in=str(sb.tokens.access_ttl),
                        scope=",".join(scopes))
            if with_refresh:
                auth["refresh_token"] = issued["refresh_token"]
        auth.update(domain=info["domain"], server_endpoint=endpoints["server_endpoint"], status=install.get("status", "L"),
                    client_endpoint=endpoints["client_endpoint"], member_id=info["member_id"],
                    application_token=app_token)
        if not tokens:
            auth.pop("status")
        body: dict[str, Any] = {"event": event}
        if handler_id is not None:
            body["event_handler_id"] = str(handler_id)
        body.update(data=copy.deepcopy(data), ts=str(int(sb.now())), auth=auth)
        return body

    def pending(self) -> list[dict]:
        with self._cond:
            return [copy.deepcopy(j) for j in self._queue]

    # -- sending ----------------------------------------------------------------------------------
    def deliver_pending(self) -> list[dict]:
        """Send everything queued (delays ignored, the pause knob too); returns the log entries."""
        with self._cond:
            jobs, self._queue = self._queue, []
        return self._send_all(jobs)

    def _send_all(self, jobs: list[dict]) -> list[dict]:
        out = []
        with self._send_lock:
            for job in sorted(jobs, key=lambda j: j["seq"]):
                out.append(self._send(job))
        return out

    def _send(self, job: dict) -> dict:
        faults = self.sb.faults
        entry = {"event": job["event"], "url": job["url"], "portal": job["portal"], "client_id": job["client_id"],
                 "body": job["body"], "time": time.time(), "status": None, "ok": False, "error": None}
        if faults.take("drop_events") or faults.roll(faults.knob("drop_event_rate")):
            entry["error"] = "dropped (fault knob): never sent"
            self._log(entry)
            return entry
        form = urlencode(flatten(job["body"]))
        try:
            resp = self.session.post(job["url"], data=form.encode(), timeout=self.timeout, allow_redirects=False,
                                     headers={"Content-Type": "application/x-www-form-urlencoded",
                                              "User-Agent": "Bitrix24 Webhook Engine"})
            entry.update(status=resp.status_code, ok=200 <= resp.status_code < 300)
        except requests.RequestException as exc:
            entry["error"] = type(exc).__name__
        if not entry["ok"]:
            entry["error"] = entry["error"] or f"HTTP {entry['status']}: logged, not retried"
        self._log(entry)
        return entry

    def _log(self, entry: dict) -> None:
        with self._cond:
            self.log.append(entry)
            del self.log[:-LOG_LIMIT]

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="bitrix24-events", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    paused = bool(self.sb.faults.settings.webhooks_paused)
                    now = time.monotonic()
                    due = [] if paused else [j for j in self._queue if j["not_before"] <= now]
                    if due:
                        self._queue = [j for j in self._queue if j not in due]
                        break
                    waits = [j["not_before"] - now for j in self._queue]
                    timeout = 0.05 if paused and self._queue else (max(min(waits), 0.005) if waits else None)
                    self._cond.wait(timeout)
            try:
                self._send_all(due)
            except Exception as exc:   # noqa: BLE001  (one bad job must not end the sender)
                self._log({"event": "?", "error": f"internal: {exc!r}", "ok": False, "status": None})
