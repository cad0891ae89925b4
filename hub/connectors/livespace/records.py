"""Deals, persons, companies and tasks (todos) as neutral `SourceRecord`s, and the dropdown
loaders rules use: sales processes (the hub's pipelines) with their stages, users, task types.

Decimals come as Polish strings ("1 234,50"); they are read as numbers for conditions and written
in the hub's one spelling for people. Names of owners come from the users catalog through the
core's cache, so a record costs at most one read (none when the event carried the object)."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Iterator

from hub.connectors.contract.records import Carry, Catalog, FieldInfo, SourceContext, SourceRecord, format_money
from hub.errors import Fatal

KINDS = ("deal", "person", "company", "task")
EVER = "1970-01-01 00:00:00"     # Deal/getAll needs a condition: "modified since ever"
PATHS = {"deal": "deal", "person": "contact", "company": "company", "task": "todo"}   # web app paths [U]


def decimal_of(value: Any) -> Decimal | None:
    """"1 234,50" (or 1234.5) -> Decimal("1234.50"); None when it is no number."""
    if value in (None, ""):
        return None
    text = str(value).replace("\u00a0", "").replace(" ", "")
    if "," in text:
        text = text.replace(".", "").replace(",", ".")
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _names(loaded: Any) -> dict[str, str]:
    return {str(item["id"]): item["name"] for item in loaded or ()}


class LivespaceSource:
    def __init__(self, ctx: SourceContext):
        self.ctx = ctx
        self.client = ctx.client
        self.base = ctx.api_base.rstrip("/")

    def _kind(self, kind: str) -> None:
        if kind not in KINDS:
            raise Fatal(f"livespace: no {kind} objects (deals, persons, companies and tasks)", 400)

    def url(self, kind: str, object_id: str) -> str:
        return f"{self.base}/{PATHS[kind]}/{object_id}"

    def _read(self, kind: str, object_id: str) -> dict:
        if kind == "deal":
            return self.client.deal(object_id)
        if kind == "task":
            return self.client.todo(object_id)
        return self.client.contact(kind, object_id)

    def load(self, kind: str, object_id: str, current: dict | None, carry: Carry,
             warnings: list[str]) -> SourceRecord:
        self._kind(kind)
        data = dict(current) if current else self._read(kind, object_id)
        ident = str(data.get("id") or object_id)
        record = SourceRecord(kind=kind, id=ident, data=data, raw=dict(data), url=self.url(kind, ident),
                              title=data.get("title") if kind == "task" else data.get("name") or "")
        record.title = record.title or ""
        try:
            users = _names(self.ctx.catalog("users"))
        except Fatal as exc:     # names are a nicety: a refused catalog call must not fail the run
            warnings.append(f"owner names unavailable: {exc}")
            users = {}
        record.owner = users.get(str(data.get("owner_id")))
        if kind == "deal":
            record.status = data.get("status")
            number = decimal_of(data.get("value"))
            record.amount = format_money(number, data.get("currency")) if number is not None else None
            record.pipeline, record.stage = data.get("process_name"), data.get("stage_name")
            if carry.contacts:
                self._parties(record, data, warnings)
        elif kind == "task":
            record.status = "completed" if str(data.get("is_completed")) == "1" else "open"
        elif kind == "person":
            emails = data.get("emails") or []
            record.person = {"name": record.title, "email": emails[0] if emails else "",
                             "phone": (data.get("phones") or [""])[0]}
        return record

    def _parties(self, record: SourceRecord, deal: dict, warnings: list[str]) -> None:
        try:
            if deal.get("contact_id"):
                person = self.client.contact("person", str(deal["contact_id"]))
                emails = person.get("emails") or []
                record.person = {"name": person.get("name") or "", "email": emails[0] if emails else ""}
            if deal.get("company_id"):
                record.org = {"name": self.client.contact("company", str(deal["company_id"])).get("name") or ""}
        except Fatal as exc:
            warnings.append(f"the deal's person or company could not be read: {exc}")

    def recent(self, kind: str, limit: int = 20) -> list[SourceRecord]:
        self._kind(kind)
        limit = max(1, min(int(limit), 100))
        if kind == "deal":
            rows = self.client.deals(limit, modified_from=EVER)
        elif kind == "task":
            rows = self.client.todos(limit)
        else:
            rows = self.client.contacts(kind, limit)
        return [self.load(kind, str(row["id"]), row, Carry(), []) for row in rows]

    def file_chunks(self, file: dict[str, Any]) -> Iterator[bytes]:
        raise Fatal("livespace: the hub copies no files from Livespace", 400)

    def value(self, kind: str, data: dict[str, Any], key: str) -> Any:
        """Ids as text for enums and users, a plain number for money, a bool for completion."""
        self._kind(kind)
        name = key.split(".", 1)[1] if key.startswith(f"{kind}.") else key
        value = data.get(name)
        if value in (None, ""):
            return None
        if name in ("value", "value_final"):
            number = decimal_of(value)
            return float(number) if number is not None else None
        if name in ("is_completed", "is_private"):
            return str(value).lower() in ("1", "true")
        if isinstance(value, (list, dict)):
            return value
        return str(value)

    def fields(self, kind: str) -> list[FieldInfo]:
        self._kind(kind)
        users = FieldInfo(f"{kind}.owner_id", "Owner" if kind != "task" else "Responsible", "user")
        if kind == "task":
            types = tuple((t["id"], t["name"]) for t in self.ctx.catalog("task_types") or ())
            return [FieldInfo("task.title", "Title"), FieldInfo("task.type_id", "Task type", "enum", types),
                    FieldInfo("task.is_completed", "Completed", "bool"), users]
        if kind in ("person", "company"):
            return [FieldInfo(f"{kind}.name", "Name"), users] if kind == "person" else [FieldInfo("company.name", "Name")]
        processes = self.ctx.catalog("pipelines") or ()
        return [FieldInfo("deal.name", "Name"), FieldInfo("deal.value", "Value", "money"),
                FieldInfo("deal.status", "Status", "enum", (("open", "Open"), ("won", "Won"), ("lost", "Lost"))),
                FieldInfo("deal.process_id", "Sales process", "enum", tuple((p["id"], p["name"]) for p in processes)),
                FieldInfo("deal.stage_id", "Stage", "enum",
                          tuple((s["id"], f"{p['name']}: {s['name']}") for p in processes for s in p["stages"])),
                users]


# -- catalogs ---------------------------------------------------------------------------------------
def pipelines(client: Any) -> list[dict[str, Any]]:
    """Sales processes, each with its stages in order."""
    return [{"id": str(p["id"]), "name": p.get("name") or "",
             "stages": [{"id": str(s["id"]), "name": s.get("name") or ""}
                        for s in sorted(p.get("stages") or (), key=lambda s: s.get("order") or 0)]}
            for p in client.processes()]


def stages(client: Any) -> list[dict[str, Any]]:
    return [{"id": s["id"], "name": s["name"], "pipeline_id": p["id"], "pipeline": p["name"]}
            for p in pipelines(client) for s in p["stages"]]


def users(client: Any) -> list[dict[str, Any]]:
    return [{"id": str(u["id"]), "name": u.get("name") or " ".join(filter(None, (u.get("firstname"), u.get("lastname")))),
             "email": u.get("email") or ""} for u in client.users()]


def task_types(client: Any) -> list[dict[str, Any]]:
    return [{"id": str(t["id"]), "name": t.get("name") or ""} for t in client.todo_types()]


CATALOGS: dict[str, Catalog] = {c.name: c for c in (
    Catalog("pipelines", "Sales processes and their stages", pipelines),
    Catalog("stages", "Stages", stages),
    Catalog("users", "Users", users),
    Catalog("task_types", "Task types", task_types),
)}
