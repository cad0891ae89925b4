"""Pipedrive as the CRM side of a rule: deals, leads, persons and organizations as neutral
`SourceRecord`s, a preview's record picker, file streams and the fields conditions may name.

The object itself is the state the event carried (what the rule matched on) when there is one;
contacts, pinned notes and files are read when the run happens, and only when the step asks
(`Carry`). Pipeline, stage and owner names and custom-field labels come from the connection's
catalogs (the core's cache), so a run costs no metadata calls; a catalog that cannot be loaded
costs the names (a warning), never the run."""
from __future__ import annotations

import itertools
import mimetypes
from typing import Any, Iterator

from ...errors import Fatal
from ..contract.records import Carry, FieldInfo, SourceContext, SourceRecord
from . import fields as f
from .client import PipedriveClient

KINDS = ("deal", "lead", "person", "organization", "task")      # task: an activity

# kind -> (notes filter, the flag a pinned note carries)
_NOTES = {"deal": ("deal_id", "pinned_to_deal_flag"), "lead": ("lead_id", "pinned_to_lead_flag"),
          "person": ("person_id", "pinned_to_person_flag"), "organization": ("org_id", "pinned_to_organization_flag")}
# kind -> the catalog of its fields (organizations have no field catalog here)
_FIELD_CATALOG = {"deal": "deal_fields", "lead": "deal_fields", "person": "person_fields"}
_URL = {"deal": "deal/{}", "lead": "leads/inbox/{}", "person": "person/{}", "organization": "organization/{}",
        "task": "activities/list"}

# The standard fields conditions and templates may name: (key, label, neutral type)
_STANDARD: dict[str, tuple[tuple[str, str, str], ...]] = {
    "deal": (("title", "Title", "text"), ("value", "Value", "money"), ("currency", "Currency", "text"),
             ("status", "Status", "enum"), ("pipeline_id", "Pipeline", "enum"), ("stage_id", "Stage", "enum"),
             ("owner_id", "Owner", "user"), ("person_id", "Contact person", "text"),
             ("org_id", "Organization", "text"), ("probability", "Probability", "number"),
             ("expected_close_date", "Expected close date", "date"), ("lost_reason", "Lost reason", "text"),
             ("add_time", "Created", "date"), ("won_time", "Won", "date"), ("lost_time", "Lost", "date")),
    "lead": (("title", "Title", "text"), ("value", "Value", "money"), ("owner_id", "Owner", "user"),
             ("person_id", "Contact person", "text"), ("organization_id", "Organization", "text"),
             ("source_name", "Source", "text"), ("expected_close_date", "Expected close date", "date"),
             ("add_time", "Created", "date")),
    "person": (("name", "Name", "text"), ("emails", "Email", "text"), ("phones", "Phone", "text"),
               ("owner_id", "Owner", "user"), ("org_id", "Organization", "text"), ("add_time", "Created", "date")),
    "organization": (("name", "Name", "text"), ("address", "Address", "text"), ("owner_id", "Owner", "user"),
                     ("add_time", "Created", "date")),
    "task": (("subject", "Subject", "text"), ("type", "Type", "enum"), ("owner_id", "Assigned to", "user"),
             ("done", "Done", "bool"), ("due_date", "Due date", "date"), ("deal_id", "Deal", "text"),
             ("person_id", "Contact person", "text"), ("org_id", "Organization", "text"),
             ("note", "Note", "text")),
}


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise Fatal(f"pipedrive: no records of kind {kind!r} (known: {', '.join(KINDS)})", 400)
    return kind


def amount(kind: str, data: dict) -> str | None:
    value = data.get("value")
    if isinstance(value, dict):                          # leads: {amount, currency}
        return f.format_money(value.get("amount"), value.get("currency"))
    return f.format_money(value, data.get("currency")) if kind == "deal" else None


def status(kind: str, data: dict) -> str | None:
    if kind == "deal":
        return "deleted" if data.get("is_deleted") else data.get("status")
    if kind == "lead":
        return "archived" if data.get("is_archived") else "open"
    if kind == "task":
        return "deleted" if data.get("is_deleted") else "completed" if data.get("done") else "open"
    return None


