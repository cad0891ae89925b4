"""App webhooks as HubSpot delivers them: JSON arrays of events from every account that installed the
app, signed (v3 and v1), batched, retried, sometimes duplicated or reordered.

Documented behaviour (FACTS §2-3): subscriptions belong to the app, not to an account; one POST
carries up to 100 events (several objects, several portals); `X-HubSpot-Signature-v3` is
Base64(HMAC-SHA256(client secret, method + URI + body + timestamp)) with the timestamp in
`X-HubSpot-Request-Timestamp` (epoch ms); a failed delivery is re-sent up to 10 times with
`attemptNumber` counting up, except after 400/401/403/404/405; a 429 waits its `Retry-After`.
`eventId` is shared by the events one change produces for several subscriptions.

Deliveries are queued with a due time on the emulator's clock. `deliver_pending()` sends what is due
(tests call it; `force=True` sends retries at once too); with `deliver_in_background` (the default)
a daemon thread does the same as events arrive. Fault knobs: `webhooks_paused`,
`webhook_duplicate_rate`, `webhook_reorder_rate` (a batch goes out in reverse order), and the
HubSpot-only `webhook_delay_ms` (events wait before their first attempt)."""
from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import itertools
import json
import threading
import time
from typing import Any, Callable

from . import schema as s

NO_RETRY = frozenset({400, 401, 403, 404, 405})
MAX_RETRIES = 10
BATCH_SIZE = 100
LOG_LIMIT = 2000
IDLE_EXIT = 5.0      # seconds the background sender waits for work before it ends
USER_AGENT = "HubSpot Connect 2.0 (http://dev.hubspot.com/) - WebhooksExecutorDaemon"


def retry_delay(attempt: int) -> float:
    """Seconds before re-sending attempt `attempt` (1..10): exponential from 1 minute, capped at 8 h,
    so ten retries spread over roughly a day."""
    return float(min(60 * 2 ** (attempt - 1), 8 * 3600))


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    message = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def sign_v1(secret: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + body).hexdigest()


def _http_transport(timeout: float) -> Callable[[str, dict, bytes], tuple[int, dict]]:
    import requests
    session = requests.Session()

    def send(url: str, headers: dict, body: bytes) -> tuple[int, dict]:
        resp = session.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
        return resp.status_code, dict(resp.headers)
    return send


