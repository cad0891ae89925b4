"""Bitrix24 as the CRM side of a rule: deals, leads, contacts, companies and tasks as neutral
`SourceRecord`s. The object is the state the event carried when there is one; the deal's contact
and company are read when the step asks (`Carry.contacts`), both in one `batch`. Pipeline, stage,
status and user names and the labels of custom (UF_) fields come from the connection's catalogs
(the core's cache), so a run costs no metadata calls; a catalog that cannot be loaded costs the
names (a warning), never the run. Bitrix24 gives a rule no files or notes to carry."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Iterator

from ...errors import Fatal
from ..contract.records import Carry, FieldInfo, SourceContext, SourceRecord, format_money
from . import statuses
from .client import Bitrix24Client

KINDS = ("deal", "lead", "contact", "company", "task")
_ALIASES = {"person": "contact", "organization": "company"}
_GET = {"deal": "crm.deal.get", "lead": "crm.lead.get", "contact": "crm.contact.get", "company": "crm.company.get"}
_LIST = {"deal": "crm.deal.list", "lead": "crm.lead.list", "contact": "crm.contact.list",
         "company": "crm.company.list"}
_FIELD_CATALOG = {"deal": "deal_fields", "lead": "lead_fields"}

_STANDARD: dict[str, tuple[tuple[str, str, str], ...]] = {
    "deal": (("TITLE", "Title", "text"), ("OPPORTUNITY", "Amount", "money"), ("CURRENCY_ID", "Currency", "text"),
             ("CATEGORY_ID", "Pipeline", "enum"), ("STAGE_ID", "Stage", "enum"),
             ("STAGE_SEMANTIC_ID", "Stage group (P, S won, F lost)", "enum"), ("ASSIGNED_BY_ID", "Responsible", "user"),
             ("CONTACT_ID", "Contact", "text"), ("COMPANY_ID", "Company", "text"), ("CLOSED", "Closed", "bool"),
             ("BEGINDATE", "Start date", "date"), ("CLOSEDATE", "Close date", "date"),
             ("DATE_CREATE", "Created", "date"), ("SOURCE_ID", "Source", "text"), ("COMMENTS", "Comment", "text")),
    "lead": (("TITLE", "Title", "text"), ("NAME", "First name", "text"), ("LAST_NAME", "Last name", "text"),
             ("COMPANY_TITLE", "Company name", "text"), ("STATUS_ID", "Status", "enum"),
             ("STATUS_SEMANTIC_ID", "Status group (P, S converted, F junk)", "enum"),
             ("OPPORTUNITY", "Amount", "money"), ("CURRENCY_ID", "Currency", "text"),
             ("ASSIGNED_BY_ID", "Responsible", "user"), ("SOURCE_ID", "Source", "text"),
             ("DATE_CREATE", "Created", "date")),
    "contact": (("NAME", "First name", "text"), ("LAST_NAME", "Last name", "text"), ("POST", "Position", "text"),
                ("COMPANY_ID", "Company", "text"), ("ASSIGNED_BY_ID", "Responsible", "user"),
                ("DATE_CREATE", "Created", "date")),
    "company": (("TITLE", "Name", "text"), ("COMPANY_TYPE", "Type", "text"), ("INDUSTRY", "Industry", "text"),
                ("ASSIGNED_BY_ID", "Responsible", "user"), ("DATE_CREATE", "Created", "date")),
    "task": (("title", "Title", "text"), ("status", "Status (2 pending, 3 in progress, 4 awaiting control, "
                                                    "5 completed, 6 deferred)", "enum"),
             ("priority", "Priority", "enum"), ("responsibleId", "Responsible", "user"),
             ("createdBy", "Created by", "user"), ("deadline", "Deadline", "date"),
             ("taskControl", "Control on completion", "bool"), ("description", "Description", "text")),
}


def kind_of(kind: str) -> str:
    kind = _ALIASES.get(kind, kind)
    if kind not in KINDS:
        raise Fatal(f"bitrix24: no records of kind {kind!r} (known: {', '.join(KINDS)})", 400)
    return kind


def portal(api_base: str) -> str:
    """`https://acme.bitrix24.com/rest` -> `https://acme.bitrix24.com` (where people open things)."""
    base = api_base.rstrip("/")
    return base[:-len("/rest")] if base.endswith("/rest") else base


def status(kind: str, data: dict) -> str | None:
    if kind == "deal":
        return {"S": "won", "F": "lost"}.get(str(data.get("STAGE_SEMANTIC_ID") or ""), "open")
    if kind == "lead":
        return {"S": "converted", "F": "closed"}.get(str(data.get("STATUS_SEMANTIC_ID") or ""), "open")
    if kind == "task":
        return statuses.neutral(data)
    return None


def _name(data: dict) -> str:
    return " ".join(str(p) for p in (data.get("NAME"), data.get("LAST_NAME")) if p)


def _first(value: Any) -> str:
    """A multi-field (PHONE, EMAIL: [{VALUE, VALUE_TYPE}]) as its first value."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return str(value[0].get("VALUE") or "")
    return str(value or "")


