"""The dropdown lists a Pipedrive connection offers (pipelines, stages, owners, fields, activity
types). Each loader reads the API afresh and returns JSON-able data with ids as strings (as rules
store them); the core caches the value per connection (`rules.catalog_seconds`), so nothing is
cached here (`refresh=True` bypasses the per-client cache of `resources`)."""
from __future__ import annotations

from typing import Any

from ..contract.records import Catalog
from . import resources
from .client import PipedriveClient


def pipelines(client: PipedriveClient) -> list[dict[str, Any]]:
    """Pipelines in board order, each with its stages in order."""
    return [{"id": str(p["id"]), "name": p["name"],
             "stages": [{"id": str(s["id"]), "name": s["name"]} for s in p["stages"]]}
            for p in resources.pipelines_with_stages(client, refresh=True)]


def stages(client: PipedriveClient) -> list[dict[str, Any]]:
    """Every stage with its pipeline, for a flat "moved to stage" list."""
    return [{"id": s["id"], "name": s["name"], "pipeline_id": p["id"], "pipeline": p["name"]}
            for p in pipelines(client) for s in p["stages"]]


def users(client: PipedriveClient) -> list[dict[str, Any]]:
    """Active users of the company: owners of deals and assignees of activities."""
    return [{"id": str(u["id"]), "name": u.get("name", ""), "email": u.get("email")}
            for u in client.users() if u.get("active_flag", True)]


def _fields(catalog: list[dict]) -> list[dict[str, Any]]:
    return [{"key": f["key"], "label": f["label"], "type": f["type"], "custom": f["custom"],
             "options": [{"id": str(o["id"]), "label": o["label"]} for o in f["options"]]} for f in catalog]


def deal_fields(client: PipedriveClient) -> list[dict[str, Any]]:
    """Deal fields (leads use them too): key (a 40-char hash for custom ones), label, Pipedrive
    field type, options for enum/set."""
    return _fields(resources.deal_field_catalog(client, refresh=True))


def person_fields(client: PipedriveClient) -> list[dict[str, Any]]:
    return _fields(resources.person_field_catalog(client, refresh=True))


def activity_types(client: PipedriveClient) -> list[dict[str, Any]]:
    """Active activity types: `key` is what an activity's `type` takes (task, call, deadline ...)."""
    types = client.json("GET", "/api/v1/activityTypes").get("data") or []
    return [{"key": t["key_string"], "name": t.get("name", t["key_string"])}
            for t in sorted(types, key=lambda t: (t.get("order_nr", 0), t.get("id", 0))) if t.get("active_flag", True)]


CATALOGS: dict[str, Catalog] = {c.name: c for c in (
    Catalog("pipelines", "Pipelines and their stages", pipelines),
    Catalog("stages", "Stages", stages),
    Catalog("users", "Users", users),
    Catalog("deal_fields", "Deal fields", deal_fields),
    Catalog("person_fields", "Person fields", person_fields),
    Catalog("activity_types", "Activity types", activity_types),
)}