class Deliverer:
    def __init__(self, sandbox):
        self.sb = sandbox
        opts = sandbox.options
        self.batch_size = max(1, min(int(opts.get("webhook_batch_size", BATCH_SIZE)), BATCH_SIZE))
        self.time_scale = float(opts.get("time_scale", 1.0))
        self.timeout = float(opts.get("delivery_timeout", 5.0))
        self.transport = opts.get("transport") or _http_transport(self.timeout)
        self.background = bool(opts.get("deliver_in_background", True))
        self.pending: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []      # every POST made, newest last
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        sandbox.faults.extend(webhook_delay_ms=0.0)
        self.subscriptions: dict[str, list[dict]] = {}
        for n, (client_id, copt) in enumerate(sandbox.client_options.items()):
            self.set_subscriptions(client_id, copt.get("subscriptions") or opts.get("subscriptions")
                                   or s.DEFAULT_SUBSCRIPTIONS, first_id=1_200_000 + 1000 * n)

    # -- configuration ----------------------------------------------------------------------------
    def set_subscriptions(self, client_id: str, subs: list[dict], first_id: int | None = None) -> list[dict]:
        """Replace an app's subscriptions (ids are kept for unchanged ones)."""
        old = {self._sub_key(x): x["id"] for x in self.subscriptions.get(client_id, [])}
        next_id = first_id or max([*old.values(), 1_200_000]) + 1
        out = []
        for sub in subs:
            kind = sub.get("subscriptionType", "")
            obj, _, action = kind.partition(".")
            if action not in ("creation", "propertyChange", "deletion") or (
                    obj == "object" and s.type_by_id(sub.get("objectTypeId", "")) is None) or (
                    obj != "object" and s.resolve_type(obj) is None):
                raise ValueError(f"unsupported subscription {sub!r}")
            if action == "propertyChange" and not sub.get("propertyName"):
                raise ValueError(f"{kind} needs a propertyName")
            entry = {"subscriptionType": kind, "objectTypeId": sub.get("objectTypeId"),
                     "propertyName": sub.get("propertyName"), "active": sub.get("active", True)}
            key = self._sub_key(entry)
            entry["id"] = old.get(key) or next_id
            if entry["id"] == next_id:
                next_id += 1
            out.append(entry)
        self.subscriptions[client_id] = out
        return copy.deepcopy(out)

    @staticmethod
    def _sub_key(sub: dict) -> tuple:
        return sub["subscriptionType"], sub.get("objectTypeId"), sub.get("propertyName")

    def target_url(self, client_id: str) -> str | None:
        opts = self.sb.options
        url = self.sb.client_options[client_id].get("webhook_url") or opts.get("webhook_url")
        if not url and opts.get("hub_url"):
            url = opts["hub_url"].rstrip("/") + "/hooks/hubspot"
        return url

    # -- events -----------------------------------------------------------------------------------
    @staticmethod
    def _matches(sub: dict, occ: dict) -> bool:
        obj, _, action = sub["subscriptionType"].partition(".")
        if not sub["active"] or action != occ["action"]:
            return False
        if obj == "object":
            if sub["objectTypeId"] != s.OBJECT_TYPES[occ["kind"]]["id"]:
                return False
        elif s.resolve_type(obj) != occ["kind"]:
            return False
        return action != "propertyChange" or sub["propertyName"] == occ["property"]

    def events_for(self, client_id: str, occ: dict) -> list[dict]:
        app_id = self.sb.client_options[client_id]["app_id"]
        out = []
        for sub in self.subscriptions.get(client_id, []):
            if not self._matches(sub, occ):
                continue
            generic = sub["subscriptionType"].startswith("object.")
            ev: dict[str, Any] = {"eventId": occ["eventId"], "subscriptionId": sub["id"], "portalId": occ["portalId"],
                                  "appId": app_id, "occurredAt": occ["occurredAt"],
                                  "subscriptionType": sub["subscriptionType"], "attemptNumber": 0,
                                  "objectId": occ["objectId"]}
            if generic:
                ev["objectTypeId"] = s.OBJECT_TYPES[occ["kind"]]["id"]
            if occ["action"] == "propertyChange":
                ev["propertyName"] = occ["property"]
                ev["propertyValue"] = "" if occ["value"] is None else occ["value"]
            else:
                ev["changeFlag"] = {"creation": "CREATED" if generic else "NEW", "deletion": "DELETED"}[occ["action"]]
            ev["changeSource"] = occ["changeSource"]
            if occ.get("sourceId"):
                ev["sourceId"] = occ["sourceId"]
            if generic:
                ev["isSensitive"] = False
            out.append(ev)
        return out

    def publish(self, occurrences: list[dict]) -> None:
        """Queue the events these changes mean for every app installed in their portal."""
        if not occurrences:
            return
        faults = self.sb.faults
        now = self.sb.clock()
        delay = faults.knob("webhook_delay_ms") / 1000.0
        installed = {c: set(self.sb.installed_portals(c)) for c in self.sb.client_options}   # (state lock first,
        events = [(c, ev) for occ in occurrences for c in self.sb.client_options          # never under ours)
                  if occ["portalId"] in installed[c] for ev in self.events_for(c, occ)]
        with self._cond:
            for client_id, ev in events:
                self._queue(client_id, ev, now + delay)
                if faults.roll(faults.settings.webhook_duplicate_rate):
                    self._queue(client_id, copy.deepcopy(ev), now + delay, duplicate=True)
            self._cond.notify_all()
        if self.background:
            self._ensure_thread()

    def _queue(self, client_id: str, event: dict, due: float, duplicate: bool = False) -> None:
        self.pending.append({"due": due, "seq": next(self._seq), "client_id": client_id, "event": event,
                             "duplicate": duplicate})

    def pending_count(self) -> int:
        with self._cond:
            return len(self.pending)

    # -- sending ----------------------------------------------------------------------------------
    def _next_batch(self, force: bool) -> tuple[str, list[dict]] | None:
        with self._cond:
            if self.sb.faults.settings.webhooks_paused and not force:
                return None
            now = self.sb.clock()
            due = sorted((i for i in self.pending if force or i["due"] <= now), key=lambda i: (i["due"], i["seq"]))
            if not due:
                return None
            client_id = due[0]["client_id"]
            batch = [i for i in due if i["client_id"] == client_id][: self.batch_size]
            taken = {id(i) for i in batch}
            self.pending = [i for i in self.pending if id(i) not in taken]
            return client_id, batch

    def deliver_pending(self, force: bool = False) -> list[dict]:
        """Send every batch that is due (`force`: also those waiting for a retry, until none is left
        or only paused ones). Returns the delivery records of the POSTs made."""
        sent = []
        with self._send_lock:
            while True:
                nxt = self._next_batch(force)
                if nxt is None:
                    break
                sent.append(self._send(*nxt))
        return sent

    def _send(self, client_id: str, batch: list[dict]) -> dict:
        sb = self.sb
        if sb.faults.roll(sb.faults.settings.webhook_reorder_rate) and len(batch) > 1:
            batch = list(reversed(batch))
        events = [i["event"] for i in batch]
        url = self.target_url(client_id)
        record: dict[str, Any] = {"client_id": client_id, "url": url, "events": copy.deepcopy(events),
                                  "portals": sorted({e["portalId"] for e in events}),
                                  "attempts": sorted({e["attemptNumber"] for e in events}),
                                  "duplicates": sum(1 for i in batch if i["duplicate"]), "time": time.time()}
        if not url:
            record.update(status=None, ok=False, error="the app has no webhook target URL", outcome="dropped")
            return self._log(record)
        body = json.dumps(events, separators=(",", ":")).encode()
        secret = sb.client_options[client_id]["secret"]
        timestamp = str(int(sb.clock() * 1000))
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   "X-HubSpot-Signature": sign_v1(secret, body), "X-HubSpot-Signature-Version": "v1",
                   "X-HubSpot-Signature-v3": sign_v3(secret, "POST", url, body, timestamp),
                   "X-HubSpot-Request-Timestamp": timestamp, "X-HubSpot-Timeout-Millis": str(int(self.timeout * 1000))}
        status, error, resp_headers = None, None, {}
        try:
            status, resp_headers = self.transport(url, headers, body)
        except Exception as exc:   # noqa: BLE001 (a refused connection or a timeout is a failed attempt)
            error = type(exc).__name__
        ok = status is not None and 200 <= status < 300
        record.update(status=status, ok=ok, error=error, headers=headers, body=body.decode())
        if ok:
            record["outcome"] = "delivered"
        elif status in NO_RETRY:
            record["outcome"] = "dropped"       # HubSpot does not retry these
        else:
            retry_after = None
            if status == 429:
                raw = {k.lower(): v for k, v in (resp_headers or {}).items()}.get("retry-after")
                try:
                    retry_after = float(raw) if raw is not None else None
                except ValueError:
                    retry_after = None
            retried = 0
            with self._cond:
                now = sb.clock()
                for item in batch:
                    attempt = item["event"]["attemptNumber"] + 1
                    if attempt > MAX_RETRIES:
                        continue
                    wait = retry_after if retry_after is not None else retry_delay(attempt) * self.time_scale
                    ev = dict(item["event"], attemptNumber=attempt)
                    self.pending.append({"due": now + wait, "seq": next(self._seq), "client_id": client_id,
                                         "event": ev, "duplicate": item["duplicate"]})
                    retried += 1
                self._cond.notify_all()
            record["outcome"] = "retrying" if retried else "given up"
        return self._log(record)

    def _log(self, record: dict) -> dict:
        with self._cond:
            self.deliveries.append(record)
            del self.deliveries[:-LOG_LIMIT]
        return record

    # -- background -------------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="hubspot-webhooks", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        """Send what falls due; after IDLE_EXIT seconds with nothing queued the thread ends (the next
        event starts another), so emulators a test suite builds and drops leave no threads behind."""
        idle_since = time.monotonic()
        while True:
            with self._cond:
                while True:
                    now = self.sb.clock()
                    paused = self.sb.faults.settings.webhooks_paused
                    due = [i["due"] for i in self.pending]
                    if due and not paused and min(due) <= now:
                        break
                    if due:
                        idle_since = time.monotonic()
                    elif time.monotonic() - idle_since > IDLE_EXIT:
                        self._thread = None
                        return
                    wait = 0.2 if paused or not due else min(max(min(due) - now, 0.01), 1.0)
                    self._cond.wait(wait)
            try:
                self.deliver_pending()
            except Exception:   # noqa: BLE001 (the worker outlives one bad batch)
                time.sleep(0.1)
            idle_since = time.monotonic()