class PipedriveSource:
    """One connection's CRM objects (made per run or page view: `PipedriveSource(ctx)`)."""

    def __init__(self, ctx: SourceContext):
        self.ctx = ctx
        self.client: PipedriveClient = ctx.client
        self.base = ctx.api_base.rstrip("/")

    def url(self, kind: str, object_id: Any, data: dict | None = None) -> str:
        if kind == "task" and data and data.get("deal_id"):      # an activity opens on its deal
            return self.url("deal", data["deal_id"])
        return f"{self.base}/{_URL[kind].format(object_id)}"

    # -- reading ----------------------------------------------------------------------------------
    def read(self, kind: str, object_id: Any) -> dict:
        c = self.client
        try:
            if kind == "lead":
                return c.lead(str(object_id))
            number = int(object_id)
        except (TypeError, ValueError):
            raise Fatal(f"pipedrive: {object_id!r} is not a {kind} id", 400) from None
        if kind == "task":
            return c.json("GET", "/api/v2/activities/{activity_id}", path_params={"activity_id": number})["data"]
        return {"deal": c.deal, "person": c.person, "organization": c.organization}[kind](number)

    def load(self, kind: str, object_id: str, current: dict | None, carry: Carry,
             warnings: list[str]) -> SourceRecord:
        """`current`: the object as the event saw it (None: read it now, e.g. for a preview)."""
        _kind(kind)
        data = dict(current) if current else self.read(kind, object_id)
        if not data:
            raise Fatal(f"pipedrive: {kind} {object_id} was not found", 404)
        ident = data.get("id", object_id)
        record = SourceRecord(kind=kind, id=str(ident), data=data, raw=dict(data), url=self.url(kind, ident, data),
                              title=str(data.get("title") or data.get("name") or data.get("subject") or ""),
                              status=status(kind, data),
                              amount=amount(kind, data))
        self._names(record, warnings)
        self._custom(record, warnings)
        c = self.client
        if carry.contacts:
            person_id = data.get("person_id") if kind != "person" else None
            org_id = data.get("org_id") or data.get("organization_id") if kind != "organization" else None
            record.person = data if kind == "person" else \
                self._optional(lambda: c.person(int(person_id)), "person", person_id, warnings) if person_id else None
            record.org = data if kind == "organization" else \
                self._optional(lambda: c.organization(int(org_id)), "organization", org_id, warnings) if org_id else None
        if carry.notes and kind in _NOTES:
            record.notes = self.pinned_notes(kind, ident)
        if carry.attachments and kind == "deal":
            record.files = [_file(x) for x in c.deal_files(int(ident)) if x.get("active_flag", True)]
        return record

    def _catalog(self, name: str, warnings: list[str]) -> Any:
        try:
            return self.ctx.catalog(name)
        except Fatal as exc:   # names are a nicety: a refused metadata call must not fail the run
            warnings.append(f"the list of {name.replace('_', ' ')} is unavailable: {exc}")
            return None

    def _names(self, record: SourceRecord, warnings: list[str]) -> None:
        data = record.data
        if record.kind == "deal" and (data.get("pipeline_id") or data.get("stage_id")):
            for p in self._catalog("pipelines", warnings) or []:
                if p["id"] == str(data.get("pipeline_id")):
                    record.pipeline = p["name"]
                    record.stage = next((s["name"] for s in p["stages"] if s["id"] == str(data.get("stage_id"))), None)
        if data.get("owner_id"):
            owner = data["owner_id"]
            owner = owner.get("id") if isinstance(owner, dict) else owner
            users = self._catalog("users", warnings) or []
            record.owner = next((u["name"] for u in users if u["id"] == str(owner)), None)

    def _custom(self, record: SourceRecord, warnings: list[str]) -> None:
        """Custom fields by their label, as readable text (option labels, formatted money)."""
        name = _FIELD_CATALOG.get(record.kind)
        if name is None:
            return
        for entry in self._catalog(name, warnings) or []:
            if entry.get("custom"):
                text = f.readable(record.data, entry)
                if text is not None:
                    record.fields[entry["label"]] = text

    def pinned_notes(self, kind: str, object_id: Any) -> list[dict]:
        by, flag = _NOTES[kind]
        if kind == "deal":
            notes = self.client.deal_notes(int(object_id), pinned_only=True)
        else:
            notes = self.client.iter_offset("/api/v1/notes", {by: str(object_id)})
        return [{"id": str(n.get("id")), "content": n.get("content") or "", "pinned": True, "added": n.get("add_time")}
                for n in notes if n.get(flag, kind == "deal")]

    @staticmethod
    def _optional(load, what: str, ident: Any, warnings: list[str]) -> dict | None:
        """A deleted contact leaves a hole in the task, not a failed run."""
        try:
            return load()
        except Fatal as exc:
            if exc.status in (404, 410):
                warnings.append(f"{what} {ident} no longer exists in Pipedrive")
                return None
            raise

    # -- the preview's picker ---------------------------------------------------------------------
    def recent(self, kind: str, limit: int = 20) -> list[SourceRecord]:
        """The most recently updated objects of `kind`, read in one call."""
        _kind(kind)
        limit = max(1, min(int(limit), 100))
        if kind == "lead":
            body = self.client.json("GET", "/api/v1/leads", params={"sort": "update_time DESC", "start": 0,
                                                                   "limit": limit})
        else:
            path = {"deal": "/api/v2/deals", "person": "/api/v2/persons", "organization": "/api/v2/organizations",
                    "task": "/api/v2/activities"}[kind]
            body = self.client.json("GET", path, params={"sort_by": "update_time", "sort_direction": "desc",
                                                        "limit": limit})
        items = (body or {}).get("data") or []
        return [self.load(kind, str(item["id"]), item, Carry(), []) for item in items[:limit]]

    # -- files ------------------------------------------------------------------------------------
    def file_chunks(self, file: dict[str, Any]) -> Iterator[bytes]:
        """The file's bytes as a stream, started now so a missing file fails before any upload."""
        chunks = self.client.download_file(int(file["id"]))
        first = next(chunks, b"")
        return itertools.chain([first], chunks)

    # -- fields -----------------------------------------------------------------------------------
    def fields(self, kind: str) -> list[FieldInfo]:
        """Standard fields (with the company's pipelines, stages and users as options) and the
        custom ones with their types and options. Raises Fatal when a list cannot be loaded."""
        _kind(kind)
        options: dict[str, tuple[tuple[str, str], ...]] = {"status": f.STATUS_OPTIONS}
        if kind == "deal":
            pipelines = self.ctx.catalog("pipelines")
            options["pipeline_id"] = tuple((p["id"], p["name"]) for p in pipelines)
            options["stage_id"] = tuple((s["id"], f"{p['name']}: {s['name']}") for p in pipelines for s in p["stages"])
        if kind == "task":
            options["type"] = tuple((t["key"], t["name"]) for t in self.ctx.catalog("activity_types"))
        options["owner_id"] = tuple((u["id"], u["name"]) for u in self.ctx.catalog("users"))
        out = [FieldInfo(key, label, kind_, options.get(key, ())) for key, label, kind_ in _STANDARD[kind]]
        name = _FIELD_CATALOG.get(kind)
        if name is not None:
            out += [f.field_info(e) for e in self.ctx.catalog(name) if e.get("custom")]
        return out

    def value(self, kind: str, data: dict[str, Any], key: str) -> Any:
        return f.comparable(data, key)


def _file(x: dict) -> dict[str, Any]:
    name = x.get("name") or x.get("file_name") or f"file-{x.get('id')}"
    return {"id": str(x["id"]), "name": name, "size": x.get("file_size"),
            "mime": mimetypes.guess_type(name)[0] or "application/octet-stream"}