class Bitrix24Source:
    def __init__(self, ctx: SourceContext):
        self.ctx = ctx
        self.client: Bitrix24Client = ctx.client
        self.base = portal(ctx.api_base)

    def url(self, kind: str, object_id: Any, data: dict | None = None) -> str:
        if kind == "task":
            user = statuses._get(data or {}, "responsibleId") or 0
            return f"{self.base}/company/personal/user/{user}/tasks/task/view/{object_id}/"
        return f"{self.base}/crm/{kind}/details/{object_id}/"

    def read(self, kind: str, object_id: Any) -> dict | None:
        text = str(object_id).strip()
        if not text.isdigit():
            raise Fatal(f"bitrix24: {object_id!r} is not a {kind} id", 400)
        if kind == "task":
            return self.client.task(text)
        return self.client.get_or_none(_GET[kind], text)

    def _catalog(self, name: str, warnings: list[str]) -> Any:
        try:
            return self.ctx.catalog(name)
        except Exception as exc:   # names are a nicety: a run goes on without them
            warnings.append(f"Bitrix24 {name} could not be read ({exc}); ids are shown instead of names")
            return None

    def load(self, kind: str, object_id: str, current: dict | None, carry: Carry,
             warnings: list[str]) -> SourceRecord:
        kind = kind_of(kind)
        data = dict(current) if current else self.read(kind, object_id)
        if not data:
            raise Fatal(f"bitrix24: {kind} {object_id} was not found", 404)
        ident = str(statuses._get(data, "id") if kind == "task" else data.get("ID") or object_id)
        title = (statuses._get(data, "title") if kind == "task" else data.get("TITLE")) or _name(data) or ""
        record = SourceRecord(kind=kind, id=ident, data=data, raw=dict(data), url=self.url(kind, ident, data),
                              title=str(title), status=status(kind, data),
                              amount=format_money(data.get("OPPORTUNITY"), data.get("CURRENCY_ID"))
                              if kind in ("deal", "lead") else None)
        self._names(record, warnings)
        self._custom(record, warnings)
        if carry.contacts and kind in ("deal", "lead", "contact"):
            self._contacts(record)
        return record

    def _names(self, record: SourceRecord, warnings: list[str]) -> None:
        data = record.data
        owner = statuses._get(data, "responsibleId") if record.kind == "task" else data.get("ASSIGNED_BY_ID")
        if owner not in (None, ""):
            users = self._catalog("users", warnings) or []
            record.owner = next((u["name"] for u in users if u["id"] == str(owner)), None) or f"user {owner}"
        if record.kind == "deal":
            pipes = self._catalog("pipelines", warnings) or []
            category = str(data.get("CATEGORY_ID") or "0")
            pipe = next((p for p in pipes if p["id"] == category), None)
            record.pipeline = pipe["name"] if pipe else None
            stage = next((s for s in (pipe or {}).get("stages", []) if s["id"] == str(data.get("STAGE_ID"))), None)
            record.stage = stage["name"] if stage else data.get("STAGE_ID")
        elif record.kind == "lead":
            found = self._catalog("lead_statuses", warnings) or []
            item = next((s for s in found if s["id"] == str(data.get("STATUS_ID"))), None)
            record.stage = item["name"] if item else data.get("STATUS_ID")

    def _custom(self, record: SourceRecord, warnings: list[str]) -> None:
        name = _FIELD_CATALOG.get(record.kind)
        described = {f["key"]: f for f in (self._catalog(name, warnings) or [])} if name else {}
        for key, value in record.data.items():
            if not key.startswith("UF_") or value in (None, "", []):
                continue
            info = described.get(key) or {}
            options = {o["id"]: o["label"] for o in info.get("options") or []}
            shown = [options.get(str(v), v) for v in value] if isinstance(value, list) else options.get(str(value), value)
            record.fields[info.get("label") or key] = shown

    def _contacts(self, record: SourceRecord) -> None:
        data = record.data
        wanted: dict[str, tuple[str, Any]] = {}
        if record.kind != "contact" and str(data.get("CONTACT_ID") or "").isdigit() and data.get("CONTACT_ID") != "0":
            wanted["person"] = ("crm.contact.get", {"id": str(data["CONTACT_ID"])})
        if str(data.get("COMPANY_ID") or "").isdigit() and str(data.get("COMPANY_ID")) != "0":
            wanted["org"] = ("crm.company.get", {"id": str(data["COMPANY_ID"])})
        found, _ = self.client.batch(wanted) if wanted else ({}, {})
        person = data if record.kind == "contact" else found.get("person")
        if record.kind == "lead" and not person and (data.get("NAME") or data.get("LAST_NAME")):
            person = data
        if isinstance(person, dict):
            record.person = {"id": str(person.get("ID") or ""), "name": _name(person), "email": _first(person.get("EMAIL")),
                             "phone": _first(person.get("PHONE")), "position": person.get("POST") or ""}
        org = found.get("org")
        if isinstance(org, dict):
            record.org = {"id": str(org.get("ID") or ""), "name": org.get("TITLE") or "",
                          "address": org.get("ADDRESS") or ""}
        elif record.kind == "lead" and data.get("COMPANY_TITLE"):
            record.org = {"name": data["COMPANY_TITLE"]}

    def recent(self, kind: str, limit: int = 20) -> list[SourceRecord]:
        kind = kind_of(kind)
        out: list[SourceRecord] = []
        warnings: list[str] = []
        if kind == "task":
            items = self.client.tasks({}, order={"CHANGED_DATE": "DESC"})
        else:
            items = self.client.iter_list(_LIST[kind], {"order": {"DATE_MODIFY": "DESC"}, "select": ["*", "UF_*"]})
        for item in items:
            out.append(self.load(kind, "", item, Carry(), warnings))
            if len(out) >= limit:
                break
        return out

    def file_chunks(self, file: dict[str, Any]) -> Iterator[bytes]:
        raise Fatal("bitrix24: a rule carries no files from Bitrix24", 400)

    def fields(self, kind: str) -> list[FieldInfo]:
        kind = kind_of(kind)
        out = [FieldInfo(key, label, type_) for key, label, type_ in _STANDARD[kind]]
        name = _FIELD_CATALOG.get(kind)
        if name:
            try:
                described = self.ctx.catalog(name) or []
            except Exception:
                described = []
            for f in described:
                if f.get("custom"):
                    kind_ = {"enumeration": "set" if f.get("multiple") else "enum", "double": "number",
                             "integer": "number", "money": "money", "date": "date", "datetime": "date",
                             "boolean": "bool", "employee": "user"}.get(f.get("type"), "set" if f.get("multiple") else "text")
                    out.append(FieldInfo(f["key"], f["label"], kind_,
                                         tuple((o["id"], o["label"]) for o in f.get("options") or []), custom=True))
        return out

    def value(self, kind: str, data: dict[str, Any], key: str) -> Any:
        raw = statuses._get(data, key) if kind_of(kind) == "task" else data.get(key)
        if raw in (None, "", []):
            return None
        if key in ("OPPORTUNITY",) or (isinstance(raw, str) and key.startswith("UF_") and "|" in raw):
            text = str(raw).split("|", 1)[0]       # money UF values come as "100|EUR"
            try:
                number = Decimal(text)
            except (InvalidOperation, ValueError):
                return raw
            return int(number) if number == number.to_integral_value() else float(number)
        if isinstance(raw, list):
            return [str(v) for v in raw]
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw in ("Y", "N") and key in ("CLOSED", "taskControl", "OPENED"):
            return raw == "Y"
        return str(raw) if isinstance(raw, (int, float)) and key.endswith("_ID") else raw
