"""The dropdown lists a HubSpot connection offers. Each loader reads the API afresh and returns
JSON-able data with ids as strings; the core caches the value per connection. Stages keep their
`displayOrder` (lead moves forward or back) and deal stages whether they win or lose the deal."""
from __future__ import annotations

from typing import Any

from ..contract.records import Catalog
from .webhooks import deal_outcome, lead_state


def _pipelines(client: Any, object_type: str) -> list[dict[str, Any]]:
    out = []
    for p in sorted(client.pipelines(object_type), key=lambda p: (p.get("displayOrder") or 0, str(p.get("label")))):
        if p.get("archived"):
            continue
        stages = sorted((s for s in p.get("stages") or [] if not s.get("archived")),
                        key=lambda s: (s.get("displayOrder") or 0, str(s.get("id"))))
        out.append({"id": str(p["id"]), "name": p.get("label") or str(p["id"]),
                    "stages": [_stage(object_type, s) for s in stages]})
    return out


def _stage(object_type: str, s: dict) -> dict[str, Any]:
    entry = {"id": str(s["id"]), "name": s.get("label") or str(s["id"]), "order": s.get("displayOrder") or 0}
    if object_type == "deals":
        entry["outcome"] = deal_outcome(s)
    else:
        entry["state"] = lead_state(s["id"], s)
    return entry


def deal_pipelines(client: Any) -> list[dict[str, Any]]:
    return _pipelines(client, "deals")


def lead_pipelines(client: Any) -> list[dict[str, Any]]:
    return _pipelines(client, "leads")


def pipelines(client: Any) -> list[dict[str, Any]]:
    """Deal and lead pipelines in one list: the core's rule editor and validation read the catalog
    named "pipelines" for a trigger's `pipeline_id`, whichever object the trigger is about."""
    leads = [{**p, "name": f"Leads: {p['name']}"} for p in lead_pipelines(client)]
    return deal_pipelines(client) + leads


def _flat(pipelines: list[dict]) -> list[dict[str, Any]]:
    return [{**s, "pipeline_id": p["id"], "pipeline": p["name"]} for p in pipelines for s in p["stages"]]


def deal_stages(client: Any) -> list[dict[str, Any]]:
    return _flat(deal_pipelines(client))


def lead_stages(client: Any) -> list[dict[str, Any]]:
    return _flat(lead_pipelines(client))


def _options(client: Any, object_type: str, name: str) -> list[dict[str, Any]]:
    prop = client.property(object_type, name)
    return [{"id": str(o.get("value")), "name": o.get("label") or str(o.get("value"))}
            for o in sorted(prop.get("options") or [], key=lambda o: (o.get("displayOrder") or 0))
            if not o.get("hidden")]


def lifecycle_stages(client: Any) -> list[dict[str, Any]]:
    """The account's lifecycle stages, custom ones included (internal value as id)."""
    return _options(client, "contacts", "lifecyclestage")


def disqualification_reasons(client: Any) -> list[dict[str, Any]]:
    return _options(client, "leads", "hs_lead_disqualification_reason")


def task_types(client: Any) -> list[dict[str, Any]]:
    return _options(client, "tasks", "hs_task_type")


def owners(client: Any) -> list[dict[str, Any]]:
    """Active owners: `id` is the owner id records and tasks take (`hubspot_owner_id`)."""
    return [{"id": str(o["id"]), "name": " ".join(p for p in (o.get("firstName"), o.get("lastName")) if p)
             or o.get("email") or str(o["id"]), "email": o.get("email"), "user_id": str(o.get("userId") or "")}
            for o in client.owners() if not o.get("archived")]


def _fields(client: Any, object_type: str) -> list[dict[str, Any]]:
    return [{"key": p["name"], "label": p.get("label") or p["name"], "type": p.get("type") or "string",
             "field_type": p.get("fieldType") or "", "custom": not p.get("hubspotDefined", False),
             "options": [{"id": str(o.get("value")), "label": o.get("label") or str(o.get("value"))}
                         for o in p.get("options") or []]}
            for p in client.properties(object_type) if not p.get("hidden") and p.get("name")]


def deal_fields(client: Any) -> list[dict[str, Any]]:
    return _fields(client, "deals")


def contact_fields(client: Any) -> list[dict[str, Any]]:
    return _fields(client, "contacts")


def lead_fields(client: Any) -> list[dict[str, Any]]:
    return _fields(client, "leads")


CATALOGS: dict[str, Catalog] = {c.name: c for c in (
    Catalog("pipelines", "Deal and lead pipelines and their stages", pipelines),
    Catalog("deal_pipelines", "Deal pipelines and their stages", deal_pipelines),
    Catalog("deal_stages", "Deal stages", deal_stages),
    Catalog("lead_pipelines", "Lead pipelines and their stages", lead_pipelines),
    Catalog("lead_stages", "Lead stages", lead_stages),
    Catalog("lifecycle_stages", "Lifecycle stages", lifecycle_stages),
    Catalog("disqualification_reasons", "Lead disqualification reasons", disqualification_reasons),
    Catalog("owners", "Owners", owners),
    Catalog("task_types", "Task types", task_types),
    Catalog("deal_fields", "Deal properties", deal_fields),
    Catalog("contact_fields", "Contact properties", contact_fields),
    Catalog("lead_fields", "Lead properties", lead_fields),
)}
