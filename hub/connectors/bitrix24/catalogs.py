"""The dropdown lists a Bitrix24 connection offers. Each loader reads the API afresh and returns
JSON-able data with ids as strings; the core caches the value per connection.

Stages come per deal pipeline (`crm.status.list`, ENTITY_ID `DEAL_STAGE` for the default pipeline
0, `DEAL_STAGE_<id>` for the others), all pipelines' stages in one `batch`. Each stage carries its
semantics: P in progress, S won, F lost (FACTS §6)."""
from __future__ import annotations

from typing import Any

from ..contract.records import Catalog

PRIORITIES = ({"id": "0", "name": "Low"}, {"id": "1", "name": "Normal"}, {"id": "2", "name": "High"})
_SEMANTICS = {"S": "S", "SUCCESS": "S", "F": "F", "FAILURE": "F", "APOLOGY": "F", "P": "P", "PROCESS": "P"}


def semantics(status: dict[str, Any]) -> str:
    """A stage's S / F / P, wherever the answer puts it (`SEMANTICS`, `EXTRA.SEMANTICS`)."""
    extra = status.get("EXTRA") if isinstance(status.get("EXTRA"), dict) else {}
    value = status.get("SEMANTICS") or extra.get("SEMANTICS") or ""
    return _SEMANTICS.get(str(value).upper(), "P")


def stage_entity(category_id: str) -> str:
    return "DEAL_STAGE" if str(category_id) in ("", "0") else f"DEAL_STAGE_{category_id}"


def pipelines(client: Any) -> list[dict[str, Any]]:
    """Deal pipelines, the default one first, each with its stages in order."""
    categories = client.deal_categories()
    if not any(str(c.get("id")) == "0" for c in categories):
        categories = [{"id": 0, "name": "General"}, *categories]
    commands = {f"c{c['id']}": ("crm.status.list", {"order": {"SORT": "ASC"},
                                                     "filter": {"ENTITY_ID": stage_entity(str(c["id"]))}})
                for c in categories}
    found, _ = client.batch(commands)
    out = []
    for c in sorted(categories, key=lambda c: (str(c.get("id")) != "0", int(c.get("sort") or 0), int(c["id"]))):
        stages = found.get(f"c{c['id']}") or []
        out.append({"id": str(c["id"]), "name": str(c.get("name") or ""),
                    "stages": [{"id": str(s["STATUS_ID"]), "name": str(s.get("NAME") or s["STATUS_ID"]),
                                "semantics": semantics(s)} for s in stages if isinstance(s, dict)]})
    return out


def stages(client: Any) -> list[dict[str, Any]]:
    return [{**s, "pipeline_id": p["id"], "pipeline": p["name"]} for p in pipelines(client) for s in p["stages"]]


def users(client: Any) -> list[dict[str, Any]]:
    return [{"id": str(u["ID"]), "name": " ".join(x for x in (u.get("NAME"), u.get("LAST_NAME")) if x) or str(u["ID"]),
             "email": u.get("EMAIL")} for u in client.users()]


def lead_statuses(client: Any) -> list[dict[str, Any]]:
    return [{"id": str(s["STATUS_ID"]), "name": str(s.get("NAME") or s["STATUS_ID"]), "semantics": semantics(s)}
            for s in client.statuses("STATUS")]


def task_priorities(client: Any) -> list[dict[str, Any]]:
    return [dict(p) for p in PRIORITIES]


def _fields(described: dict[str, dict]) -> list[dict[str, Any]]:
    """`crm.*.fields` -> [{key, label, type, custom, multiple, options}] (custom: UF_ fields)."""
    out = []
    for key, info in described.items():
        if not isinstance(info, dict):
            continue
        label = info.get("listLabel") or info.get("formLabel") or info.get("title") or key
        options = [{"id": str(i.get("ID")), "label": str(i.get("VALUE"))} for i in info.get("items") or []
                   if isinstance(i, dict)]
        out.append({"key": key, "label": str(label), "type": str(info.get("type") or "string"),
                    "custom": key.startswith("UF_"), "multiple": bool(info.get("isMultiple")), "options": options})
    return out


def deal_fields(client: Any) -> list[dict[str, Any]]:
    return _fields(client.fields("crm.deal.fields"))


def lead_fields(client: Any) -> list[dict[str, Any]]:
    return _fields(client.fields("crm.lead.fields"))


CATALOGS: dict[str, Catalog] = {c.name: c for c in (
    Catalog("pipelines", "Deal pipelines and their stages", pipelines),
    Catalog("stages", "Deal stages", stages),
    Catalog("users", "Users", users),
    Catalog("lead_statuses", "Lead statuses", lead_statuses),
    Catalog("task_priorities", "Task priorities", task_priorities),
    Catalog("deal_fields", "Deal fields", deal_fields),
    Catalog("lead_fields", "Lead fields", lead_fields),
)}
