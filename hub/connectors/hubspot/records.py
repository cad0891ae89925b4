"""HubSpot as the CRM side of a rule: deals, contacts (persons), companies (organizations), leads
and tasks as neutral `SourceRecord`s, a preview's record picker, and the fields conditions may name.

A record's `data` is the object as the hub keeps it: `id` and its properties side by side (what
webhooks.flat makes), so a template names `deal.dealname` or a custom property by its internal
name. Pipeline, stage and owner names and custom properties' labels come from the connection's
catalogs (the core's cache); a catalog that cannot be loaded costs the names (a warning), never
the run. HubSpot records carry no files a rule copies."""
from __future__ import annotations

from typing import Any, Iterator

from ...errors import Fatal
from ..contract.records import Carry, FieldInfo, SourceContext, SourceRecord, format_money
from .client import HubSpotClient
from .webhooks import flat

KINDS = ("deal", "person", "organization", "lead", "task")
ALIASES = {"contact": "person", "company": "organization"}
PATHS = {"deal": "deals", "person": "contacts", "organization": "companies", "lead": "leads", "task": "tasks"}
TYPE_IDS = {"deal": "0-3", "person": "0-1", "organization": "0-2", "lead": "0-136", "task": "0-27"}
_FIELD_CATALOG = {"deal": "deal_fields", "person": "contact_fields", "lead": "lead_fields"}
_ASSOCIATIONS = {"deal": ["contacts", "companies"], "lead": ["contacts", "companies"],
                 "task": ["contacts", "deals", "companies"], "person": ["companies"], "organization": []}

# the standard properties conditions and templates may name: (key, label, neutral type)
_STANDARD: dict[str, tuple[tuple[str, str, str], ...]] = {
    "deal": (("dealname", "Deal name", "text"), ("amount", "Amount", "money"), ("pipeline", "Pipeline", "enum"),
             ("dealstage", "Deal stage", "enum"), ("hubspot_owner_id", "Owner", "user"),
             ("closedate", "Close date", "date"), ("dealtype", "Deal type", "text"),
             ("createdate", "Created", "date")),
    "person": (("firstname", "First name", "text"), ("lastname", "Last name", "text"), ("email", "Email", "text"),
               ("phone", "Phone", "text"), ("lifecyclestage", "Lifecycle stage", "enum"),
               ("hubspot_owner_id", "Owner", "user"), ("company", "Company name", "text"),
               ("createdate", "Created", "date")),
    "organization": (("name", "Name", "text"), ("domain", "Domain", "text"), ("lifecyclestage", "Lifecycle stage", "enum"),
                     ("hubspot_owner_id", "Owner", "user"), ("createdate", "Created", "date")),
    "lead": (("hs_lead_name", "Lead name", "text"), ("hs_pipeline", "Pipeline", "enum"),
             ("hs_pipeline_stage", "Lead stage", "enum"), ("hubspot_owner_id", "Owner", "user"),
             ("hs_lead_type", "Lead type", "text"), ("hs_lead_label", "Lead label", "text"),
             ("hs_lead_disqualification_reason", "Disqualification reason", "enum"),
             ("hs_createdate", "Created", "date")),
    "task": (("hs_task_subject", "Subject", "text"), ("hs_task_body", "Notes", "text"),
             ("hs_task_status", "Status", "enum"), ("hs_task_priority", "Priority", "enum"),
             ("hs_task_type", "Type", "enum"), ("hubspot_owner_id", "Assigned to", "user"),
             ("hs_timestamp", "Due", "date")),
}
_NUMBERS = {"amount", "hs_deal_stage_probability", "num_associated_contacts", "hs_acv", "hs_arr", "hs_mrr", "hs_tcv"}
TASK_STATUSES = (("NOT_STARTED", "Not started"), ("IN_PROGRESS", "In progress"), ("WAITING", "Waiting"),
                 ("COMPLETED", "Completed"), ("DEFERRED", "Deferred"))
PRIORITIES = (("LOW", "Low"), ("MEDIUM", "Medium"), ("HIGH", "High"))


def kind_of(kind: str) -> str:
    kind = ALIASES.get(kind, kind)
    if kind not in KINDS:
        raise Fatal(f"hubspot: no records of kind {kind!r} (known: {', '.join(KINDS)})", 400)
    return kind


def title_of(kind: str, data: dict) -> str:
    if kind == "person":
        name = " ".join(p for p in (data.get("firstname"), data.get("lastname")) if p)
        return name or data.get("email") or f"Contact {data.get('id')}"
    key = {"deal": "dealname", "organization": "name", "lead": "hs_lead_name", "task": "hs_task_subject"}[kind]
    return str(data.get(key) or f"{kind.title()} {data.get('id')}")


