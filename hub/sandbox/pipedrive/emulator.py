"""The Pipedrive emulator object: company data, the changes a CRM user makes, and their webhooks.

API routes, the sandbox UI, tests and the hub's CLI all go through these methods, so every change
fires the same v2 webhook events whoever made it (`change_source` "api" for API calls, "app" for
the UI and Python callers, as Pipedrive distinguishes)."""
from __future__ import annotations

import base64
import copy
import mimetypes
import time
import uuid
from typing import Any

from ..common import Faults, OAuthClient, SandboxState, TokenAuthority
from . import models as m
from .activities import ActivitiesMixin
from .installs import Installs
from .util import BadRequest, ms_time
from .webhooks import BAN_SECONDS, BAN_THRESHOLD, DELETE_AFTER_SECONDS, Dispatcher

DEFAULT_SCOPES = ["base", "deals:full", "contacts:full", "leads:read", "users:read", "activities:full", "admin"]
TABLES = ("pd_users", "pd_pipelines", "pd_stages", "pd_orgs", "pd_persons", "pd_deals", "pd_leads",
          "pd_notes", "pd_files", "pd_webhooks", "pd_installs", "pd_activities")
WEBHOOK_LIMIT = 40


class NotFound(BadRequest):
    def __init__(self, message: str, info: str = "Object was not found."):
        super().__init__(message, 404, info)


