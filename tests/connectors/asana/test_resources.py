"""Dropdown metadata: workspaces with is_organization, teams only for organizations, active projects."""
from __future__ import annotations

from hub.connectors.asana.resources import CatalogCache, ProjectOption, workspace_catalog


def test_workspace_catalog(dana, ids):
    catalog = {ws.gid: ws for ws in workspace_catalog(dana.client)}
    org, personal = catalog[ids["org"]], catalog[ids["personal"]]
    assert org.is_organization and org.name == "Acme Sandbox Org"
    assert {t.name for t in org.teams} == {"Sales Ops", "Customer Success"}
    assert set(org.projects) == {ProjectOption(ids["onboarding"], "Won deals – onboarding", ids["sales"]),
                                 ProjectOption(ids["renewals"], "Renewals", ids["success"])}  # not archived
    assert {(u.gid, u.email) for u in org.users} >= {(ids["luis"], "luis.ortega@acme.example")}
    assert len(org.users) == 3
    assert not personal.is_organization and personal.teams == ()  # no teams call for a plain workspace
    assert [p.gid for p in personal.projects] == [ids["home"]] and personal.projects[0].team_gid is None
    assert not any("/teams" in url and ids["personal"] in url for _, url in dana.calls)


def test_catalog_cache(dana, ids):
    now = [0.0]
    cache = CatalogCache(ttl=60, clock=lambda: now[0])
    first = cache.get("conn-1", dana.client)
    calls = len(dana.calls)
    assert cache.get("conn-1", dana.client) is first and len(dana.calls) == calls
    now[0] = 61
    assert cache.get("conn-1", dana.client) == first and len(dana.calls) > calls
    calls = len(dana.calls)
    cache.invalidate("conn-1")
    cache.get("conn-1", dana.client)
    assert len(dana.calls) > calls