def portal_of(client: Any) -> str:
    """The account's hub id (for links into HubSpot), from the token's metadata, once per client."""
    cached = getattr(client, "_hubspot_portal", None)
    if cached is not None:
        return cached
    portal = ""
    tokens = getattr(client, "tokens", None)
    if tokens is not None:
        try:
            portal = str(client.token_info(tokens.access_token()).get("hub_id") or "")
        except Fatal:
            portal = ""
    try:
        setattr(client, "_hubspot_portal", portal)
    except AttributeError:
        pass
    return portal


class HubSpotSource:
    """One connection's CRM objects (made per run or page view: `HubSpotSource(ctx)`)."""

    def __init__(self, ctx: SourceContext):
        self.ctx = ctx
        self.client: HubSpotClient = ctx.client
        self.base = (ctx.api_base or "").rstrip("/")

    def url(self, kind: str, object_id: Any) -> str:
        """Where a person opens the record: HubSpot's app (or the emulator's pages, under its API root)."""
        app = "https://app.hubspot.com" if self.base in ("", "https://api.hubapi.com") else self.base
        return f"{app}/contacts/{portal_of(self.client) or '0'}/record/{TYPE_IDS[kind]}/{object_id}"

    # -- reading ----------------------------------------------------------------------------------
    def read(self, kind: str, object_id: Any) -> dict:
        if not str(object_id).isdigit():
            raise Fatal(f"hubspot: {object_id!r} is not a {kind} id", 400)
        props = [key for key, _, _ in _STANDARD[kind]]
        record = self.client.find(PATHS[kind], str(object_id), properties=props + self._custom_keys(kind),
                                  associations=_ASSOCIATIONS[kind] or None)
        if record is None:
            raise Fatal(f"hubspot: {kind} {object_id} was not found", 404)
        return flat(record) or {}

    def _custom_keys(self, kind: str) -> list[str]:
        name = _FIELD_CATALOG.get(kind)
        if name is None:
            return []
        try:
            return [f["key"] for f in self.ctx.catalog(name) if f.get("custom")]
        except Fatal:
            return []

    def load(self, kind: str, object_id: str, current: dict | None, carry: Carry,
             warnings: list[str]) -> SourceRecord:
        kind = kind_of(kind)
        data = dict(current) if current else self.read(kind, object_id)
        ident = str(data.get("id") or object_id)
        record = SourceRecord(kind=kind, id=ident, data=data, raw=dict(data), url=self.url(kind, ident),
                              title=title_of(kind, data))
        self._names(record, warnings)
        self._custom(record, warnings)
        if kind == "deal":
            record.amount = format_money(data.get("amount"), data.get("deal_currency_code"))
        if carry.contacts:
            self._contacts(record, warnings)
        return record

    def _catalog(self, name: str, warnings: list[str]) -> Any:
        try:
            return self.ctx.catalog(name)
        except Fatal as exc:   # names are a nicety: a refused metadata call must not fail the run
            warnings.append(f"the list of {name.replace('_', ' ')} is unavailable: {exc}")
            return None

    def _names(self, record: SourceRecord, warnings: list[str]) -> None:
        data, kind = record.data, record.kind
        if kind in ("deal", "lead"):
            catalog = "deal_pipelines" if kind == "deal" else "lead_pipelines"
            pipe_key, stage_key = ("pipeline", "dealstage") if kind == "deal" else ("hs_pipeline", "hs_pipeline_stage")
            for p in self._catalog(catalog, warnings) or []:
                stage = next((s for s in p["stages"] if s["id"] == str(data.get(stage_key))), None)
                if p["id"] == str(data.get(pipe_key)) or stage is not None:
                    record.pipeline = p["name"]
                    if stage is not None:
                        record.stage = stage["name"]
                        record.status = (stage.get("outcome") or "open") if kind == "deal" else stage.get("state")
        if kind == "task":
            record.status = "completed" if str(data.get("hs_task_status")).upper() == "COMPLETED" else "open"
        if data.get("hubspot_owner_id"):
            owners = self._catalog("owners", warnings) or []
            record.owner = next((o["name"] for o in owners if o["id"] == str(data["hubspot_owner_id"])), None)

    def _custom(self, record: SourceRecord, warnings: list[str]) -> None:
        name = _FIELD_CATALOG.get(record.kind)
        if name is None:
            return
        for entry in self._catalog(name, warnings) or []:
            value = record.data.get(entry["key"])
            if entry.get("custom") and value not in (None, ""):
                labels = {o["id"]: o["label"] for o in entry.get("options") or []}
                record.fields[entry["label"]] = ", ".join(labels.get(v, v) for v in str(value).split(";")) \
                    if labels else value

    def _contacts(self, record: SourceRecord, warnings: list[str]) -> None:
        links = record.data.get("associations") or {}
        if record.kind == "person":
            record.person = {**record.data, "name": record.title}
        elif links.get("contacts"):
            record.person = self._optional("person", links["contacts"][0], warnings)
        if record.kind == "organization":
            record.org = record.data
        elif links.get("companies"):
            record.org = self._optional("organization", links["companies"][0], warnings)

    def _optional(self, kind: str, ident: Any, warnings: list[str]) -> dict | None:
        """A deleted contact leaves a hole in the task, not a failed run."""
        record = self.client.find(PATHS[kind], str(ident), properties=[k for k, _, _ in _STANDARD[kind]])
        if record is None:
            warnings.append(f"{kind} {ident} no longer exists in HubSpot")
            return None
        data = flat(record) or {}
        data.setdefault("name", title_of(kind, data))
        return data

    # -- the preview's picker ---------------------------------------------------------------------
    def recent(self, kind: str, limit: int = 20) -> list[SourceRecord]:
        kind = kind_of(kind)
        limit = max(1, min(int(limit), 100))
        items = self.client.recent(PATHS[kind], limit, [k for k, _, _ in _STANDARD[kind]])
        return [self.load(kind, str(item["id"]), flat(item), Carry(), []) for item in items[:limit]]

    def file_chunks(self, file: dict[str, Any]) -> Iterator[bytes]:
        raise Fatal("hubspot: records carry no files a rule copies", 400)

    # -- fields -----------------------------------------------------------------------------------
    def fields(self, kind: str) -> list[FieldInfo]:
        """Standard properties (pipelines, stages, owners, lifecycle stages as options) and the
        account's custom ones. Raises Fatal when a list cannot be loaded."""
        kind = kind_of(kind)
        options: dict[str, tuple[tuple[str, str], ...]] = {}
        owners = tuple((o["id"], o["name"]) for o in self.ctx.catalog("owners"))
        options["hubspot_owner_id"] = owners
        if kind in ("deal", "lead"):
            pipes = self.ctx.catalog("deal_pipelines" if kind == "deal" else "lead_pipelines")
            pipe_key, stage_key = ("pipeline", "dealstage") if kind == "deal" else ("hs_pipeline", "hs_pipeline_stage")
            options[pipe_key] = tuple((p["id"], p["name"]) for p in pipes)
            options[stage_key] = tuple((s["id"], f"{p['name']}: {s['name']}") for p in pipes for s in p["stages"])
        if kind == "lead":
            options["hs_lead_disqualification_reason"] = tuple(
                (r["id"], r["name"]) for r in self.ctx.catalog("disqualification_reasons"))
        if kind in ("person", "organization"):
            options["lifecyclestage"] = tuple((s["id"], s["name"]) for s in self.ctx.catalog("lifecycle_stages"))
        if kind == "task":
            options.update(hs_task_status=TASK_STATUSES, hs_task_priority=PRIORITIES,
                           hs_task_type=tuple((t["id"], t["name"]) for t in self.ctx.catalog("task_types")))
        out = [FieldInfo(key, label, type_, options.get(key, ())) for key, label, type_ in _STANDARD[kind]]
        standard = {f.key for f in out}
        name = _FIELD_CATALOG.get(kind)
        if name is not None:
            for entry in self.ctx.catalog(name):
                if entry.get("custom") and entry["key"] not in standard:
                    out.append(FieldInfo(entry["key"], entry["label"], _neutral_type(entry),
                                         tuple((o["id"], o["label"]) for o in entry.get("options") or []), custom=True))
        return out

    def value(self, kind: str, data: dict[str, Any], key: str) -> Any:
        return comparable(data, key)


def _neutral_type(entry: dict) -> str:
    kind, field = entry.get("type"), entry.get("field_type")
    if field == "checkbox" and kind == "enumeration":
        return "set"
    return {"number": "number", "date": "date", "datetime": "date", "enumeration": "enum",
            "bool": "bool"}.get(kind, "text")


def comparable(data: dict[str, Any], key: str) -> Any:
    """HubSpot sends every property as text: empty is None, numbers as numbers, a multiple
    checkbox (`a;b`) as a list of its values."""
    value = data.get(key)
    if value in (None, ""):
        return None
    if key in _NUMBERS:
        try:
            return float(value)
        except (TypeError, ValueError):
            return value
    if isinstance(value, str) and ";" in value:
        return [v for v in value.split(";") if v]
    return value
