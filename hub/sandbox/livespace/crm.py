"""The emulated Livespace account: users with API keys, one-shot API sessions, contacts and
companies, sales processes with stages, deals (open / won / lost), todos with types, and webhook
subscriptions with their handshake, signed deliveries and retries.

Written from the provider's public documentation and the facts file; nothing here is shared with
the connector. Deliveries queue up when something changes and leave only when `deliver_pending()`
is called (tests and the sandbox page decide when Livespace's POSTs happen)."""
from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets as pysecrets
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

import requests

from hub.sandbox.common import Faults, SandboxState

SESSION_SECONDS = 15 * 60          # a session is valid 15 minutes and serves one call
HANDSHAKE_TIMEOUT = 3.0            # the endpoint must answer the empty POST within 3 s
DELIVERY_TIMEOUT = 10.0
MAX_ATTEMPTS = 5                   # the retry schedule is not published; attempts are counted
TODO_TYPES = ("Email", "Offer", "Project", "Meeting", "Online meeting")
DEMO = {"subdomain": "demo", "name": "Demo Sp. z o.o."}
USERS = (  # firstname, lastname, email, admin, api key, api secret
    ("Anna", "Admin", "anna@demo.test", True, "demo-key", "demo-secret"),
    ("Bartek", "Sprzedawca", "bartek@demo.test", False, "bartek-key", "bartek-secret"),
    ("Celina", "Handlowiec", "celina@demo.test", False, "celina-key", "celina-secret"),
)
PROCESSES = (("Sprzedaż B2B", ("Kontakt", "Oferta", "Negocjacje", "Umowa")),
             ("Odnowienia", ("Przypomnienie", "Rozmowa")))
NS = uuid.UUID("6f1d2c3e-9a4b-4c5d-8e7f-0a1b2c3d4e5f")

# The HMAC message layout is not published (FACTS §4 [U]): "concat" is `url + body`, the choice the
# connector makes; the others let a test prove the two sides must agree.
LAYOUTS: dict[str, Callable[[str, bytes], bytes]] = {
    "concat": lambda url, body: url.encode() + body,
    "newline": lambda url, body: url.encode() + b"\n" + body,
    "body": lambda url, body: body,
}


class ApiError(Exception):
    """A call answered HTTP 200 with `result` (not 200) and `error` in the envelope."""

    def __init__(self, result: int, error: Any):
        super().__init__(f"{result}: {error}")
        self.result = result
        self.error = error


def invalid(field: str, message: str) -> ApiError:
    return ApiError(420, {field: message})


def polish_amount(value: Decimal) -> str:
    """1234.5 -> "1 234,50", as the API writes decimals."""
    text = f"{value:,.2f}"
    return text.replace(",", " ").replace(".", ",")


def parse_amount(value: Any) -> Decimal:
    text = str(value).replace(" ", "").replace("\u00a0", "").replace(",", ".")
    return Decimal(text)


def webhook_signature(secret: str, url: str, body: bytes, layout: str = "concat") -> str:
    return hmac.new(secret.encode(), LAYOUTS[layout](url, body), hashlib.sha256).hexdigest()