class PipedriveSandbox(ActivitiesMixin):
    def __init__(self, state: SandboxState, faults: Faults, options: dict[str, Any]):
        self.state = state
        self.faults = faults
        self.options = options
        self.clock = options.get("clock", time.time)
        self.tokens = TokenAuthority(state, faults, prefix="pd", access_ttl=int(options.get("access_ttl", 3600)),
                                     clock=self.clock)
        self.client_options: dict[str, dict[str, Any]] = {}
        clients = options.get("clients") or [{"client_id": "relay-hub-sandbox", "client_secret": "sandbox-secret",
                                              "redirect_uris": []}]
        for c in clients:
            self.tokens.register_client(OAuthClient(c["client_id"], c["client_secret"], list(c.get("redirect_uris") or [])))
            self.client_options[c["client_id"]] = {
                "name": c.get("name", c["client_id"]), "scopes": list(c.get("scopes") or DEFAULT_SCOPES),
                "callback_url": c.get("callback_url"),
            }
        self.installs = Installs(self)
        self.dispatcher = Dispatcher(self, time_scale=float(options.get("time_scale", 1.0)),
                                     timeout=float(options.get("delivery_timeout", 10.0)))
        with state.change() as data:
            for name in TABLES:
                data.setdefault(name, {})
            data.setdefault("pd_fields", {"deal": [], "person": []})
            data.setdefault("pd_outbox", [])
        if options.get("seed", True) and not self.state.data.get("pd_company"):
            from .seed import seed
            seed(self)

    # -- plumbing ---------------------------------------------------------------------------------
    @property
    def deliveries(self) -> list[dict]:
        return self.dispatcher.deliveries

    @property
    def callbacks(self) -> list[dict]:
        return self.dispatcher.callbacks

    def flush(self, timeout: float = 5.0) -> bool:
        return self.dispatcher.flush(timeout)

    def now(self) -> float:
        return round(self.clock(), 3)

    @property
    def data(self) -> dict:
        return self.state.data

    def company(self) -> dict:
        return self.data["pd_company"]

    def admin_id(self) -> int:
        return self.company()["admin_id"]

    def user(self, user_id: int) -> dict:
        u = self.data["pd_users"].get(str(user_id))
        if u is None:
            raise NotFound("User not found")
        return u

    def users(self) -> list[dict]:
        return sorted(self.data["pd_users"].values(), key=lambda u: u["id"])

    def fields(self, entity: str) -> list[dict]:
        return self.data["pd_fields"][entity]

    def _get(self, table: str, key: Any, what: str, *, deleted_ok: bool = False) -> dict:
        rec = self.data[table].get(str(key))
        if rec is None or (rec.get("is_deleted") and not deleted_ok):
            raise NotFound(f"{what} not found")
        return rec

    def _actor(self, actor: int | None) -> int:
        return int(actor) if actor is not None else self.admin_id()

    def _ref(self, table: str, key: Any, what: str) -> int | None:
        if key in (None, ""):
            return None
        if isinstance(key, bool) or not isinstance(key, int):
            raise BadRequest(f"{what} must be an integer")
        rec = self.data[table].get(str(key))
        if rec is None or rec.get("is_deleted"):
            raise BadRequest(f"{what} with id {key} does not exist")
        return key

    # -- organizations ----------------------------------------------------------------------------
    def create_org(self, name: str, *, owner_id: int | None = None, address: str | None = None,
                   website: str | None = None, actor: int | None = None) -> dict:
        if not name or not str(name).strip():
            raise BadRequest("Organization name is required")
        with self.state.change() as data:
            now = self.now()
            org = {"id": self.state.next_id("org", 300), "name": str(name).strip(),
                   "owner_id": owner_id or self._actor(actor), "add_time": now, "update_time": now,
                   "address": {"value": address} if address else None, "website": website, "is_deleted": False}
            data["pd_orgs"][str(org["id"])] = org
            return copy.deepcopy(org)

    # -- persons ----------------------------------------------------------------------------------
    @staticmethod
    def _contacts(items: Any, kind: str) -> list[dict]:
        """Normalise emails/phones: label defaults to work, at most one primary, first one otherwise."""
        if items is None:
            return []
        if not isinstance(items, list):
            raise BadRequest(f"{kind} must be an array")
        out = []
        for item in items:
            if isinstance(item, str):
                item = {"value": item}
            if not isinstance(item, dict) or not isinstance(item.get("value"), str) or not item["value"].strip():
                raise BadRequest(f"{kind}: every entry needs a string value")
            primary = item.get("primary", False)
            if not isinstance(primary, bool):
                raise BadRequest(f"{kind}: primary must be a boolean")
            out.append({"value": item["value"].strip(), "primary": primary, "label": item.get("label") or "work"})
        primaries = sum(1 for e in out if e["primary"])
        if primaries > 1:
            raise BadRequest(f"{kind}: only one entry can be primary")
        if out and primaries == 0:
            out[0]["primary"] = True
        return out

    def _check_custom(self, entity: str, values: Any) -> dict:
        if values is None:
            return {}
        if not isinstance(values, dict):
            raise BadRequest("custom_fields must be an object")
        fields = {f["key"]: f for f in self.fields(entity) if f["is_custom_field"]}
        for key, value in values.items():
            f = fields.get(key)
            if f is None:
                raise BadRequest(f"Unknown custom field: {key}")
            if value is None:
                continue
            kind, bad = f["field_type"], False
            option_ids = {o["id"] for o in f.get("options") or []}
            if kind in ("varchar", "text", "varchar_auto", "phone", "date"):
                bad = not isinstance(value, str)
            elif kind == "double":
                bad = isinstance(value, bool) or not isinstance(value, (int, float))
            elif kind == "monetary":
                bad = (not isinstance(value, dict) or isinstance(value.get("value"), bool)
                       or not isinstance(value.get("value"), (int, float)) or not isinstance(value.get("currency"), str))
            elif kind == "enum":
                bad = value not in option_ids or isinstance(value, bool)
            elif kind == "set":
                bad = not isinstance(value, list) or not value or any(v not in option_ids for v in value)
            elif kind in ("people", "org", "user"):
                bad = isinstance(value, bool) or not isinstance(value, int)
            if bad:
                raise BadRequest(f"Invalid value for custom field {f['name']} ({kind})")
        return dict(values)

    def create_person(self, name: str | None = None, *, first_name: str | None = None, last_name: str | None = None,
                      emails: Any = None, phones: Any = None, org_id: int | None = None, owner_id: int | None = None,
                      custom_fields: dict | None = None, visible_to: int = 3, actor: int | None = None,
                      source: str = "app") -> dict:
        if not name and not (first_name and last_name):
            raise BadRequest("Person name is required", info="Give name, or first_name and last_name.")
        if name is not None and not isinstance(name, str):
            raise BadRequest("name must be a string")
        with self.state.change() as data:
            now = self.now()
            full = (name or f"{first_name} {last_name}").strip()
            parts = full.split(" ", 1)
            p = {"id": self.state.next_id("person", 500), "name": full,
                 "first_name": first_name or parts[0], "last_name": last_name or (parts[1] if len(parts) > 1 else None),
                 "owner_id": self._ref("pd_users", owner_id, "Owner") or self._actor(actor),
                 "org_id": self._ref("pd_orgs", org_id, "Organization"), "add_time": now, "update_time": now,
                 "emails": self._contacts(emails, "emails"), "phones": self._contacts(phones, "phones"),
                 "is_deleted": False, "visible_to": visible_to, "label_ids": [],
                 "custom_fields": self._check_custom("person", custom_fields)}
            data["pd_persons"][str(p["id"])] = p
            event = self._event("person", "create", p["id"], m.person_hook(p, self.fields("person")), None,
                                actor, source)
        self._publish(event)
        return copy.deepcopy(p)

    def update_person(self, person_id: int, changes: dict, *, actor: int | None = None, source: str = "app") -> dict:
        allowed = {"name", "first_name", "last_name", "owner_id", "org_id", "emails", "phones", "visible_to",
                   "label_ids", "custom_fields"}
        unknown = set(changes) - allowed
        if unknown:
            raise BadRequest(f"Unknown field(s): {', '.join(sorted(unknown))}")
        with self.state.change():
            p = self._get("pd_persons", person_id, "Person")
            fields = self.fields("person")
            before = m.person_hook(p, fields)
            new = copy.deepcopy(p)
            if "name" in changes:
                if not isinstance(changes["name"], str) or not changes["name"].strip():
                    raise BadRequest("name must be a non-empty string")
                new["name"] = changes["name"].strip()
                parts = new["name"].split(" ", 1)
                new["first_name"], new["last_name"] = parts[0], parts[1] if len(parts) > 1 else None
            for key in ("first_name", "last_name"):
                if key in changes:
                    new[key] = changes[key]
                    new["name"] = " ".join(x for x in (new["first_name"], new["last_name"]) if x)
            if "owner_id" in changes:
                new["owner_id"] = self._ref("pd_users", changes["owner_id"], "Owner") or p["owner_id"]
            if "org_id" in changes:
                new["org_id"] = self._ref("pd_orgs", changes["org_id"], "Organization")
            for kind in ("emails", "phones"):
                if kind in changes:
                    new[kind] = self._contacts(changes[kind], kind)
            if "visible_to" in changes:
                new["visible_to"] = changes["visible_to"]
            if "label_ids" in changes:
                new["label_ids"] = list(changes["label_ids"] or [])
            if "custom_fields" in changes:
                new["custom_fields"] = {**p.get("custom_fields", {}), **self._check_custom("person", changes["custom_fields"])}
            new["update_time"] = self.now()
            after = m.person_hook(new, fields)
            previous = self._diff(before, after)
            if set(previous) <= {"update_time"}:
                return copy.deepcopy(p)
            previous.setdefault("update_time", before["update_time"])   # as in examples/ (FACTS §18.5)
            p.clear()
            p.update(new)
            event = self._event("person", "change", p["id"], after, previous, actor, source)
        self._publish(event)
        return copy.deepcopy(p)

    def delete_person(self, person_id: int, *, actor: int | None = None, source: str = "app") -> None:
        with self.state.change():
            p = self._get("pd_persons", person_id, "Person")
            last = m.person_hook(p, self.fields("person"))
            p["is_deleted"] = True
            p["update_time"] = self.now()
            last["update_time"] = m.v2_time(p["update_time"])
            event = self._event("person", "delete", p["id"], None, last, actor, source)
        self._publish(event)

    # -- deals ------------------------------------------------------------------------------------
    def _stage(self, stage_id: Any) -> dict:
        if isinstance(stage_id, bool) or not isinstance(stage_id, int):
            raise BadRequest("stage_id must be an integer")
        stage = self.data["pd_stages"].get(str(stage_id))
        if stage is None:
            raise BadRequest(f"Stage with id {stage_id} does not exist")
        return stage

    def _first_stage(self, pipeline_id: Any) -> dict:
        if isinstance(pipeline_id, bool) or not isinstance(pipeline_id, int):
            raise BadRequest("pipeline_id must be an integer")
        if str(pipeline_id) not in self.data["pd_pipelines"]:
            raise BadRequest(f"Pipeline with id {pipeline_id} does not exist")
        stages = sorted((s for s in self.data["pd_stages"].values() if s["pipeline_id"] == pipeline_id),
                        key=lambda s: s["order_nr"])
        if not stages:
            raise BadRequest("Pipeline has no stages")
        return stages[0]

    def create_deal(self, title: str, *, stage_id: int | None = None, pipeline_id: int | None = None,
                    value: float = 0, currency: str = "EUR", person_id: int | None = None,
                    org_id: int | None = None, owner_id: int | None = None, custom_fields: dict | None = None,
                    expected_close_date: str | None = None, label_ids: list | None = None,
                    actor: int | None = None, source: str = "app", origin: str | None = None) -> dict:
        if not isinstance(title, str) or not title.strip():
            raise BadRequest("Deal title is required")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadRequest("value must be a number")
        with self.state.change() as data:
            stage = self._stage(stage_id) if stage_id is not None else self._first_stage(
                pipeline_id if pipeline_id is not None else min(int(k) for k in data["pd_pipelines"]))
            now = self.now()
            actor_id = self._actor(actor)
            d = {"id": self.state.next_id("deal", 100), "title": title.strip(),
                 "owner_id": self._ref("pd_users", owner_id, "Owner") or actor_id, "creator_user_id": actor_id,
                 "person_id": self._ref("pd_persons", person_id, "Person"),
                 "org_id": self._ref("pd_orgs", org_id, "Organization"),
                 "pipeline_id": stage["pipeline_id"], "stage_id": stage["id"], "value": value, "currency": currency,
                 "add_time": now, "update_time": now, "stage_change_time": None, "is_deleted": False,
                 "is_archived": False, "status": "open", "probability": None, "lost_reason": None, "visible_to": 3,
                 "close_time": None, "won_time": None, "lost_time": None, "first_won_time": None,
                 "expected_close_date": expected_close_date, "label_ids": list(label_ids or []),
                 "origin": origin or ("API" if source == "api" else "ManuallyCreated"), "origin_id": None,
                 "channel": None, "channel_id": None, "source_lead_id": None,
                 "custom_fields": {k: v for k, v in self._check_custom("deal", custom_fields).items() if v is not None}}
            data["pd_deals"][str(d["id"])] = d
            event = self._event("deal", "create", d["id"], m.deal_hook(d, self.fields("deal")), None, actor, source)
        self._publish(event)
        return copy.deepcopy(d)

    DEAL_WRITABLE = {"title", "owner_id", "person_id", "org_id", "pipeline_id", "stage_id", "value", "currency",
                     "status", "probability", "lost_reason", "visible_to", "expected_close_date", "label_ids",
                     "custom_fields", "won_time", "lost_time", "close_time", "is_deleted", "is_archived",
                     "archive_time"}

    def update_deal(self, deal_id: int, changes: dict, *, actor: int | None = None, source: str = "app") -> dict:
        """Apply a v2-style partial update; stage/status side effects follow Pipedrive (FACTS §9)."""
        unknown = set(changes) - self.DEAL_WRITABLE
        if unknown:
            raise BadRequest(f"Unknown field(s): {', '.join(sorted(unknown))}")
        with self.state.change():
            d = self._get("pd_deals", deal_id, "Deal")
            fields = self.fields("deal")
            before = m.deal_hook(d, fields)
            new = copy.deepcopy(d)
            now = self.now()
            if "title" in changes:
                if not isinstance(changes["title"], str) or not changes["title"].strip():
                    raise BadRequest("title must be a non-empty string")
                new["title"] = changes["title"].strip()
            if "value" in changes:
                if isinstance(changes["value"], bool) or not isinstance(changes["value"], (int, float)):
                    raise BadRequest("value must be a number")
                new["value"] = changes["value"]
            if "currency" in changes:
                if not isinstance(changes["currency"], str) or len(changes["currency"]) != 3:
                    raise BadRequest("currency must be a 3-letter code")
                new["currency"] = changes["currency"].upper()
            if "owner_id" in changes:
                new["owner_id"] = self._ref("pd_users", changes["owner_id"], "Owner") or d["owner_id"]
            if "person_id" in changes:
                new["person_id"] = self._ref("pd_persons", changes["person_id"], "Person")
            if "org_id" in changes:
                new["org_id"] = self._ref("pd_orgs", changes["org_id"], "Organization")
            for key in ("probability", "expected_close_date", "visible_to"):
                if key in changes:
                    new[key] = changes[key]
            if "label_ids" in changes:
                new["label_ids"] = list(changes["label_ids"] or [])
            if "stage_id" in changes:
                stage = self._stage(changes["stage_id"])
                if "pipeline_id" in changes and changes["pipeline_id"] != stage["pipeline_id"]:
                    raise BadRequest("stage_id does not belong to pipeline_id")
                new["stage_id"], new["pipeline_id"] = stage["id"], stage["pipeline_id"]
            elif "pipeline_id" in changes and changes["pipeline_id"] != d["pipeline_id"]:
                stage = self._first_stage(changes["pipeline_id"])
                new["stage_id"], new["pipeline_id"] = stage["id"], stage["pipeline_id"]
            if new["stage_id"] != d["stage_id"]:
                new["stage_change_time"] = now
            if "status" in changes:
                status = changes["status"]
                if status not in ("open", "won", "lost"):
                    raise BadRequest("status must be one of open, won, lost")
                if status != d["status"]:
                    new["status"] = status
                    new["won_time"] = now if status == "won" else None
                    new["lost_time"] = now if status == "lost" else None
                    new["close_time"] = now if status in ("won", "lost") else None
                    if status == "won" and not d.get("first_won_time"):
                        new["first_won_time"] = now
                    if status != "lost":
                        new["lost_reason"] = None
            if "lost_reason" in changes:
                if new["status"] != "lost" and changes["lost_reason"]:
                    raise BadRequest("lost_reason can only be set on a lost deal")
                new["lost_reason"] = changes["lost_reason"]
            if "custom_fields" in changes:
                merged = {**d.get("custom_fields", {}), **self._check_custom("deal", changes["custom_fields"])}
                new["custom_fields"] = {k: v for k, v in merged.items() if v is not None}
            if changes.get("is_deleted") is True:
                new["is_deleted"] = True
            new["update_time"] = now
            after = m.deal_hook(new, fields)
            previous = self._diff(before, after)
            if set(previous) <= {"update_time"} and not new["is_deleted"]:
                return copy.deepcopy(d)
            previous.setdefault("update_time", before["update_time"])   # as in examples/ (FACTS §18.5)
            d.clear()
            d.update(new)
            if d["is_deleted"]:
                event = self._event("deal", "delete", d["id"], None, after, actor, source)
            else:
                event = self._event("deal", "change", d["id"], after, previous, actor, source)
        self._publish(event)
        return copy.deepcopy(d)

    def move_stage(self, deal_id: int, stage_id: int, **kw) -> dict:
        return self.update_deal(deal_id, {"stage_id": stage_id}, **kw)

    def mark_won(self, deal_id: int, **kw) -> dict:
        return self.update_deal(deal_id, {"status": "won"}, **kw)

    def mark_lost(self, deal_id: int, reason: str | None = None, **kw) -> dict:
        return self.update_deal(deal_id, {"status": "lost", "lost_reason": reason}, **kw)

    def reopen(self, deal_id: int, **kw) -> dict:
        return self.update_deal(deal_id, {"status": "open"}, **kw)

    def delete_deal(self, deal_id: int, **kw) -> dict:
        return self.update_deal(deal_id, {"is_deleted": True}, **kw)

    # -- leads ------------------------------------------------------------------------------------
    def add_lead(self, title: str, *, person_id: int | None = None, organization_id: int | None = None,
                 amount: float | None = None, currency: str = "EUR", owner_id: int | None = None,
                 expected_close_date: str | None = None, label_ids: list | None = None,
                 origin_id: str | None = None, actor: int | None = None, source: str = "app") -> dict:
        if not isinstance(title, str) or not title.strip():
            raise BadRequest("Lead title is required")
        if person_id in (None, "") and organization_id in (None, ""):
            raise BadRequest("A lead needs a person_id or an organization_id")
        with self.state.change() as data:
            now = self.now()
            actor_id = self._actor(actor)
            lead = {"id": str(uuid.uuid4()), "title": title.strip(),
                    "owner_id": self._ref("pd_users", owner_id, "Owner") or actor_id, "creator_id": actor_id,
                    "person_id": self._ref("pd_persons", person_id, "Person"),
                    "organization_id": self._ref("pd_orgs", organization_id, "Organization"),
                    "value": {"amount": amount, "currency": currency} if amount is not None else None,
                    "expected_close_date": expected_close_date, "label_ids": list(label_ids or []),
                    "source_name": "API" if source == "api" else "Manually created",
                    "origin": "API" if source == "api" else "ManuallyCreated", "origin_id": origin_id,
                    "add_time": now, "update_time": now, "was_seen": False, "visible_to": 3, "custom_fields": {},
                    "is_archived": False}
            data["pd_leads"][lead["id"]] = lead
            event = self._event("lead", "create", lead["id"], m.lead_hook(lead, self.fields("deal")), None,
                                actor, source)
        self._publish(event)
        return copy.deepcopy(lead)

    # -- notes and files --------------------------------------------------------------------------
    def add_note(self, content: str, *, deal_id: int | None = None, person_id: int | None = None,
                 org_id: int | None = None, lead_id: str | None = None, pinned_to_deal: bool = False,
                 actor: int | None = None) -> dict:
        if not isinstance(content, str) or not content.strip():
            raise BadRequest("Note content is required")
        with self.state.change() as data:
            if lead_id is not None and lead_id not in data["pd_leads"]:
                raise NotFound("Lead not found")
            if deal_id is None and person_id is None and org_id is None and lead_id is None:
                raise BadRequest("A note needs deal_id, person_id, org_id or lead_id")
            now = self.now()
            note = {"id": self.state.next_id("note", 900), "content": content,
                    "deal_id": self._ref("pd_deals", deal_id, "Deal"),
                    "person_id": self._ref("pd_persons", person_id, "Person"),
                    "org_id": self._ref("pd_orgs", org_id, "Organization"), "lead_id": lead_id,
                    "user_id": self._actor(actor), "add_time": now, "update_time": now,
                    "pinned_to_deal_flag": bool(pinned_to_deal and deal_id is not None)}
            data["pd_notes"][str(note["id"])] = note
            return copy.deepcopy(note)

    def pin_note(self, note_id: int, pinned: bool = True, *, actor: int | None = None) -> dict:
        with self.state.change():
            note = self._get("pd_notes", note_id, "Note")
            if note.get("deal_id") is None:
                raise BadRequest("Only notes attached to a deal can be pinned to it")
            note["pinned_to_deal_flag"] = bool(pinned)
            note["update_time"] = self.now()
            note["last_update_user_id"] = self._actor(actor)
            return copy.deepcopy(note)

    def attach_file(self, deal_id: int, file_name: str, content: bytes, *, actor: int | None = None) -> dict:
        if not file_name:
            raise BadRequest("file name is required")
        with self.state.change() as data:
            self._get("pd_deals", deal_id, "Deal")
            now = self.now()
            ext = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else "other"
            f = {"id": self.state.next_id("file", 700), "deal_id": deal_id, "person_id": None, "org_id": None,
                 "lead_id": None, "user_id": self._actor(actor), "add_time": now, "update_time": now,
                 "file_name": file_name, "name": file_name, "file_size": len(content), "file_type": ext,
                 "remote_id": uuid.uuid4().hex, "content_type": mimetypes.guess_type(file_name)[0] or "application/octet-stream",
                 "content_b64": base64.b64encode(content).decode()}
            data["pd_files"][str(f["id"])] = f
            return {k: v for k, v in f.items() if k != "content_b64"}

    def file_content(self, file_id: int) -> tuple[dict, bytes]:
        with self.state.lock:
            f = self._get("pd_files", file_id, "File")
            return copy.deepcopy(f), base64.b64decode(f["content_b64"])

    # -- webhooks ---------------------------------------------------------------------------------
    def create_webhook(self, *, client_id: str, user_id: int, subscription_url: str, event_action: str,
                       event_object: str, name: str, version: str = "2.0", hook_user_id: int | None = None,
                       http_auth_user: str | None = None, http_auth_password: str | None = None) -> dict:
        with self.state.change() as data:
            owned = [w for w in data["pd_webhooks"].values()
                     if w["client_id"] == client_id and w["owner_id"] == user_id and not w.get("is_deleted")]
            if len(owned) >= WEBHOOK_LIMIT:
                raise BadRequest("Webhooks limit reached", 422, f"At most {WEBHOOK_LIMIT} webhooks per app user.")
            now = self.now()
            w = {"id": self.state.next_id("webhook", 880000), "company_id": self.company()["id"],
                 "owner_id": user_id, "user_id": hook_user_id or user_id, "admin_id": user_id,
                 "event_action": event_action, "event_object": event_object, "subscription_url": subscription_url,
                 "version": version, "is_active": True, "add_time": now, "remove_time": None,
                 "type": "application", "http_auth_user": http_auth_user, "http_auth_password": http_auth_password,
                 "remove_reason": None, "last_delivery_time": None, "last_http_status": None, "name": name,
                 "client_id": client_id, "failures": 0, "banned_until": None, "last_success_time": None,
                 "is_deleted": False}
            data["pd_webhooks"][str(w["id"])] = w
            return copy.deepcopy(w)

    def webhooks(self, client_id: str | None = None) -> list[dict]:
        with self.state.lock:
            self._reactivate_banned()
            return [copy.deepcopy(w) for w in sorted(self.data["pd_webhooks"].values(), key=lambda w: w["id"])
                    if not w.get("is_deleted") and (client_id is None or w["client_id"] == client_id)]

    def delete_webhook(self, webhook_id: int, *, client_id: str | None = None, reason: str = "removed") -> None:
        with self.state.change() as data:
            w = data["pd_webhooks"].get(str(webhook_id))
            if w is None or w.get("is_deleted"):
                raise NotFound("Webhook not found")
            if client_id is not None and w["client_id"] != client_id:
                raise BadRequest("Forbidden", 403)
            w.update(is_deleted=True, is_active=False, remove_time=self.now(), remove_reason=reason)

    def _reactivate_banned(self) -> None:
        now = self.now()
        for w in self.data["pd_webhooks"].values():
            if w.get("banned_until") and w["banned_until"] <= now and not w.get("is_deleted"):
                w.update(is_active=True, banned_until=None, failures=0, remove_reason=None, remove_time=None)

    def webhook_for_delivery(self, webhook_id: int) -> dict | None:
        with self.state.change() as data:
            self._reactivate_banned()
            w = data["pd_webhooks"].get(str(webhook_id))
            return None if w is None or w.get("is_deleted") else copy.deepcopy(w)

    def record_delivery(self, webhook_id: int, status: int | None, ok: bool, attempt: int, scale: float) -> bool:
        """Book an attempt's outcome (ban counter, 3-day deletion); True when a retry should follow."""
        with self.state.change() as data:
            w = data["pd_webhooks"].get(str(webhook_id))
            if w is None or w.get("is_deleted"):
                return False
            now = self.now()
            w["last_delivery_time"], w["last_http_status"] = now, status
            if ok:
                w["last_success_time"] = now
                return False
            if attempt == 1:
                w["failures"] = w.get("failures", 0) + 1
                if w["failures"] >= BAN_THRESHOLD:
                    w.update(is_active=False, banned_until=now + BAN_SECONDS * scale, failures=0,
                             remove_reason="banned", remove_time=now)
            if now - (w.get("last_success_time") or w["add_time"]) >= DELETE_AFTER_SECONDS * scale:
                w.update(is_deleted=True, is_active=False, remove_time=now,
                         remove_reason="no successful delivery for 3 days")
                return False
            return w["is_active"]

    # -- events -----------------------------------------------------------------------------------
    @staticmethod
    def _diff(before: dict, after: dict) -> dict:
        """`previous`: only changed keys with old values; custom fields compared per hash."""
        prev: dict[str, Any] = {}
        for key, old in before.items():
            if key == "custom_fields":
                new_cf = after.get(key, {})
                changed = {h: old.get(h) for h in set(old) | set(new_cf) if old.get(h) != new_cf.get(h)}
                if changed:
                    prev["custom_fields"] = changed
            elif after.get(key) != old:
                prev[key] = old
        return prev

    def _event(self, entity: str, action: str, entity_id: Any, data: dict | None, previous: dict | None,
               actor: int | None, source: str) -> list[dict]:
        """Build one payload per matching active webhook (call under the state lock)."""
        self._reactivate_banned()
        company = self.company()
        correlation = str(uuid.uuid4())
        stamp = ms_time(self.clock())
        jobs = []
        for w in sorted(self.data["pd_webhooks"].values(), key=lambda w: w["id"]):
            if w.get("is_deleted") or w["event_action"] not in (action, "*") or w["event_object"] not in (entity, "*"):
                continue
            if not w["is_active"] or w["version"] != "2.0":
                reason = "lost: webhook banned" if not w["is_active"] else "skipped: version 1.0 payloads are not emulated"
                jobs.append({"kind": "skip", "webhook_id": w["id"], "reason": reason, "entity": entity,
                             "action": action, "entity_id": str(entity_id)})
                continue
            meta = {"action": action, "entity": entity, "company_id": str(company["id"]),
                    "correlation_id": correlation, "entity_id": str(entity_id), "id": str(uuid.uuid4()),
                    "is_bulk_edit": False, "timestamp": stamp, "type": w["type"], "user_id": str(self._actor(actor)),
                    "version": "2.0", "webhook_id": str(w["id"]), "webhook_owner_id": str(w["owner_id"]),
                    "change_source": source, "attempt": 1, "host": f"{company['domain']}.pipedrive.com",
                    "permitted_user_ids": [str(u["id"]) for u in self.users()]}
            jobs.append({"kind": "webhook", "webhook_id": w["id"], "attempt": 1,
                         "payload": {"meta": meta, "data": copy.deepcopy(data), "previous": copy.deepcopy(previous)}})
        return jobs

    def _publish(self, jobs: list[dict]) -> None:
        for job in jobs:
            if job["kind"] == "skip":
                self.dispatcher._log(self.dispatcher.deliveries, dict(job, kind="webhook", status=None, ok=False,
                                                                      error=job["reason"], time=time.time()))
                continue
            self.dispatcher.enqueue(job)
            if self.faults.roll(self.faults.settings.webhook_duplicate_rate):
                self.dispatcher.enqueue(dict(job, duplicate=True))

    def send_callback(self, method: str, url: str | None, body: dict, auth: tuple[str, str] | None = None) -> None:
        if not url:
            return
        self.dispatcher.enqueue({"kind": "callback", "method": method, "url": url, "body": body, "auth": auth})
