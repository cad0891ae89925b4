"""Dropdown metadata for the rule editor: workspaces, and per workspace its teams, projects, users.

`is_organization` matters to the admin's choices: only organizations have teams, and a project
created there needs one (the editor asks for a team only then). Archived projects are left out:
nobody should route new tasks into them. A short per-connection cache keeps page loads from
spending the token's rate budget (150 requests a minute on free domains)."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Hashable

from .client import AsanaClient


@dataclass(frozen=True)
class Option:
    gid: str
    name: str


@dataclass(frozen=True)
class ProjectOption(Option):
    team_gid: str | None = None


@dataclass(frozen=True)
class UserOption(Option):
    email: str | None = None


@dataclass(frozen=True)
class WorkspaceCatalog:
    gid: str
    name: str
    is_organization: bool
    teams: tuple[Option, ...] = ()
    projects: tuple[ProjectOption, ...] = ()
    users: tuple[UserOption, ...] = ()


def workspace_catalog(client: AsanaClient) -> list[WorkspaceCatalog]:
    """Everything the editor's Asana dropdowns offer, one entry per workspace the user can see."""
    catalog = []
    for ws in client.workspaces():
        is_org = bool(ws.get("is_organization"))
        teams = tuple(Option(t["gid"], t.get("name", "")) for t in client.teams(ws["gid"])) if is_org else ()
        projects = tuple(ProjectOption(p["gid"], p.get("name", ""), (p.get("team") or {}).get("gid"))
                         for p in client.projects(ws["gid"]))
        users = tuple(UserOption(u["gid"], u.get("name", ""), u.get("email")) for u in client.users(ws["gid"]))
        catalog.append(WorkspaceCatalog(ws["gid"], ws.get("name", ""), is_org, teams, projects, users))
    return catalog


@dataclass
class CatalogCache:
    """Catalogs per connection key for `ttl` seconds; `invalidate(key)` after the admin presses
    refresh or after the hub itself created a project."""

    ttl: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _entries: dict[Hashable, tuple[float, list[WorkspaceCatalog]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: Hashable, client: AsanaClient) -> list[WorkspaceCatalog]:
        with self._lock:
            hit = self._entries.get(key)
            if hit and self.clock() - hit[0] < self.ttl:
                return hit[1]
        fresh = workspace_catalog(client)  # outside the lock: slow HTTP must not block other keys
        with self._lock:
            self._entries[key] = (self.clock(), fresh)
        return fresh

    def invalidate(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)
