"""Deals and tasks as neutral `SourceRecord`s, and the dropdown loaders (stages, users) rules and
templates use.

Names (stage, owner) come from the catalogs through the core's cache, so loading a record costs at
most one call (none when the event carried the deal)."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Iterator

from hub.connectors.contract.records import Carry, Catalog, FieldInfo, SourceContext, SourceRecord
from hub.errors import Fatal

KINDS = ("deal", "task")


def money(amount: Any, currency: Any) -> str | None:
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return None
    return f"{value:,.2f} {currency}".strip() if currency else f"{value:,.2f}"


def _names(loaded: Any) -> dict[str, str]:
    return {str(item["id"]): item["name"] for item in loaded or ()}


class ExampleSource:
    def __init__(self, ctx: SourceContext):
        self.ctx = ctx
        self.client = ctx.client
        self.base = ctx.api_base.rstrip("/")

    def _kind(self, kind: str) -> None:
        if kind not in KINDS:
            raise Fatal(f"example: no {kind} objects (deals and tasks only)", 400)

    def load(self, kind: str, object_id: str, current: dict | None, carry: Carry,
             warnings: list[str]) -> SourceRecord:
        self._kind(kind)
        if current:
            data = dict(current)
        else:
            data = self.client.deal(object_id) if kind == "deal" else self.client.task(object_id)
        ident = str(data.get("id", object_id))
        if kind == "task":
            return SourceRecord(kind=kind, id=ident, data=data, raw=dict(data), url=data.get("url") or "",
                                title=data.get("title") or "", status=data.get("status"))
        record = SourceRecord(kind=kind, id=ident, data=data, raw=dict(data), url=f"{self.base}/deals/{ident}",
                              title=data.get("title") or "", status=data.get("status"),
                              amount=money(data.get("amount"), data.get("currency")))
        try:
            record.stage = _names(self.ctx.catalog("stages")).get(str(data.get("stage_id")))
            record.owner = _names(self.ctx.catalog("users")).get(str(data.get("owner_id")))
        except Fatal as exc:   # names are a nicety: a refused catalog call must not fail the run
            warnings.append(f"stage or owner names unavailable: {exc}")
        return record

    def recent(self, kind: str, limit: int = 20) -> list[SourceRecord]:
        self._kind(kind)
        rows = self.client.deals(limit) if kind == "deal" else self.client.tasks(limit)
        return [self.load(kind, str(row["id"]), row, Carry(), []) for row in rows]

    def file_chunks(self, file: dict[str, Any]) -> Iterator[bytes]:
        raise Fatal("example: deals carry no files", 400)

    def value(self, kind: str, data: dict[str, Any], key: str) -> Any:
        """Conditions compare ids for enums and users, a plain number for money."""
        self._kind(kind)
        name = key.split(".", 1)[1] if key.startswith(f"{kind}.") else key
        value = data.get(name)
        if value in (None, ""):
            return None
        if name == "amount":
            try:
                return float(Decimal(str(value)))
            except (InvalidOperation, ValueError):
                return None
        return str(value) if name in ("stage_id", "owner_id", "assignee_id", "deal_id") else value

    def fields(self, kind: str) -> list[FieldInfo]:
        self._kind(kind)
        if kind == "task":
            return [FieldInfo("task.title", "Title"),
                    FieldInfo("task.status", "Status", "enum", (("open", "Open"), ("completed", "Completed"))),
                    FieldInfo("task.assignee_id", "Assignee", "user")]
        stages = tuple((str(s["id"]), s["name"]) for s in self.ctx.catalog("stages") or ())
        return [FieldInfo("deal.title", "Title"),
                FieldInfo("deal.amount", "Amount", "money"),
                FieldInfo("deal.stage_id", "Stage", "enum", stages),
                FieldInfo("deal.status", "Status", "enum", (("open", "Open"), ("won", "Won"), ("lost", "Lost"))),
                FieldInfo("deal.owner_id", "Owner", "user")]


CATALOGS = {
    "stages": Catalog("stages", "Stages", lambda client: [{"id": str(s["id"]), "name": s["name"]}
                                                          for s in client.stages()]),
    "users": Catalog("users", "Users", lambda client: [{"id": str(u["id"]), "name": u["name"], "email": u["email"]}
                                                       for u in client.users()]),
}
