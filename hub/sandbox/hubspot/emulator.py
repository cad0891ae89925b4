"""The HubSpot emulator object: accounts (portals), CRM records, their history, and the events they fire.

The API routes, the sandbox page and tests all change records through `create()` / `update()` /
`archive()` with a `Source` saying who made the change (a user in the CRM, an app through the API,
a workflow, an import, the company-to-contact lifecycle sync), so property history and webhook
`changeSource` tell the same story whoever made the change."""
from __future__ import annotations

import copy
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

from ..common import Faults, OAuthClient, SandboxState, TokenAuthority
from . import schema as s

DEFAULT_SCOPES = ["oauth", "crm.objects.contacts.read", "crm.objects.contacts.write",
                  "crm.objects.companies.read", "crm.objects.companies.write", "crm.objects.deals.read",
                  "crm.objects.deals.write", "crm.objects.leads.read", "crm.objects.leads.write",
                  "crm.objects.owners.read", "crm.schemas.contacts.read", "crm.schemas.companies.read",
                  "crm.schemas.deals.read"]
# the `sourceType` / webhook `changeSource` of each kind of change; [U] values are options
DEFAULT_SOURCES = {"ui": "CRM_UI", "api": "INTEGRATION", "workflow": "AUTOMATION_PLATFORM", "import": "IMPORT",
                   "company_sync": "COMPANIES", "meetings": "MEETINGS", "email": "EMAIL_INTEGRATION"}
MAX_ASSOCIATIONS_PER_REQUEST = 500


