"""The dropdown lists an Asana connection offers: one entry per workspace the user can see, with its
teams (organizations only), active projects and users. JSON-able (the core caches it per
connection); `workspace(catalog, gid)` reads it back for validation."""
from __future__ import annotations

from typing import Any

from ..contract.records import Catalog
from .client import AsanaClient
from .resources import workspace_catalog


def workspaces(client: AsanaClient) -> list[dict[str, Any]]:
    return [{"gid": w.gid, "name": w.name, "is_organization": w.is_organization,
             "teams": [{"gid": t.gid, "name": t.name} for t in w.teams],
             "projects": [{"gid": p.gid, "name": p.name, "team_gid": p.team_gid} for p in w.projects],
             "users": [{"gid": u.gid, "name": u.name, "email": u.email} for u in w.users]}
            for w in workspace_catalog(client)]


def workspace(catalog: list[dict[str, Any]], gid: str) -> dict[str, Any] | None:
    return next((w for w in catalog if w["gid"] == gid), None)


CATALOGS: dict[str, Catalog] = {c.name: c for c in (
    Catalog("workspaces", "Workspaces with their teams, projects and users", workspaces),
)}