class LivespaceCrm:
    def __init__(self, state: SandboxState, faults: Faults, options: dict | None = None):
        options = dict(options or {})
        self.state = state
        self.faults = faults
        self.clock: Callable[[], float] = options.get("clock", time.time)
        self.http = options.get("session") or requests.Session()
        self.base_url = (options.get("base_url") or options.get("permalink_base") or "").rstrip("/")
        self.signature_layout = options.get("signature_layout", "concat")
        if self.signature_layout not in LAYOUTS:
            raise ValueError(f"signature_layout: one of {sorted(LAYOUTS)}")
        faults.extend(result_550=0, result_540=0, result_520=0, lose_write_answers=0)
        if options.get("seed", True):
            self.seed()

    # -- basics -----------------------------------------------------------------------------------
    @property
    def data(self) -> dict:
        return self.state.data

    def now(self) -> str:
        return datetime.fromtimestamp(self.clock(), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")

    def rfc3339(self) -> str:
        return datetime.fromtimestamp(self.clock(), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def new_id(self, kind: str) -> str:
        return str(uuid.uuid5(NS, f"{kind}:{self.state.next_id(kind)}"))

    def table(self, name: str) -> dict:
        return self.state.table(name)

    def rows(self, name: str) -> list[dict]:
        with self.state.lock:
            return [copy.deepcopy(r) for r in self.table(name).values()]

    def seed(self) -> None:
        with self.state.change():
            if self.table("users"):
                return
            self.data["account"] = dict(DEMO)
            for first, last, email, admin, key, secret in USERS:
                uid = self.new_id("user")
                self.table("users")[uid] = {"id": uid, "firstname": first, "lastname": last,
                                            "name": f"{first} {last}", "email": email, "is_admin": admin,
                                            "is_active": True}
                self.table("api_keys")[key] = {"user_id": uid, "secret": secret}
            for order, name in enumerate(TODO_TYPES, 1):
                tid = self.new_id("todo_type")
                self.table("todo_types")[tid] = {"id": tid, "name": name, "order": order}
            for name, stages in PROCESSES:
                pid = self.new_id("process")
                self.table("processes")[pid] = {"id": pid, "name": name}
                for order, stage in enumerate(stages, 1):
                    sid = self.new_id("stage")
                    self.table("stages")[sid] = {"id": sid, "name": stage, "process_id": pid, "order": order}
            acme = self._insert_company({"name": "Acme Sp. z o.o."})
            globex = self._insert_company({"name": "Globex S.A."})
            self._insert_contact({"firstname": "Jan", "lastname": "Kowalski", "emails": ["jan@acme.test"],
                                  "company": {"id": acme["id"]}})
            self._insert_contact({"firstname": "Ewa", "lastname": "Nowak", "emails": ["ewa@globex.test"],
                                  "company": {"id": globex["id"]}})
            seller = self.user_by_email("bartek@demo.test")["id"]
            first = self.processes()[0]["id"]
            self._insert_deal({"name": "Wdrożenie CRM — Acme", "company": {"id": acme["id"]}, "process_id": first,
                               "owner_id": seller, "value": "12 500,00"})
            self._insert_deal({"name": "Licencje roczne — Globex", "company": {"id": globex["id"]},
                               "process_id": first, "owner_id": seller, "value": "4 800,50"})

    # -- users and API sessions -------------------------------------------------------------------
    def users(self) -> list[dict]:
        return sorted(self.rows("users"), key=lambda u: (not u["is_admin"], u["email"]))

    def user(self, user_id: Any) -> dict | None:
        with self.state.lock:
            row = self.table("users").get(str(user_id))
            return copy.deepcopy(row) if row else None

    def user_by_email(self, email: str) -> dict | None:
        return next((u for u in self.users() if u["email"] == email), None)

    def admin(self) -> dict:
        return next(u for u in self.users() if u["is_admin"])

    def key_of(self, user_id: str) -> tuple[str, str]:
        with self.state.lock:
            return next((k, v["secret"]) for k, v in self.table("api_keys").items() if v["user_id"] == user_id)

    def get_token(self, key: str) -> dict:
        with self.state.change():
            entry = self.table("api_keys").get(key or "")
            if not key:
                raise ApiError(561, "Missing _api_key")
            if entry is None:
                raise ApiError(562, "Invalid API key")
            now = self.clock()
            sessions = self.table("sessions")
            for sid in [s for s, v in sessions.items() if v["expires"] < now - 3600]:
                del sessions[sid]
            token, session_id = pysecrets.token_hex(16), pysecrets.token_hex(16)
            sessions[session_id] = {"token": token, "key": key, "expires": now + SESSION_SECONDS, "used": False}
            self.data["tokens_issued"] = self.data.get("tokens_issued", 0) + 1
            return {"token": token, "session_id": session_id}

    def authenticate(self, params: dict) -> dict:
        """The user a signed call acts as; the session is spent whatever the outcome."""
        if params.get("_api_auth") != "key":
            raise ApiError(560, "Invalid auth method (_api_auth=key)")
        key, sha, session_id = params.get("_api_key"), params.get("_api_sha"), params.get("_api_session")
        if not all(isinstance(v, str) and v for v in (key, sha, session_id)):
            raise ApiError(561, "Missing _api_key, _api_sha or _api_session")
        with self.state.change():
            session = self.table("sessions").get(session_id)
            entry = self.table("api_keys").get(key)
            if entry is None:
                raise ApiError(562, "Invalid API key")
            if session is None or session["used"] or session["key"] != key or session["expires"] < self.clock():
                raise ApiError(561, "Invalid or used API session")
            session["used"] = True
            wanted = hashlib.sha1((key + session["token"] + entry["secret"]).encode()).hexdigest()
            if not hmac.compare_digest(wanted, sha.lower()):
                raise ApiError(563, "Authorization failed")
            user = self.table("users").get(entry["user_id"])
            if user is None or not user["is_active"]:
                raise ApiError(563, "Authorization failed: user inactive")
            return copy.deepcopy(user)

    # -- contacts and companies -------------------------------------------------------------------
    def _insert_company(self, values: dict) -> dict:
        now = self.now()
        cid = self.new_id("company")
        row = {"id": cid, "name": values["name"], "nip": values.get("nip") or "", "created": now, "modified": now}
        self.table("companies")[cid] = row
        return row

    def _insert_contact(self, values: dict) -> dict:
        now = self.now()
        cid = self.new_id("contact")
        company = (values.get("company") or {}).get("id")
        row = {"id": cid, "firstname": values.get("firstname") or "", "lastname": values.get("lastname") or "",
               "name": f"{values.get('firstname') or ''} {values.get('lastname') or ''}".strip(),
               "emails": list(values.get("emails") or []), "phones": list(values.get("phones") or []),
               "company_id": company, "created": now, "modified": now}
        self.table("contacts")[cid] = row
        return row

    def add_company(self, values: dict) -> dict:
        if not isinstance(values.get("name"), str) or not values["name"].strip():
            raise invalid("company.name", "Name is required")
        with self.state.change():
            return copy.deepcopy(self._insert_company(values))

    def add_contact(self, values: dict) -> dict:
        if not (values.get("firstname") or values.get("lastname")):
            raise invalid("contact.firstname", "A first or last name is required")
        emails = values.get("emails")
        if emails is not None and not (isinstance(emails, list) and all(isinstance(e, str) for e in emails)):
            raise invalid("contact.emails", "A list of addresses")
        company = (values.get("company") or {}).get("id") if isinstance(values.get("company"), dict) else None
        if company and company not in self.table("companies"):
            raise invalid("contact.company", "No such company")
        with self.state.change():
            return copy.deepcopy(self._insert_contact(values))

    def contact(self, kind: str, object_id: str) -> dict | None:
        table = "companies" if kind == "company" else "contacts"
        with self.state.lock:
            row = self.table(table).get(str(object_id))
            return copy.deepcopy(row) if row else None

    def contacts(self, kind: str) -> list[dict]:
        return sorted(self.rows("companies" if kind == "company" else "contacts"), key=lambda r: r["created"])

    # -- processes, stages, deals -----------------------------------------------------------------
    def processes(self) -> list[dict]:
        out = []
        for process in sorted(self.rows("processes"), key=lambda p: p["name"], reverse=True):
            stages = sorted((s for s in self.rows("stages") if s["process_id"] == process["id"]),
                            key=lambda s: s["order"])
            out.append({**process, "stages": [{k: s[k] for k in ("id", "name", "order")} for s in stages]})
        return out

    def stage(self, stage_id: Any) -> dict | None:
        with self.state.lock:
            row = self.table("stages").get(str(stage_id))
            return copy.deepcopy(row) if row else None

    def _names(self, deal: dict) -> None:
        process = self.table("processes").get(deal["process_id"]) or {}
        stage = self.table("stages").get(deal["stage_id"] or "") or {}
        deal["process_name"] = process.get("name")
        deal["stage_name"] = stage.get("name")
        stages = sorted((s for s in self.table("stages").values() if s["process_id"] == deal["process_id"]),
                        key=lambda s: s["order"])
        deal["stages_all"] = [{"id": s["id"], "name": s["name"]} for s in stages]

    def _insert_deal(self, values: dict) -> dict:
        now = self.now()
        did = self.new_id("deal")
        process = values["process_id"]
        first = min((s for s in self.table("stages").values() if s["process_id"] == process),
                    key=lambda s: s["order"])
        company = (values.get("company") or {}).get("id")
        contact = (values.get("contact") or {}).get("id")
        deal = {"id": did, "name": values["name"], "status": "open", "process_id": process,
                "stage_id": first["id"], "substages": [first["id"]], "status_change_date": None,
                "won_reason_name": None, "won_reason_note": None, "lost_reason_name": None, "lost_reason_note": None,
                "owner_id": values.get("owner_id"), "company_id": company, "contact_id": contact,
                "value": values.get("value") or "0,00", "currency": values.get("currency") or "PLN",
                "date_end": values.get("date_end"), "created": now, "modified": now}
        self._names(deal)
        self.table("deals")[did] = deal
        return deal

    def deals(self) -> list[dict]:
        return sorted(self.rows("deals"), key=lambda d: (d["modified"], d["id"]), reverse=True)

    def deal(self, deal_id: Any) -> dict | None:
        with self.state.lock:
            row = self.table("deals").get(str(deal_id))
            return copy.deepcopy(row) if row else None

    def add_deal(self, values: dict) -> dict:
        if not isinstance(values.get("name"), str) or not values["name"].strip():
            raise invalid("deal.name", "Name is required")
        company = values.get("company") if isinstance(values.get("company"), dict) else None
        contact = values.get("contact") if isinstance(values.get("contact"), dict) else None
        if not company and not contact:
            raise invalid("deal.company", "A company or a contact is required")
        if company and company.get("id") not in self.table("companies"):
            raise invalid("deal.company", "No such company")
        if contact and contact.get("id") not in self.table("contacts"):
            raise invalid("deal.contact", "No such contact")
        process = values.get("process_id") or self.processes()[0]["id"]
        if process not in self.table("processes"):
            raise invalid("deal.process_id", "No such sales process")
        owner = values.get("owner_id")
        if owner is not None and owner not in self.table("users"):
            raise invalid("deal.owner_id", "No such user")
        if values.get("value") is not None:
            try:
                values = {**values, "value": polish_amount(parse_amount(values["value"]))}
            except (InvalidOperation, ValueError):
                raise invalid("deal.value", "A decimal number") from None
        with self.state.change():
            deal = self._insert_deal({**values, "process_id": process})
            self._emit("deal.created", deal)
            return copy.deepcopy(deal)

    def edit_deal(self, values: dict) -> dict:
        """Name, owner and status (open / won / lost); other keys are echoed by the API and dropped."""
        with self.state.change():
            deal = self.table("deals").get(str(values.get("id") or ""))
            if deal is None:
                raise ApiError(550, "Deal not found")
            status = values.get("status")
            if status is not None and status not in ("open", "won", "lost"):
                raise invalid("deal.status", "One of open, won, lost")
            if "name" in values and (not isinstance(values["name"], str) or not values["name"].strip()):
                raise invalid("deal.name", "Name is required")
            owner = values.get("owner_id")
            if owner is not None and owner not in self.table("users"):
                raise invalid("deal.owner_id", "No such user")
            changed = False
            for key in ("name", "owner_id"):
                if key in values and values[key] != deal[key]:
                    deal[key], changed = values[key], True
            if changed:
                deal["modified"] = self.now()
                self._emit("deal.updated", deal)
            if status is not None and status != deal["status"]:
                self._set_status(deal, status, values.get("reason"))
            return copy.deepcopy(deal)

    def _set_status(self, deal: dict, status: str, reason: str | None) -> None:
        deal["status"] = status
        deal["status_change_date"] = deal["modified"] = self.now()
        deal["won_reason_name"] = reason if status == "won" else None
        deal["lost_reason_name"] = reason if status == "lost" else None
        self._emit("deal.status_changed", deal)

    def set_status(self, deal_id: str, status: str, reason: str | None = None) -> dict:
        """The sandbox user marks a deal won, lost or open again."""
        return self.edit_deal({"id": deal_id, "status": status, "reason": reason})

    def move_stage(self, deal_id: str, stage_id: str) -> dict:
        """The sandbox user checks the steps up to `stage_id` (the deal's stage is its furthest
        checked step; there is no API call that sets it)."""
        with self.state.change():
            deal = self.table("deals").get(str(deal_id))
            stage = self.table("stages").get(str(stage_id))
            if deal is None:
                raise ApiError(550, "Deal not found")
            if stage is None or stage["process_id"] != deal["process_id"]:
                raise invalid("deal.stage_id", "A step of the deal's own sales process")
            if stage["id"] != deal["stage_id"]:
                steps = sorted((s for s in self.table("stages").values() if s["process_id"] == deal["process_id"]),
                               key=lambda s: s["order"])
                deal["substages"] = [s["id"] for s in steps if s["order"] <= stage["order"]]
                deal["stage_id"] = stage["id"]
                deal["modified"] = self.now()
                self._names(deal)
                self._emit("deal.stage_changed", deal)
            return copy.deepcopy(deal)

    # -- todos ------------------------------------------------------------------------------------
    def todo_types(self) -> list[dict]:
        return sorted(self.rows("todo_types"), key=lambda t: t["order"])

    def todos(self) -> list[dict]:
        return sorted(self.rows("todos"), key=lambda t: (t["created"], t["id"]))

    def todo(self, todo_id: Any) -> dict | None:
        with self.state.lock:
            row = self.table("todos").get(str(todo_id))
            return copy.deepcopy(row) if row else None

    def _object(self, link: Any, n: int) -> dict:
        if not isinstance(link, dict):
            raise invalid(f"todo.objects.{n}", "An object with object_type and object_id")
        kind, oid = link.get("object_type"), str(link.get("object_id") or "")
        table = {"deal": "deals", "contact": "contacts", "company": "companies"}.get(kind)
        if table is None:
            raise invalid(f"todo.objects.{n}.object_type", "deal, contact or company")
        row = self.table(table).get(oid)
        if row is None:
            raise invalid(f"todo.objects.{n}.object_id", f"No such {kind}")
        return {"object_type": kind, "object_id": oid, "object_name": row.get("name") or ""}

    @staticmethod
    def _date(value: Any) -> tuple[str, bool]:
        if not isinstance(value, str):
            raise invalid("todo.date", "YYYY-MM-DD or YYYY-MM-DD HH:MM:SS")
        for fmt, all_day in (("%Y-%m-%d", True), ("%Y-%m-%d %H:%M:%S", False)):
            try:
                datetime.strptime(value, fmt)
                return value, all_day
            except ValueError:
                continue
        raise invalid("todo.date", "YYYY-MM-DD or YYYY-MM-DD HH:MM:SS")

    def add_todo(self, values: dict, author: dict | None = None) -> dict:
        """Only title, date, description, type, responsible, privacy and linked objects are kept;
        `date_from` / `date_to` are accepted and dropped, as observed."""
        title = values.get("title")
        if not isinstance(title, str) or not title.strip():
            raise invalid("todo.title", "Title is required")
        if len(title) > 255:
            raise invalid("todo.title", "At most 255 characters")
        with self.state.change():
            date, all_day = self._date(values["date"]) if values.get("date") else (self.now()[:10], True)
            type_id = values.get("type_id")
            kind = self.table("todo_types").get(str(type_id)) if type_id else None
            if type_id and kind is None:
                raise invalid("todo.type_id", "No such task type")
            owner = values.get("owner_id") or (author or {}).get("id")
            if owner and owner not in self.table("users"):
                raise invalid("todo.owner_id", "No such user")
            objects = values.get("objects") or []
            if not isinstance(objects, list):
                raise invalid("todo.objects", "A list of linked objects")
            now = self.now()
            tid = self.new_id("todo")
            todo = {"id": tid, "title": title, "description": str(values.get("description") or ""),
                    "type_id": kind["id"] if kind else None, "type_name": kind["name"] if kind else None,
                    "status_id": None, "status_name": None, "is_completed": "0",
                    "is_private": "1" if str(values.get("is_private") or "0") in ("1", "true", "True") else "0",
                    "priority": "0", "date_from": date, "date_to": date, "is_all_day": "1" if all_day else "0",
                    "owner_id": owner, "objects": [self._object(o, n) for n, o in enumerate(objects)],
                    "completed_by_id": None, "completed_date": None, "created": now, "modified": now}
            self.table("todos")[tid] = todo
            self._emit("todo.created", todo)
            return copy.deepcopy(todo)

    def edit_todo(self, values: dict, author: dict | None = None) -> dict:
        with self.state.change():
            todo = self.table("todos").get(str(values.get("id") or ""))
            if todo is None:
                raise ApiError(550, "Todo not found")
            changed = False
            if "title" in values:
                if not isinstance(values["title"], str) or not values["title"].strip():
                    raise invalid("todo.title", "Title is required")
                changed |= todo["title"] != values["title"]
                todo["title"] = values["title"]
            if "description" in values:
                changed |= todo["description"] != str(values["description"] or "")
                todo["description"] = str(values["description"] or "")
            if "date" in values:
                date, all_day = self._date(values["date"])
                changed |= todo["date_from"] != date
                todo["date_from"] = todo["date_to"] = date
                todo["is_all_day"] = "1" if all_day else "0"
            completed = values.get("is_completed")
            if completed is not None:
                if str(completed) not in ("0", "1"):
                    raise invalid("todo.is_completed", '"1" or "0"')
                if str(completed) != todo["is_completed"]:
                    todo["is_completed"] = str(completed)
                    todo["completed_by_id"] = (author or {}).get("id") if str(completed) == "1" else None
                    todo["completed_date"] = self.now() if str(completed) == "1" else None
                    todo["modified"] = self.now()
                    self._emit("todo.completed" if str(completed) == "1" else "todo.updated", todo)
            if changed:
                todo["modified"] = self.now()
                self._emit("todo.updated", todo)
            return copy.deepcopy(todo)

    def complete_todo(self, todo_id: str, user_id: str) -> dict:
        """The sandbox user ticks a task off."""
        return self.edit_todo({"id": todo_id, "is_completed": "1"}, self.user(user_id))

    # -- webhooks ---------------------------------------------------------------------------------
    def subscriptions(self) -> list[dict]:
        return sorted(self.rows("subscriptions"), key=lambda s: s["created"])

    def subscribe(self, url: str, secret: str, triggers: list[str] | None = None, name: str = "Relay Hub") -> dict:
        """What an administrator does in Account settings -> Webhooks: the subscription is saved,
        then activated by the handshake (an empty POST answered 200/204 within 3 s)."""
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise invalid("url", "An http(s) address")
        if not isinstance(secret, str) or not secret:
            raise invalid("secret", "A secret is required")
        with self.state.change():
            sid = self.new_id("subscription")
            self.table("subscriptions")[sid] = {"id": sid, "name": name, "url": url, "secret": secret,
                                                "triggers": list(triggers or ["*"]), "active": False,
                                                "handshake": None, "last_triggered": None, "created": self.now()}
        self.activate(sid)
        return self.subscription(sid)

    def subscription(self, sub_id: str) -> dict | None:
        with self.state.lock:
            row = self.table("subscriptions").get(sub_id)
            return copy.deepcopy(row) if row else None

    def activate(self, sub_id: str) -> bool:
        sub = self.subscription(sub_id)
        if sub is None:
            return False
        try:
            answer = self.http.post(sub["url"], data=b"", timeout=HANDSHAKE_TIMEOUT)
            status = answer.status_code
        except requests.RequestException:
            status = 0
        with self.state.change():
            row = self.table("subscriptions")[sub_id]
            row["active"] = status in (200, 204)
            row["handshake"] = status
        return status in (200, 204)

    def deactivate(self, sub_id: str) -> None:
        with self.state.change():
            self.table("subscriptions")[sub_id]["active"] = False

    def delete_subscription(self, sub_id: str) -> bool:
        with self.state.change():
            return self.table("subscriptions").pop(sub_id, None) is not None

    def _emit(self, trigger: str, obj: dict) -> None:
        """Queue one webhook per active subscription listening to `trigger` (under the lock)."""
        for sub in self.table("subscriptions").values():
            if not sub["active"] or ("*" not in sub["triggers"] and trigger not in sub["triggers"]):
                continue
            did = self.new_id("delivery")
            self.table("deliveries")[did] = {
                "id": did, "subscription_id": sub["id"], "name": trigger, "webhook_id": str(uuid.uuid5(NS, did)),
                "timestamp": self.rfc3339(), "data": copy.deepcopy(obj), "attempts": 0, "status": "pending",
                "last_status": None, "seq": self.state.next_id("delivery_seq")}

    def deliveries(self, status: str | None = None) -> list[dict]:
        rows = sorted(self.rows("deliveries"), key=lambda d: d["seq"])
        return [d for d in rows if status is None or d["status"] == status]

    def body_of(self, delivery: dict, attempt: int) -> bytes:
        return json.dumps({"version": "1.0", "name": delivery["name"], "id": delivery["webhook_id"],
                           "timestamp": delivery["timestamp"], "webhook_delivery_attempt": attempt,
                           "data": delivery["data"]}, ensure_ascii=False).encode()

    def signed(self, delivery: dict, attempt: int) -> tuple[str, dict, bytes]:
        """(url, headers, body) of one attempt, signed as the subscription's secret signs it."""
        sub = self.subscription(delivery["subscription_id"]) or {}
        body = self.body_of(delivery, attempt)
        url = sub.get("url", "")
        headers = {"Content-Type": "application/json", "User-Agent": "Livespace-Webhooks/1.0",
                   "X-Livespace-Signature": webhook_signature(sub.get("secret", ""), url, body, self.signature_layout)}
        return url, headers, body

    def send(self, delivery_id: str) -> int:
        """One attempt of a delivery (the attempt counter goes up); the HTTP status, 0 for none."""
        with self.state.change():
            delivery = self.table("deliveries")[delivery_id]
            delivery["attempts"] += 1
            attempt = delivery["attempts"]
            snapshot = copy.deepcopy(delivery)
        url, headers, body = self.signed(snapshot, attempt)
        try:
            status = self.http.post(url, data=body, headers=headers, timeout=DELIVERY_TIMEOUT).status_code
        except requests.RequestException:
            status = 0
        with self.state.change():
            delivery = self.table("deliveries")[delivery_id]
            delivery["last_status"] = status
            if status in (200, 204):
                delivery["status"] = "delivered"
                sub = self.table("subscriptions").get(delivery["subscription_id"])
                if sub is not None:
                    sub["last_triggered"] = self.now()
            elif delivery["attempts"] >= MAX_ATTEMPTS:
                delivery["status"] = "failed"
        return status

    def deliver_pending(self) -> list[int]:
        """Send every pending delivery once, oldest first (a failed one stays pending for its next
        attempt, up to MAX_ATTEMPTS); the statuses answered, in order. Deterministic for tests."""
        if self.faults.settings.webhooks_paused:
            return []
        out = []
        for delivery in self.deliveries("pending"):
            out.append(self.send(delivery["id"]))
            if self.faults.roll(self.faults.settings.webhook_duplicate_rate):
                out.append(self.send(delivery["id"]))   # sent twice: same id, next attempt number
        return out
