"""Actions: what a rule does in the target app. Adding one is a local change: an `Action` entry
with its validation (against the target's catalog) and its `execute(run)`.

Exactly-once effect per action:
- task: Asana's custom external id is the effect key (a racing or repeated create is refused by
  Asana; a retry looks it up before creating: `ensure_task`), so a crash between create and commit
  never makes a second task. A first try creates straight away: nothing can exist yet.
- project: Asana projects have no external id. The run records that a create was sent before
  sending it; only a run that finds such a record (an earlier attempt lost track of its answer)
  looks for the project by name before creating again."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..connectors.asana.resources import WorkspaceCatalog
from ..errors import Fatal

TASK_FIELDS = ("name", "permalink_url")
PROJECT_FIELDS = ("name", "permalink_url")


@dataclass(frozen=True)
class Action:
    kind: str
    label: str
    provider: str
    target_type: str                       # what it creates: task | project
    attachments: bool                      # can carry the CRM's files
    keys: tuple[str, ...]                  # the target settings it uses
    validate: Callable[[dict, list[WorkspaceCatalog] | None, bool], dict[str, str]]
    execute: Callable[[Any], None]


def _workspace(target: dict, workspaces: list[WorkspaceCatalog] | None, complete: bool,
               errors: dict[str, str]) -> WorkspaceCatalog | None:
    gid = target.get("workspace_gid")
    if not gid:
        if complete:
            errors["target.workspace_gid"] = "pick the Asana workspace or organization"
        return None
    if workspaces is None:
        return None
    ws = next((w for w in workspaces if w.gid == gid), None)
    if ws is None:
        errors["target.workspace_gid"] = "this workspace is not visible to the connected Asana account"
    return ws


def validate_task(target: dict, workspaces: list[WorkspaceCatalog] | None, complete: bool) -> dict[str, str]:
    errors: dict[str, str] = {}
    ws = _workspace(target, workspaces, complete, errors)
    project, assignee = target.get("project_gid"), target.get("assignee_gid")
    if not project and complete:
        errors["target.project_gid"] = "pick the project the tasks go to"
    if ws is not None and project and project not in {p.gid for p in ws.projects}:
        errors["target.project_gid"] = f"this project is not an active project of {ws.name}"
    if ws is not None and assignee and assignee not in {u.gid for u in ws.users}:
        errors["target.assignee_gid"] = f"this user is not a member of {ws.name}"
    return errors


def validate_project(target: dict, workspaces: list[WorkspaceCatalog] | None, complete: bool) -> dict[str, str]:
    errors: dict[str, str] = {}
    ws = _workspace(target, workspaces, complete, errors)
    team = target.get("team_gid")
    if ws is not None:
        if ws.is_organization and not team and complete:
            errors["target.team_gid"] = f"{ws.name} is an organization: pick the team that owns the new projects"
        elif team and not ws.is_organization:
            errors["target.team_gid"] = f"{ws.name} is a workspace without teams: leave the team empty"
        elif team and team not in {t.gid for t in ws.teams}:
            errors["target.team_gid"] = f"this team is not in {ws.name}"
    return errors


def execute_task(run: Any) -> None:
    target = run.target
    if run.target_gid:                      # an earlier attempt created it and recorded that
        run.note(f"task {run.target_gid} exists from an earlier attempt")
    else:
        create = {"html_notes": run.rendered.html_notes,
                  "projects": [target["project_gid"]] if target.get("project_gid") else (),
                  "assignee": target.get("assignee_gid") or None, "fields": TASK_FIELDS}
        if run.first_try:
            task, created = _create_task(run, target["workspace_gid"], create)
        else:
            task, created = run.asana.ensure_task(target["workspace_gid"], run.rendered.name,
                                                  external_gid=run.external_gid, **create)
        run.record_target("task", task["gid"], task.get("name") or run.rendered.name,
                          task.get("permalink_url") or "", created)
    if run.carry.attachments:
        run.copy_attachments(run.target_gid)


def _create_task(run: Any, workspace_gid: str, create: dict) -> tuple[dict, bool]:
    """First try: nothing can exist under this external id yet, so create without looking first
    (one Asana call instead of two). Should a task exist all the same (a run repeated by hand,
    a racing duplicate), Asana refuses the external id and the existing task is used."""
    try:
        return run.asana.create_task(workspace_gid, run.rendered.name, external_gid=run.external_gid, **create), True
    except Fatal as exc:
        if exc.status != 400:
            raise
        found = run.asana.task_by_external(run.external_gid)
        if found is None:
            raise
        return found, False


def execute_project(run: Any) -> None:
    target = run.target
    if run.target_gid:
        run.note(f"project {run.target_gid} exists from an earlier attempt")
        return
    if run.creating_since is not None:      # a create was sent but its answer was lost: look first
        for p in run.asana.projects(target["workspace_gid"], target.get("team_gid") or None, archived=None):
            if p.get("name") == run.rendered.name:
                run.record_target("project", p["gid"], p["name"], p.get("permalink_url") or "", False)
                return
    run.mark_creating()
    project = run.asana.create_project(target["workspace_gid"], run.rendered.name,
                                       team_gid=target.get("team_gid") or None,
                                       html_notes=run.rendered.html_notes, fields=PROJECT_FIELDS)
    run.record_target("project", project["gid"], project.get("name") or run.rendered.name,
                      project.get("permalink_url") or "", True)


ACTIONS: dict[str, Action] = {a.kind: a for a in (
    Action("asana.task", "Create an Asana task", "asana", "task", attachments=True,
           keys=("workspace_gid", "project_gid", "assignee_gid"), validate=validate_task, execute=execute_task),
    Action("asana.project", "Create an Asana project", "asana", "project", attachments=False,
           keys=("workspace_gid", "team_gid"), validate=validate_project, execute=execute_project),
)}
