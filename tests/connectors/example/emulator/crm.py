"""The Example CRM's accounts, deals, tasks and webhook deliveries, kept in a `SandboxState`.

Written from ../API.md alone; nothing here is shared with the connector. Deliveries are queued
when a deal or task changes and sent by `flush()` (a test decides when the CRM's POSTs happen);
`redeliver()` sends an earlier delivery's body again, as a provider's retry does."""
from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

import requests

from hub.sandbox.common import Faults, SandboxState

EVENTS = ("deal.created", "deal.updated", "deal.deleted", "task.completed")
DEMO_ACCOUNT = {"id": "acc_1", "name": "Example Demo Co", "api_key": "demo-key", "api_secret": "demo-secret"}
STAGES = ("Lead in", "Qualified", "Proposal", "Negotiation")
USERS = (("Ada Admin", "ada@example.test", True), ("Bo Seller", "bo@example.test", False))
DEAL_FIELDS = ("title", "stage_id", "status", "amount", "currency", "owner_id")


class Invalid(ValueError):
    """A request the CRM refuses with 400 naming `field`."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class Duplicate(Exception):
    def __init__(self, task_id: int):
        super().__init__(f"external_id already used by task {task_id}")
        self.task_id = task_id


class ExampleCrm:
    def __init__(self, state: SandboxState, faults: Faults, options: dict | None = None):
        options = dict(options or {})
        self.state = state
        self.faults = faults
        self.clock: Callable[[], float] = options.get("clock", time.time)
        self.http = options.get("session") or requests.Session()
        self.base_url = (options.get("base_url") or "").rstrip("/")   # where task links point
        if options.get("seed", True):
            self.seed(options.get("accounts") or [DEMO_ACCOUNT])

    # -- data -------------------------------------------------------------------------------------
    @property
    def data(self) -> dict:
        return self.state.data

    def now(self) -> str:
        return datetime.fromtimestamp(self.clock(), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def seed(self, accounts: list[dict]) -> None:
        with self.state.change():
            if self.state.table("accounts"):
                return
            for account in accounts:
                self.state.table("accounts")[account["id"]] = dict(account)
                for order, name in enumerate(STAGES, 1):
                    sid = self.state.next_id("stage")
                    self.state.table("stages")[str(sid)] = {"id": sid, "name": name, "order": order,
                                                            "account_id": account["id"]}
                for name, email, admin in USERS:
                    uid = self.state.next_id("user", 100)
                    self.state.table("users")[str(uid)] = {"id": uid, "name": name, "email": email,
                                                           "admin": admin, "account_id": account["id"]}
                owner = self.users(account["id"])[-1]["id"]
                first = self.stages(account["id"])[0]["id"]
                for title, amount in (("Acme rollout", "1200.00"), ("Globex pilot", "450.50")):
                    self._insert_deal(account["id"], {"title": title, "stage_id": first, "amount": amount,
                                                      "currency": "EUR", "owner_id": owner})

    def account_by_key(self, key: str) -> dict | None:
        with self.state.lock:
            return next((dict(a) for a in self.state.table("accounts").values()
                         if hmac.compare_digest(a["api_key"].encode(), key.encode())), None)

    def _rows(self, table: str, account_id: str) -> list[dict]:
        with self.state.lock:
            return [copy.deepcopy(r) for r in self.state.table(table).values() if r["account_id"] == account_id]

    @staticmethod
    def _public(row: dict | None) -> dict | None:
        return None if row is None else {k: v for k, v in row.items() if k != "account_id"}

    def users(self, account_id: str) -> list[dict]:
        return [self._public(u) for u in sorted(self._rows("users", account_id), key=lambda u: u["id"])]

    def stages(self, account_id: str) -> list[dict]:
        return [self._public(s) for s in sorted(self._rows("stages", account_id), key=lambda s: s["order"])]

    def _own(self, table: str, account_id: str, object_id: Any) -> dict | None:
        row = self.state.table(table).get(str(object_id))
        return row if row is not None and row["account_id"] == account_id else None

    # -- deals ------------------------------------------------------------------------------------
    def deals(self, account_id: str, limit: int = 20) -> list[dict]:
        rows = sorted(self._rows("deals", account_id), key=lambda d: (d["updated_at"], d["id"]), reverse=True)
        return [self._public(d) for d in rows[:limit]]

    def deal(self, account_id: str, deal_id: Any) -> dict | None:
        with self.state.lock:
            return self._public(copy.deepcopy(self._own("deals", account_id, deal_id)))

    def _check_deal(self, account_id: str, values: dict) -> dict:
        out: dict[str, Any] = {}
        for key, value in values.items():
            if key not in DEAL_FIELDS:
                raise Invalid(key, f"{key}: not a deal field")
            if key == "title":
                if not isinstance(value, str) or not value.strip():
                    raise Invalid(key, "title: a non-empty string")
            elif key == "stage_id":
                if self._own("stages", account_id, value) is None:
                    raise Invalid(key, "stage_id: no such stage")
            elif key == "owner_id":
                if self._own("users", account_id, value) is None:
                    raise Invalid(key, "owner_id: no such user")
            elif key == "status":
                if value not in ("open", "won", "lost"):
                    raise Invalid(key, "status: open, won or lost")
            elif key == "amount":
                try:
                    value = f"{Decimal(str(value)):.2f}"
                except (InvalidOperation, ValueError):
                    raise Invalid(key, "amount: a decimal number") from None
            elif key == "currency" and not (isinstance(value, str) and len(value) == 3):
                raise Invalid(key, "currency: a three-letter code")
            out[key] = value
        return out

    def _insert_deal(self, account_id: str, values: dict) -> dict:
        now = self.now()
        deal = {"id": self.state.next_id("deal", 4000), "title": "", "stage_id": None, "status": "open",
                "amount": "0.00", "currency": "EUR", "owner_id": None, **values,
                "created_at": now, "updated_at": now, "account_id": account_id}
        self.state.table("deals")[str(deal["id"])] = deal
        return deal

    def create_deal(self, account_id: str, values: dict) -> dict:
        with self.state.change():
            if "title" not in values or "stage_id" not in values:
                raise Invalid("title" if "title" not in values else "stage_id", "title and stage_id are required")
            deal = self._insert_deal(account_id, self._check_deal(account_id, values))
            self._emit(account_id, "deal.created", deal, None)
            return self._public(copy.deepcopy(deal))

    def update_deal(self, account_id: str, deal_id: Any, values: dict) -> dict | None:
        with self.state.change():
            deal = self._own("deals", account_id, deal_id)
            if deal is None:
                return None
            changes = self._check_deal(account_id, values)
            previous = {k: deal[k] for k, v in changes.items() if deal[k] != v}
            if previous:
                deal.update(changes)
                deal["updated_at"] = self.now()
                self._emit(account_id, "deal.updated", deal, previous)
            return self._public(copy.deepcopy(deal))

    def delete_deal(self, account_id: str, deal_id: Any) -> bool:
        with self.state.change():
            deal = self._own("deals", account_id, deal_id)
            if deal is None:
                return False
            del self.state.table("deals")[str(deal["id"])]
            self._emit(account_id, "deal.deleted", deal, None)
            return True

    # -- tasks ------------------------------------------------------------------------------------
    def tasks(self, account_id: str | None = None) -> list[dict]:
        with self.state.lock:
            rows = [copy.deepcopy(t) for t in self.state.table("tasks").values()
                    if account_id is None or t["account_id"] == account_id]
        return [self._public(t) for t in sorted(rows, key=lambda t: t["id"])]

    def task(self, account_id: str, task_id: Any) -> dict | None:
        with self.state.lock:
            return self._public(copy.deepcopy(self._own("tasks", account_id, task_id)))

    def task_by_external(self, account_id: str, external_id: str) -> dict | None:
        with self.state.lock:
            return next((self._public(copy.deepcopy(t)) for t in self.state.table("tasks").values()
                         if t["account_id"] == account_id and t["external_id"] == external_id), None)

    def create_task(self, account_id: str, body: dict) -> dict:
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            raise Invalid("title", "title: a non-empty string")
        for key in ("notes", "due", "external_id"):
            if body.get(key) is not None and not isinstance(body[key], str):
                raise Invalid(key, f"{key}: a string")
        if len(body.get("external_id") or "") > 100:
            raise Invalid("external_id", "external_id: at most 100 characters")
        if not isinstance(body.get("review", False), bool):
            raise Invalid("review", "review: true or false")
        with self.state.change():
            if body.get("assignee_id") is not None and self._own("users", account_id, body["assignee_id"]) is None:
                raise Invalid("assignee_id", "assignee_id: no such user")
            if body.get("deal_id") is not None and self._own("deals", account_id, body["deal_id"]) is None:
                raise Invalid("deal_id", "deal_id: no such deal")
            external = body.get("external_id") or None
            if external:
                held = self.task_by_external(account_id, external)
                if held is not None:
                    raise Duplicate(held["id"])
            tid = self.state.next_id("task", 9000)
            task = {"id": tid, "title": title, "notes": body.get("notes") or "", "due": body.get("due"),
                    "assignee_id": body.get("assignee_id"), "deal_id": body.get("deal_id"),
                    "external_id": external, "status": "open", "url": f"{self.base_url}/tasks/{tid}",
                    "review": bool(body.get("review", False)), "account_id": account_id}
            self.state.table("tasks")[str(tid)] = task
            return self._public(copy.deepcopy(task))

    def complete_task(self, account_id: str, task_id: Any) -> dict | None:
        with self.state.change():
            task = self._own("tasks", account_id, task_id)
            if task is None:
                return None
            if task.get("review") and task["status"] == "open":     # a person approves it (approve_task)
                task["status"] = "awaiting_review"
            elif task["status"] == "open":
                task["status"] = "completed"
                self._emit(account_id, "task.completed", task, {"status": "open"})
            return self._public(copy.deepcopy(task))

    def approve_task(self, account_id: str, task_id: Any) -> dict | None:
        """The reviewer accepts a task awaiting review: it is completed."""
        with self.state.change():
            task = self._own("tasks", account_id, task_id)
            if task is None:
                return None
            if task["status"] == "awaiting_review":
                task["status"] = "completed"
                self._emit(account_id, "task.completed", task, {"status": "awaiting_review"})
            return self._public(copy.deepcopy(task))

    def delete_task(self, account_id: str, task_id: Any) -> bool:
        with self.state.change():
            task = self._own("tasks", account_id, task_id)
            if task is None:
                return False
            del self.state.table("tasks")[str(task["id"])]
            return True

    # -- webhooks ---------------------------------------------------------------------------------
    def subscribe(self, account_id: str, url: Any, events: Any, secret: Any) -> dict:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise Invalid("url", "url: an http(s) URL")
        events = list(EVENTS) if events is None else events
        if not isinstance(events, list) or not events or any(e not in EVENTS for e in events):
            raise Invalid("events", f"events: a non-empty list of {', '.join(EVENTS)}")
        if secret is not None and (not isinstance(secret, str) or not secret):
            raise Invalid("secret", "secret: a non-empty string")
        with self.state.change():
            wid = self.state.next_id("webhook", 70)
            hook = {"id": wid, "url": url, "events": events, "secret": secret, "account_id": account_id}
            self.state.table("webhooks")[str(wid)] = hook
            return {"id": wid, "url": url, "events": events}

    def webhooks(self, account_id: str) -> list[dict]:
        return [{k: h[k] for k in ("id", "url", "events")} for h in self._rows("webhooks", account_id)]

    def unsubscribe(self, account_id: str, webhook_id: Any) -> bool:
        with self.state.change():
            if self._own("webhooks", account_id, webhook_id) is None:
                return False
            del self.state.table("webhooks")[str(webhook_id)]
            return True

    def _emit(self, account_id: str, kind: str, obj: dict, previous: dict | None) -> None:
        """Queue one delivery per subscription listening to `kind` (under the state's lock)."""
        data: dict[str, Any] = {"object": self._public(copy.deepcopy(obj))}
        if previous is not None and kind != "deal.created":
            data["previous"] = previous
        event = {"id": f"evt_{self.state.next_id('event')}", "type": kind, "account_id": account_id,
                 "created_at": self.now(), "data": data}
        body = json.dumps(event, separators=(",", ":"))
        account = self.state.table("accounts")[account_id]
        for hook in self.state.table("webhooks").values():
            if hook["account_id"] == account_id and kind in hook["events"]:
                secret = hook["secret"] or account["api_secret"]
                signature = "sha256=" + hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
                self._queue(hook["url"], kind, body, signature)

    def _queue(self, url: str, kind: str, body: str, signature: str) -> dict:
        delivery = {"id": f"dlv_{self.state.next_id('delivery')}", "url": url, "event": kind, "body": body,
                    "headers": {"Content-Type": "application/json", "X-Example-Signature": signature,
                                "X-Example-Event": kind},
                    "status": None, "sent": False}
        delivery["headers"]["X-Example-Delivery"] = delivery["id"]
        self.state.table("deliveries")[delivery["id"]] = delivery
        return delivery

    def deliveries(self) -> list[dict]:
        with self.state.lock:
            return [copy.deepcopy(d) for d in self.state.table("deliveries").values()]

    def flush(self) -> list[int]:
        """Send every queued delivery now; returns the receivers' status codes (0: unreachable)."""
        with self.state.lock:
            pending = [d["id"] for d in self.state.table("deliveries").values() if not d["sent"]]
        return [self._send(d) for d in pending]

    def redeliver(self, delivery_id: str) -> int:
        """Send an earlier delivery's body again (same event id), as a retry after a lost answer does."""
        with self.state.change():
            first = self.state.table("deliveries")[delivery_id]
            again = self._queue(first["url"], first["event"], first["body"],
                                first["headers"]["X-Example-Signature"])
        return self._send(again["id"])

    def _send(self, delivery_id: str) -> int:
        with self.state.change():
            delivery = self.state.table("deliveries")[delivery_id]
            delivery["sent"] = True
            url, body, headers = delivery["url"], delivery["body"], dict(delivery["headers"])
        try:
            status = self.http.post(url, data=body.encode(), headers=headers, timeout=10).status_code
        except requests.RequestException:
            status = 0
        with self.state.change():
            self.state.table("deliveries")[delivery_id]["status"] = status
        return status