class ApiError(Exception):
    """A HubSpot error response: `category` as HubSpot names them, `errors[]` for field problems."""

    def __init__(self, status: int, message: str, category: str = "VALIDATION_ERROR", *,
                 errors: list[dict] | None = None, context: dict | None = None, sub_category: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category
        self.errors = errors
        self.context = context
        self.sub_category = sub_category

    def body(self) -> dict:
        out: dict[str, Any] = {"status": "error", "message": self.message, "correlationId": str(uuid.uuid4()),
                               "category": self.category}
        if self.sub_category:
            out["subCategory"] = self.sub_category
        if self.context:
            out["context"] = self.context
        if self.errors:
            out["errors"] = self.errors
        return out


def invalid_properties(problems: list[dict], portal: int) -> ApiError:
    """HubSpot's 'Property values were not valid' 400: the list is JSON inside the message, and
    `errors[]` names each property (code + context.propertyName)."""
    import json
    listed = [{"isValid": False, "message": p["message"], "error": p["error"], "name": p["name"],
               "localizedErrorMessage": p["message"], "portalId": portal} for p in problems]
    return ApiError(400, "Property values were not valid: " + json.dumps(listed, separators=(",", ":")),
                    errors=[{"message": p["message"], "code": p["error"], "context": {"propertyName": [p["name"]]}}
                            for p in problems])


@dataclass(frozen=True)
class Source:
    kind: str                     # ui | api | workflow | import | company_sync | meetings | email
    source_id: str | None = None  # userId:..., the app id, the company id ...
    user_id: int | None = None


def iso(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_datetime(value: Any) -> float | None:
    """HubSpot takes epoch milliseconds or ISO 8601 (UTC) for datetime properties."""
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text) / 1000.0
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


class HubSpotSandbox:
    def __init__(self, state: SandboxState, faults: Faults, options: dict[str, Any]):
        self.state = state
        self.faults = faults
        self.options = options
        self.clock = options.get("clock", time.time)
        self.sources = {**DEFAULT_SOURCES, **(options.get("sources") or {})}
        self.tokens = TokenAuthority(state, faults, prefix="hs", access_ttl=int(options.get("access_ttl", 1800)),
                                     code_ttl=int(options.get("code_ttl", 60)), clock=self.clock)
        self.client_options: dict[str, dict[str, Any]] = {}
        clients = options.get("clients") or [{"client_id": "relay-hub-sandbox", "client_secret": "sandbox-secret",
                                              "redirect_uris": []}]
        for n, c in enumerate(clients):
            self.tokens.register_client(OAuthClient(c["client_id"], c["client_secret"],
                                                    list(c.get("redirect_uris") or [])))
            self.client_options[c["client_id"]] = {
                "name": c.get("name", c["client_id"]), "scopes": list(c.get("scopes") or DEFAULT_SCOPES),
                "app_id": int(c.get("app_id") or 2_400_100 + n), "secret": c["client_secret"],
                "webhook_url": c.get("webhook_url"),
                "subscriptions": c.get("subscriptions"),
            }
        self.lock = state.lock
        with state.change() as data:
            for name in ("hs_portals", "hs_data", "hs_installs"):
                data.setdefault(name, {})
        from .webhooks import Deliverer
        self.webhooks = Deliverer(self)
        if options.get("seed", True) and not self.data["hs_portals"]:
            from .seed import seed
            seed(self)

    # -- plumbing ---------------------------------------------------------------------------------
    @property
    def data(self) -> dict:
        return self.state.data

    def now(self) -> float:
        return round(self.clock(), 3)

    def deliver_pending(self, force: bool = False) -> list[dict]:
        """Send the webhook deliveries that are due now (`force`: every one, retries included)."""
        return self.webhooks.deliver_pending(force=force)

    @property
    def deliveries(self) -> list[dict]:
        return self.webhooks.deliveries

    def source_type(self, src: Source) -> str:
        return self.sources.get(src.kind, src.kind)

    def ui_source(self, portal: int, user_id: int | None = None) -> Source:
        uid = user_id if user_id is not None else self.portal(portal)["admin_user_id"]
        return Source("ui", f"userId:{uid}", uid)

    def api_source(self, client_id: str, user_id: int | None = None) -> Source:
        return Source("api", str(self.client_options[client_id]["app_id"]), user_id)

    # -- portals, users, owners -------------------------------------------------------------------
    def add_portal(self, name: str, *, hub_id: int | None = None, domain: str | None = None) -> dict:
        with self.state.change() as data:
            hub_id = hub_id or self.state.next_id("portal", 24_681_357)
            portal = {"hub_id": hub_id, "name": name, "domain": domain or re.sub(r"[^a-z0-9]+", "", name.lower()) + ".com",
                      "admin_user_id": None, "created_at": self.now()}
            data["hs_portals"][str(hub_id)] = portal
            data["hs_data"][str(hub_id)] = {
                "users": {}, "owners": {}, "objects": {k: {} for k in s.OBJECT_TYPES}, "assoc": {},
                "pipelines": {"deals": self._stamp(s.deal_pipelines()), "leads": self._stamp(s.lead_pipelines())},
                "properties": s.default_properties(),
            }
            self._refresh_options(hub_id)
            return copy.deepcopy(portal)

    def _stamp(self, pipelines: list[dict]) -> list[dict]:
        when = iso(self.now())
        for p in pipelines:
            p.update(createdAt=when, updatedAt=when, archived=False)
            for st in p["stages"]:
                st.update(createdAt=when, updatedAt=when, archived=False, writePermissions="CRM_PERMISSIONS_ENFORCEMENT")
        return pipelines

    def portals(self) -> list[dict]:
        with self.lock:
            return sorted(copy.deepcopy(list(self.data["hs_portals"].values())), key=lambda p: p["hub_id"])

    def portal(self, hub_id: int) -> dict:
        p = self.data["hs_portals"].get(str(hub_id))
        if p is None:
            raise ApiError(404, f"Portal {hub_id} not found", "OBJECT_NOT_FOUND")
        return p

    def pd(self, hub_id: int) -> dict:
        self.portal(hub_id)
        return self.data["hs_data"][str(hub_id)]

    def add_user(self, hub_id: int, email: str, first: str, last: str, *, admin: bool = False) -> dict:
        with self.state.change():
            d = self.pd(hub_id)
            uid = self.state.next_id("user", 71_000_001)
            oid = self.state.next_id("owner", 81_000_001)
            when = iso(self.now())
            d["users"][str(uid)] = {"id": uid, "email": email, "firstName": first, "lastName": last,
                                    "superAdmin": admin, "ownerId": oid}
            d["owners"][str(oid)] = {"id": str(oid), "email": email, "type": "PERSON", "firstName": first,
                                     "lastName": last, "userId": uid, "userIdIncludingInactive": uid,
                                     "createdAt": when, "updatedAt": when, "archived": False, "teams": []}
            if admin or self.portal(hub_id)["admin_user_id"] is None:
                self.portal(hub_id)["admin_user_id"] = uid
            self._refresh_options(hub_id)
            return copy.deepcopy(d["users"][str(uid)])

    def users(self, hub_id: int) -> list[dict]:
        with self.lock:
            return sorted(copy.deepcopy(list(self.pd(hub_id)["users"].values())), key=lambda u: u["id"])

    def user(self, hub_id: int, user_id: int) -> dict:
        u = self.pd(hub_id)["users"].get(str(user_id))
        if u is None:
            raise ApiError(404, f"User {user_id} not found", "OBJECT_NOT_FOUND")
        return u

    def owners(self, hub_id: int) -> list[dict]:
        with self.lock:
            return sorted(copy.deepcopy(list(self.pd(hub_id)["owners"].values())), key=lambda o: int(o["id"]))

    def _refresh_options(self, hub_id: int) -> None:
        """Enumerations whose options come from the account: owners, pipelines, stages."""
        d = self.pd(hub_id)
        owners = [(o["id"], f"{o['firstName']} {o['lastName']}".strip()) for o in d["owners"].values()]

        def opts(pairs):
            return [{"label": lab, "value": val, "displayOrder": n, "hidden": False} for n, (val, lab) in enumerate(pairs)]
        for kind, props in d["properties"].items():
            for prop in props:
                if prop["name"] == "hubspot_owner_id":
                    prop["options"] = opts(owners)
                elif (kind, prop["name"]) in (("deals", "pipeline"), ("leads", "hs_pipeline")):
                    prop["options"] = opts([(p["id"], p["label"]) for p in d["pipelines"][kind]])
                elif (kind, prop["name"]) in (("deals", "dealstage"), ("leads", "hs_pipeline_stage")):
                    prop["options"] = opts([(st["id"], st["label"]) for p in d["pipelines"][kind] for st in p["stages"]])

    # -- installs ---------------------------------------------------------------------------------
    def install(self, client_id: str, hub_id: int, user_id: int, scopes: list[str]) -> dict:
        with self.state.change() as data:
            self.user(hub_id, user_id)
            entry = data["hs_installs"].setdefault(client_id, {}).setdefault(str(hub_id), {
                "hub_id": hub_id, "installed_by": user_id, "installed_at": self.now()})
            entry["scopes"] = sorted(set(entry.get("scopes", [])) | set(scopes))
            return copy.deepcopy(entry)

    def uninstall(self, client_id: str, hub_id: int) -> bool:
        with self.state.change() as data:
            gone = data["hs_installs"].get(client_id, {}).pop(str(hub_id), None)
        self.tokens.revoke_where(lambda g: g.get("client_id") == client_id and g.get("hub_id") == hub_id)
        return gone is not None

    def installed_portals(self, client_id: str) -> list[int]:
        with self.lock:
            return sorted(int(k) for k in self.data["hs_installs"].get(client_id, {}))

    # -- properties and pipelines -----------------------------------------------------------------
    def properties(self, hub_id: int, kind: str) -> list[dict]:
        return self.pd(hub_id)["properties"][kind]

    def property(self, hub_id: int, kind: str, name: str) -> dict | None:
        return next((p for p in self.properties(hub_id, kind) if p["name"] == name), None)

    def pipelines(self, hub_id: int, kind: str) -> list[dict]:
        return self.pd(hub_id)["pipelines"][kind]

    def stage(self, hub_id: int, kind: str, stage_id: str) -> tuple[dict, dict] | None:
        for p in self.pipelines(hub_id, kind):
            for st in p["stages"]:
                if st["id"] == stage_id:
                    return p, st
        return None

    def add_property_option(self, hub_id: int, kind: str, name: str, value: str, label: str) -> None:
        """An admin adds an option (a custom lifecycle stage, a disqualification reason)."""
        with self.state.change():
            prop = self.property(hub_id, kind, name)
            if prop is None or prop["type"] != "enumeration":
                raise ApiError(404, f"Unable to find enumeration property {name}", "OBJECT_NOT_FOUND")
            if all(o["value"] != value for o in prop["options"]):
                prop["options"].append({"label": label, "value": value, "displayOrder": len(prop["options"]),
                                        "hidden": False})

    # -- records: reading -------------------------------------------------------------------------
    def table(self, hub_id: int, kind: str) -> dict:
        return self.pd(hub_id)["objects"][kind]

    def record(self, hub_id: int, kind: str, object_id: Any, *, archived: bool = False) -> dict:
        rec = self.table(hub_id, kind).get(str(object_id))
        if rec is None or rec["archived"] != archived:
            raise ApiError(404, "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND",
                           context={"id": [str(object_id)]})
        return rec

    def find(self, hub_id: int, kind: str, object_id: Any) -> dict | None:
        with self.lock:
            rec = self.table(hub_id, kind).get(str(object_id))
            return None if rec is None or rec["archived"] else copy.deepcopy(rec)

    def value(self, hub_id: int, kind: str, object_id: Any, name: str) -> str | None:
        rec = self.find(hub_id, kind, object_id)
        return None if rec is None else rec["properties"].get(name)

    def records(self, hub_id: int, kind: str, *, archived: bool = False) -> list[dict]:
        with self.lock:
            return [copy.deepcopy(r) for r in sorted(self.table(hub_id, kind).values(), key=lambda r: int(r["id"]))
                    if r["archived"] == archived]

    def associations(self, hub_id: int, kind: str, object_id: Any, to_kind: str) -> dict[str, list[int]]:
        """`{to_id: [typeId, ...]}` for one record's associations to a type."""
        assoc = self.pd(hub_id)["assoc"]
        out: dict[str, list[int]] = {}
        for key, types in assoc.get(f"{kind}:{object_id}", {}).items():
            tk, tid = key.split(":")
            if tk == to_kind:
                target = self.table(hub_id, tk).get(tid)
                if target is not None and not target["archived"]:
                    out[tid] = sorted(types)
        return out

    def associated_ids(self, hub_id: int, kind: str, object_id: Any, to_kind: str) -> list[str]:
        with self.lock:
            return sorted(self.associations(hub_id, kind, object_id, to_kind), key=int)

    def open_leads(self, hub_id: int, contact_id: Any) -> list[str]:
        with self.lock:
            out = []
            for lid in self.associations(hub_id, "contacts", contact_id, "leads"):
                rec = self.table(hub_id, "leads")[lid]
                if rec["properties"].get("hs_lead_is_open") == "true":
                    out.append(lid)
            return sorted(out, key=int)

    # -- records: validation ----------------------------------------------------------------------
    def _check_properties(self, hub_id: int, kind: str, values: Any, *, creating: bool) -> dict[str, str | None]:
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise ApiError(400, "Invalid input JSON on line 1: properties must be an object")
        problems, out = [], {}
        for name, raw in values.items():
            prop = self.property(hub_id, kind, name) if isinstance(name, str) else None
            if prop is None:
                problems.append({"name": str(name), "error": "PROPERTY_DOESNT_EXIST",
                                 "message": f'Property "{name}" does not exist'})
                continue
            if prop["modificationMetadata"]["readOnlyValue"]:
                problems.append({"name": name, "error": "READ_ONLY_VALUE",
                                 "message": f'"{name}" is a read only property; its value cannot be set.'})
                continue
            if raw is None or raw == "":
                out[name] = None if raw is None else ""
                continue
            if isinstance(raw, (dict, list)):
                problems.append({"name": name, "error": "INVALID_PROPERTY_VALUE",
                                 "message": f"{raw!r} is not a valid value for {name}: expected a string"})
                continue
            text = ("true" if raw else "false") if isinstance(raw, bool) else str(raw)
            kind_ = prop["type"]
            if kind_ == "number":
                try:
                    float(text)
                except ValueError:
                    problems.append({"name": name, "error": "INVALID_LONG" if name.endswith("_id") else "INVALID_DOUBLE",
                                     "message": f"{text} was not a valid number."})
                    continue
            elif kind_ in ("datetime", "date"):
                ts = parse_datetime(text)
                if ts is None:
                    problems.append({"name": name, "error": "INVALID_DATE",
                                     "message": f"{text} was not a valid date (epoch milliseconds or ISO 8601)."})
                    continue
                text = iso(ts)
            elif kind_ == "bool":
                if text.lower() not in ("true", "false"):
                    problems.append({"name": name, "error": "INVALID_BOOLEAN",
                                     "message": f"{text} was not a valid boolean (true or false)."})
                    continue
                text = text.lower()
            elif kind_ == "enumeration":
                allowed = [o["value"] for o in prop["options"]]
                chosen = text.split(";") if prop["fieldType"] == "checkbox" else [text]
                if any(v not in allowed for v in chosen):
                    if name == "hubspot_owner_id":
                        problems.append({"name": name, "error": "INVALID_OWNER_ID",
                                         "message": f"{text} is not a valid owner id"})
                    else:
                        listed = ", ".join(f"{o['label']} ({o['value']})" for o in prop["options"][:20])
                        problems.append({"name": name, "error": "INVALID_OPTION",
                                         "message": f"{text} was not one of the allowed options: [{listed}]"})
                    continue
            out[name] = text
        if problems:
            raise invalid_properties(problems, hub_id)
        return out

    def _check_associations(self, hub_id: int, kind: str, items: Any) -> list[tuple[str, str, int]]:
        """`associations` of a create body -> [(to_kind, to_id, typeId)]."""
        if items is None:
            return []
        if not isinstance(items, list) or len(items) > MAX_ASSOCIATIONS_PER_REQUEST:
            raise ApiError(400, "Invalid input JSON: associations must be an array")
        out = []
        for n, item in enumerate(items):
            to = item.get("to") if isinstance(item, dict) else None
            types = item.get("types") if isinstance(item, dict) else None
            if not isinstance(to, dict) or to.get("id") in (None, "") or not isinstance(types, list) or not types:
                raise ApiError(400, f"associations[{n}] needs to.id and a non-empty types array")
            for t in types:
                category = t.get("associationCategory") if isinstance(t, dict) else None
                try:
                    tid = int(t.get("associationTypeId")) if isinstance(t, dict) else None
                except (TypeError, ValueError):
                    tid = None
                spec = s.ASSOCIATION_TYPES.get(tid) if tid is not None else None
                if category != "HUBSPOT_DEFINED" or spec is None or spec["from"] != kind:
                    raise ApiError(400, f"associations[{n}]: {category} association type {t.get('associationTypeId') if isinstance(t, dict) else t} "
                                        f"is not valid from {s.OBJECT_TYPES[kind]['singular']}", "VALIDATION_ERROR",
                                   sub_category="INVALID_ASSOCIATION_TYPE")
                to_id = str(to["id"])
                target = self.table(hub_id, spec["to"]).get(to_id)
                if target is None or target["archived"]:
                    raise ApiError(400, f"{s.OBJECT_TYPES[spec['to']]['singular'].upper()}={to_id} is not valid",
                                   "VALIDATION_ERROR", sub_category="INVALID_OBJECT_IDS",
                                   context={"ids": [to_id]})
                out.append((spec["to"], to_id, tid))
        return out

    # -- records: writing -------------------------------------------------------------------------
    def create(self, hub_id: int, kind: str, properties: Any, associations: Any = None, *,
               source: Source) -> dict:
        """Create a record, its associations and their events in one go (nothing half-written)."""
        with self.state.change():
            values = self._check_properties(hub_id, kind, properties, creating=True)
            links = self._check_associations(hub_id, kind, associations)
            values = self._defaults(hub_id, kind, values, links)
            self._check_unique(hub_id, kind, values, None)
            now = self.now()
            oid = str(self.state.next_id(f"object:{hub_id}", 10_000_001))
            info = s.OBJECT_TYPES[kind]
            rec = {"id": oid, "properties": {"hs_object_id": oid}, "createdAt": iso(now), "updatedAt": iso(now),
                   "archived": False, "history": {}}
            for name in {info["created"], "hs_createdate"}:
                rec["properties"][name] = iso(now)
            self.table(hub_id, kind)[oid] = rec
            for to_kind, to_id, tid in links:
                self._link(hub_id, kind, oid, to_kind, to_id, tid)
            occurrences = [self._occurrence(hub_id, kind, oid, "creation", None, None, source)]
            occurrences += self._apply(hub_id, kind, rec, values, source, creating=True)
            self._derive(hub_id, kind, rec, source)
            out = copy.deepcopy(rec)
        self.webhooks.publish(occurrences)
        return out

    def update(self, hub_id: int, kind: str, object_id: Any, properties: Any, *, source: Source) -> dict:
        with self.state.change():
            rec = self.record(hub_id, kind, object_id)
            values = self._check_properties(hub_id, kind, properties, creating=False)
            self._check_update(hub_id, kind, rec, values)
            self._check_unique(hub_id, kind, values, rec["id"])
            occurrences = self._apply(hub_id, kind, rec, values, source)
            occurrences += self._derive(hub_id, kind, rec, source)
            out = copy.deepcopy(rec)
        self.webhooks.publish(occurrences)
        return out

    def archive(self, hub_id: int, kind: str, object_id: Any, *, source: Source) -> None:
        with self.state.change():
            rec = self.record(hub_id, kind, object_id)
            rec["archived"] = True
            rec["archivedAt"] = iso(self.now())
            occurrences = [self._occurrence(hub_id, kind, rec["id"], "deletion", None, None, source)]
        self.webhooks.publish(occurrences)

    def associate(self, hub_id: int, kind: str, object_id: Any, to_kind: str, to_id: Any,
                  type_ids: Iterable[int] | None = None) -> None:
        with self.state.change():
            self.record(hub_id, kind, object_id)
            self.record(hub_id, to_kind, to_id)
            ids = list(type_ids) if type_ids else [s.default_type(kind, to_kind)]
            for tid in ids:
                spec = s.ASSOCIATION_TYPES.get(tid)
                if spec is None or spec["from"] != kind or spec["to"] != to_kind:
                    raise ApiError(400, f"association type {tid} is not valid from {kind} to {to_kind}",
                                   sub_category="INVALID_ASSOCIATION_TYPE")
            for tid in ids:
                self._link(hub_id, kind, str(object_id), to_kind, str(to_id), tid)
            self._derive_links(hub_id, kind, str(object_id), to_kind, str(to_id))

    def dissociate(self, hub_id: int, kind: str, object_id: Any, to_kind: str, to_id: Any) -> None:
        with self.state.change():
            assoc = self.pd(hub_id)["assoc"]
            assoc.get(f"{kind}:{object_id}", {}).pop(f"{to_kind}:{to_id}", None)
            assoc.get(f"{to_kind}:{to_id}", {}).pop(f"{kind}:{object_id}", None)
            self._derive_links(hub_id, kind, str(object_id), to_kind, str(to_id))

    def _link(self, hub_id: int, kind: str, oid: str, to_kind: str, to_id: str, tid: int) -> None:
        assoc = self.pd(hub_id)["assoc"]
        ids = {tid}
        if s.ASSOCIATION_TYPES[tid]["label"] == "Primary":
            ids.add(s.default_type(kind, to_kind))          # a primary association is an association too
        for t in ids:
            if t is None:
                continue
            fwd = assoc.setdefault(f"{kind}:{oid}", {}).setdefault(f"{to_kind}:{to_id}", [])
            if t not in fwd:
                fwd.append(t)
            inv = s.inverse_type(t)
            if inv is not None:
                back = assoc.setdefault(f"{to_kind}:{to_id}", {}).setdefault(f"{kind}:{oid}", [])
                if inv not in back:
                    back.append(inv)

    def _derive_links(self, hub_id: int, kind: str, oid: str, to_kind: str, to_id: str) -> None:
        pair = {kind: oid, to_kind: to_id}
        if "leads" in pair and "contacts" in pair:
            rec = self.table(hub_id, "leads").get(pair["leads"])
            if rec is not None:
                self._derive(hub_id, "leads", rec, None)

    def _defaults(self, hub_id: int, kind: str, values: dict, links: list[tuple[str, str, int]]) -> dict:
        """Required properties and defaults per object type, as HubSpot enforces them on create."""
        v = dict(values)
        missing = []
        if kind in s.ENGAGEMENTS and not v.get("hs_timestamp"):
            missing.append("hs_timestamp")
        if kind == "leads":
            if not v.get("hs_lead_name"):
                missing.append("hs_lead_name")
        if missing:
            raise ApiError(400, f"Missing required properties: {', '.join(missing)}", errors=[
                {"message": f"Property {m} is required", "code": "REQUIRED_PROPERTY",
                 "context": {"propertyName": [m]}} for m in missing])
        if kind == "leads":
            if not any(tk == "contacts" and s.ASSOCIATION_TYPES[t]["label"] == "Primary" for tk, _, t in links):
                raise ApiError(400, "A lead must be associated with a primary contact (association type "
                                    f"{s.primary_type('leads', 'contacts')}) when it is created",
                               sub_category="MISSING_PRIMARY_CONTACT_ASSOCIATION")
            v.setdefault("hs_pipeline", "lead-pipeline-id")
            self._check_stage(hub_id, "leads", v, "hs_pipeline", "hs_pipeline_stage", None)
        if kind == "deals":
            v.setdefault("pipeline", "default")
            self._check_stage(hub_id, "deals", v, "pipeline", "dealstage", None)
        if kind == "tasks":
            v.setdefault("hs_task_status", "NOT_STARTED")
            v.setdefault("hs_task_priority", "NONE")
            v.setdefault("hs_task_type", "TODO")
        if kind == "emails":
            v.setdefault("hs_email_direction", "EMAIL")
        if kind == "communications":
            v.setdefault("hs_communication_logged_from", "CRM")
            if not v.get("hs_communication_channel_type"):
                raise ApiError(400, "Missing required properties: hs_communication_channel_type", errors=[
                    {"message": "Property hs_communication_channel_type is required", "code": "REQUIRED_PROPERTY",
                     "context": {"propertyName": ["hs_communication_channel_type"]}}])
        return v

    def _check_unique(self, hub_id: int, kind: str, values: dict, own_id: str | None) -> None:
        """Contacts' e-mail and properties defined with `hasUniqueValue` take a value once (409)."""
        for name, value in values.items():
            if not value:
                continue
            prop = self.property(hub_id, kind, name)
            if not (prop.get("hasUniqueValue") or (kind == "contacts" and name == "email")) or name == "hs_object_id":
                continue
            for rec in self.table(hub_id, kind).values():
                if rec["id"] != own_id and not rec["archived"] and \
                        str(rec["properties"].get(name) or "").lower() == str(value).lower():
                    label = s.OBJECT_TYPES[kind]["singular"].capitalize()
                    raise ApiError(409, f"{label} already exists. Existing ID: {rec['id']}", "CONFLICT")

    def _check_stage(self, hub_id: int, kind: str, v: dict, p_name: str, s_name: str, rec: dict | None) -> None:
        """A stage must belong to its pipeline; a new pipeline without a stage starts at its first one."""
        current = rec["properties"] if rec else {}
        pipeline_id = v.get(p_name) or current.get(p_name)
        pipeline = next((p for p in self.pipelines(hub_id, kind) if p["id"] == pipeline_id), None)
        if pipeline is None:
            raise invalid_properties([{"name": p_name, "error": "INVALID_OPTION",
                                       "message": f"{pipeline_id} is not a valid pipeline"}], hub_id)
        stage_id = v.get(s_name)
        if not stage_id:
            if rec is None or (p_name in v and v[p_name] != current.get(p_name)):
                v[s_name] = pipeline["stages"][0]["id"]
            return
        if all(st["id"] != stage_id for st in pipeline["stages"]):
            raise invalid_properties([{"name": s_name, "error": "INVALID_OPTION",
                                       "message": f"{stage_id} is not a valid stage of pipeline {pipeline_id}"}],
                                     hub_id)
        if p_name not in v:
            v[p_name] = pipeline_id

    def _check_update(self, hub_id: int, kind: str, rec: dict, values: dict) -> None:
        if kind == "leads":
            if "hs_lead_name" in values and not values["hs_lead_name"]:
                raise invalid_properties([{"name": "hs_lead_name", "error": "REQUIRED_PROPERTY",
                                           "message": "hs_lead_name cannot be empty"}], hub_id)
            if "hs_pipeline" in values or "hs_pipeline_stage" in values:
                self._check_stage(hub_id, "leads", values, "hs_pipeline", "hs_pipeline_stage", rec)
        if kind == "deals" and ("pipeline" in values or "dealstage" in values):
            self._check_stage(hub_id, "deals", values, "pipeline", "dealstage", rec)
        if kind in s.ENGAGEMENTS and "hs_timestamp" in values and not values["hs_timestamp"]:
            raise invalid_properties([{"name": "hs_timestamp", "error": "REQUIRED_PROPERTY",
                                       "message": "hs_timestamp cannot be empty"}], hub_id)
        if kind in ("contacts", "companies") and values.get("lifecyclestage"):
            mode = self.options.get("lifecycle_backward", "allow")   # [U] see FACTS §5
            order = [o["value"] for o in self.property(hub_id, kind, "lifecyclestage")["options"]]
            old, new = rec["properties"].get("lifecyclestage"), values["lifecyclestage"]
            if old in order and new in order and order.index(new) < order.index(old) and mode != "allow":
                if mode == "ignore":
                    del values["lifecyclestage"]
                else:
                    raise invalid_properties([{"name": "lifecyclestage", "error": "INVALID_OPTION",
                                               "message": f"lifecyclestage cannot move back from {old} to {new}; "
                                                          "clear it first"}], hub_id)

    def _apply(self, hub_id: int, kind: str, rec: dict, values: dict, source: Source | None,
               creating: bool = False) -> list[dict]:
        """Write changed values with history; one occurrence per changed property."""
        now = self.now()
        props = rec["properties"]
        occurrences = []
        changed = False
        for name, value in values.items():
            value = None if value == "" else value
            if props.get(name) == value:
                continue
            changed = True
            props[name] = value
            entry = {"value": value if value is not None else "", "timestamp": iso(now),
                     "sourceType": self.source_type(source) if source else "CALCULATED"}
            if source and source.source_id:
                entry["sourceId"] = source.source_id
            if source and source.user_id is not None:
                entry["updatedByUserId"] = source.user_id
            rec["history"].setdefault(name, []).insert(0, entry)
            if name == "hubspot_owner_id":
                props["hubspot_owner_assigneddate"] = iso(now)
            if name == "lifecyclestage" and value:
                props[f"hs_lifecyclestage_{value}_date"] = iso(now)
            if name == "hs_pipeline_stage" and value:
                props[f"hs_v2_date_entered_{value}"] = iso(now)
            if source is not None and (not creating or self.options.get("creation_property_events", True)):
                occurrences.append(self._occurrence(hub_id, kind, rec["id"], "propertyChange", name, value, source))
        if changed:
            rec["updatedAt"] = iso(now)
            props[s.OBJECT_TYPES[kind]["modified"]] = iso(now)
            props["hs_lastmodifieddate"] = iso(now)
        if kind == "companies" and any(o["property"] == "lifecyclestage" for o in occurrences):
            occurrences += self._sync_company_stage(hub_id, rec, source)
        return occurrences

    def _derive(self, hub_id: int, kind: str, rec: dict, source: Source | None) -> list[dict]:
        """Calculated properties (their changes carry source CALCULATED and fire no events here)."""
        p = rec["properties"]
        calc: dict[str, Any] = {}
        if kind == "deals":
            found = self.stage(hub_id, "deals", p.get("dealstage") or "")
            meta = found[1]["metadata"] if found else {}
            closed = meta.get("isClosed") == "true"
            calc["hs_is_closed"] = "true" if closed else "false"
            calc["hs_is_closed_won"] = "true" if closed and meta.get("probability") == "1.0" else "false"
            calc["hs_deal_stage_probability"] = meta.get("probability")
            if closed and not p.get("closedate"):
                calc["closedate"] = iso(self.now())
        elif kind == "leads":
            found = self.stage(hub_id, "leads", p.get("hs_pipeline_stage") or "")
            state = found[1]["metadata"].get("leadState") if found else None
            calc["hs_lead_is_open"] = "false" if state in ("QUALIFIED", "DISQUALIFIED") else "true"
            primary = [cid for cid, types in self.associations(hub_id, "leads", rec["id"], "contacts").items()
                       if s.primary_type("leads", "contacts") in types]
            calc["hs_primary_contact_id"] = primary[0] if primary else None
            contact = self.table(hub_id, "contacts").get(primary[0]) if primary else None
            calc["hs_associated_contact_email"] = contact["properties"].get("email") if contact else None
        elif kind == "tasks":
            done = p.get("hs_task_status") == "COMPLETED"
            calc["hs_task_completion_date"] = (p.get("hs_task_completion_date") or iso(self.now())) if done else None
        for name, value in calc.items():
            if p.get(name) != value:
                p[name] = value
                rec["history"].setdefault(name, []).insert(0, {"value": value or "", "timestamp": iso(self.now()),
                                                               "sourceType": "CALCULATED"})
        return []

    def _sync_company_stage(self, hub_id: int, company: dict, source: Source | None) -> list[dict]:
        """HubSpot copies a company's lifecycle stage down to its contacts (forward moves only unless
        `company_sync` is "all"; "off" disables it); those changes carry the company-sync source."""
        mode = self.options.get("company_sync", "forward")
        stage = company["properties"].get("lifecyclestage")
        if mode == "off" or not stage:
            return []
        order = [o["value"] for o in self.property(hub_id, "contacts", "lifecyclestage")["options"]]
        sync = Source("company_sync", company["id"], source.user_id if source else None)
        out = []
        for cid in sorted(self.associations(hub_id, "companies", company["id"], "contacts"), key=int):
            contact = self.table(hub_id, "contacts")[cid]
            old = contact["properties"].get("lifecyclestage")
            if old == stage:
                continue
            if mode == "forward" and old in order and stage in order and order.index(stage) < order.index(old):
                continue
            out += self._apply(hub_id, "contacts", contact, {"lifecyclestage": stage}, sync)
        return out

    # -- events -----------------------------------------------------------------------------------
    def _occurrence(self, hub_id: int, kind: str, oid: str, action: str, prop: str | None, value: Any,
                    source: Source) -> dict:
        """One change as webhooks see it; subscriptions turn it into events (sharing its eventId)."""
        return {"portalId": hub_id, "kind": kind, "objectId": int(oid), "action": action, "property": prop,
                "value": value, "occurredAt": int(self.now() * 1000), "changeSource": self.source_type(source),
                "sourceId": source.source_id, "eventId": self.state.next_id("event", 1_000_000_001)}

    # -- what a CRM user does (the sandbox page, tests) -------------------------------------------
    def set_lifecycle(self, hub_id: int, kind: str, object_id: Any, stage: str, *, source: Source | None = None) -> dict:
        return self.update(hub_id, kind, object_id, {"lifecyclestage": stage},
                           source=source or self.ui_source(hub_id))

    def move_lead(self, hub_id: int, lead_id: Any, stage_id: str, *, source: Source | None = None) -> dict:
        with self.lock:
            found = self.stage(hub_id, "leads", stage_id)
            if found is None:
                raise invalid_properties([{"name": "hs_pipeline_stage", "error": "INVALID_OPTION",
                                           "message": f"{stage_id} is not a valid lead stage"}], hub_id)
        return self.update(hub_id, "leads", lead_id, {"hs_pipeline": found[0]["id"], "hs_pipeline_stage": stage_id},
                           source=source or self.ui_source(hub_id))

    def disqualify_lead(self, hub_id: int, lead_id: Any, reason: str, *, source: Source | None = None) -> dict:
        with self.lock:
            rec = self.record(hub_id, "leads", lead_id)
            pipeline = next(p for p in self.pipelines(hub_id, "leads") if p["id"] == rec["properties"]["hs_pipeline"])
            stage = next(st for st in pipeline["stages"] if st["metadata"].get("leadState") == "DISQUALIFIED")
        return self.update(hub_id, "leads", lead_id, {"hs_pipeline_stage": stage["id"],
                                                      "hs_lead_disqualification_reason": reason},
                           source=source or self.ui_source(hub_id))

    def set_deal_stage(self, hub_id: int, deal_id: Any, stage_id: str, *, source: Source | None = None) -> dict:
        with self.lock:
            found = self.stage(hub_id, "deals", stage_id)
            if found is None:
                raise invalid_properties([{"name": "dealstage", "error": "INVALID_OPTION",
                                           "message": f"{stage_id} is not a valid deal stage"}], hub_id)
        return self.update(hub_id, "deals", deal_id, {"pipeline": found[0]["id"], "dealstage": stage_id},
                           source=source or self.ui_source(hub_id))

    def close_deal(self, hub_id: int, deal_id: Any, won: bool, *, source: Source | None = None) -> dict:
        with self.lock:
            rec = self.record(hub_id, "deals", deal_id)
            pipeline = next(p for p in self.pipelines(hub_id, "deals") if p["id"] == rec["properties"]["pipeline"])
            want = "1.0" if won else "0.0"
            stage = next(st for st in pipeline["stages"] if st["metadata"]["isClosed"] == "true"
                         and st["metadata"]["probability"] == want)
        return self.set_deal_stage(hub_id, deal_id, stage["id"], source=source)

    def complete_task(self, hub_id: int, task_id: Any, *, source: Source | None = None) -> dict:
        return self.update(hub_id, "tasks", task_id, {"hs_task_status": "COMPLETED"},
                           source=source or self.ui_source(hub_id))

    def log_activity(self, hub_id: int, contact_id: Any, activity: str, *, response: bool = False,
                     outcome: str | None = None, body: str = "", source: Source | None = None,
                     when: float | None = None) -> dict:
        """Log an e-mail / LinkedIn message / call / meeting on a contact, as HubSpot records it:
        an outgoing e-mail a user logged (EMAIL) or the contact's reply (INCOMING_EMAIL); a call with
        its outcome id; a meeting a user logged or one the contact booked (MEETINGS_PUBLIC). The
        activity is associated with the contact, its primary company and its open leads."""
        source = source or self.ui_source(hub_id)
        ts = iso(when if when is not None else self.now())
        owner = None
        with self.lock:
            contact = self.record(hub_id, "contacts", contact_id)
            owner = contact["properties"].get("hubspot_owner_id")
            leads = self.open_leads(hub_id, contact_id) if self.options.get("associate_activities_to_leads", True) else []
        if activity == "email":
            kind = "emails"
            props = {"hs_timestamp": ts, "hs_email_direction": "INCOMING_EMAIL" if response else "EMAIL",
                     "hs_email_subject": "Re: our call" if response else "Following up",
                     "hs_email_text": body or ("Thanks, let's talk." if response else "Hi, following up."),
                     "hs_email_status": "SENT"}
            if response:
                source = Source("email", None, None)
        elif activity == "linkedin":
            kind = "communications"
            props = {"hs_timestamp": ts, "hs_communication_channel_type": "LINKEDIN_MESSAGE",
                     "hs_communication_logged_from": "CRM", "hs_communication_body": body or "Hi, connecting here."}
        elif activity == "call":
            kind = "calls"
            disposition = outcome or (s.CALL_CONNECTED if response else s.CALL_DISPOSITIONS[1][0])
            props = {"hs_timestamp": ts, "hs_call_title": "Call", "hs_call_body": body,
                     "hs_call_direction": "OUTBOUND", "hs_call_disposition": disposition, "hs_call_status": "COMPLETED"}
        elif activity == "meeting":
            kind = "meetings"
            props = {"hs_timestamp": ts, "hs_meeting_title": "Intro meeting", "hs_meeting_body": body,
                     "hs_meeting_start_time": ts, "hs_meeting_end_time": ts, "hs_meeting_outcome": "SCHEDULED",
                     "hs_meeting_source": "MEETINGS_PUBLIC" if response else "CRM_UI"}
            if response:
                source = Source("meetings", None, None)
        else:
            raise ApiError(400, f"unknown activity {activity!r}: email, linkedin, call or meeting")
        if owner:
            props["hubspot_owner_id"] = owner
        links = [{"to": {"id": str(contact_id)}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                            "associationTypeId": s.default_type(kind, "contacts")}]}]
        links += [{"to": {"id": lid}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                 "associationTypeId": s.default_type(kind, "leads")}]} for lid in leads]
        return self.create(hub_id, kind, props, links, source=source)
