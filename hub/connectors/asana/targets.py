"""Asana as a rule's target: the step kinds `task` and `project`, their settings' validation
against the workspace catalog, and an `ensure` that makes each object once per effect key.

Exactly-once:
- task: the effect key is the task's custom external id (private to this OAuth app). A first try
  creates straight away (one call): nothing can exist under that id yet; should a task exist all
  the same (a racing duplicate), Asana refuses the external id and the existing task is used. A
  later try looks the id up before creating, so a lost answer never makes a second task.
- project: Asana projects have no external id. The core records a write-ahead mark before the
  first create; only a try that finds such a mark (`first_try=False`: an earlier try may have sent
  the create and lost its answer) looks for a project of that name in the workspace or team,
  archived ones included, before creating. A first try never looks, so an unrelated project of the
  same name made by a person is never taken for ours."""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Callable, Iterator

from ...errors import Fatal
from ..retry import BudgetExhausted
from ..contract.targets import AttachmentRefused, Made, StepKind, TargetContext, TaskSpec, TaskState
from .catalogs import workspace
from .client import MAX_ATTACHMENT_BYTES, AsanaClient, AttachmentTooLarge
from .richtext import to_html_notes

FIELDS = ("name", "permalink_url")
STATE_FIELDS = ("completed", "completed_at", "modified_at", "due_on", "due_at", "assignee.name")


def _utc(stamp: str | None) -> datetime | None:
    """Asana's ISO 8601 times ("2012-02-22T02:06:58.147Z") as naive UTC."""
    if not stamp:
        return None
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


# -- validation -----------------------------------------------------------------------------------
def _workspace(settings: dict, catalog: Callable[[str], Any] | None, complete: bool,
               errors: dict[str, str]) -> dict | None:
    gid = settings.get("workspace_gid")
    if not gid:
        if complete:
            errors["workspace_gid"] = "pick the Asana workspace or organization"
        return None
    if catalog is None:
        return None
    ws = workspace(catalog("workspaces"), gid)
    if ws is None:
        errors["workspace_gid"] = "this workspace is not visible to the connected Asana account"
    return ws


def validate_task(settings: dict, catalog: Callable[[str], Any] | None, complete: bool) -> dict[str, str]:
    errors: dict[str, str] = {}
    ws = _workspace(settings, catalog, complete, errors)
    project, assignee = settings.get("project_gid"), settings.get("assignee_gid")
    if not project and complete:
        errors["project_gid"] = "pick the project the tasks go to"
    if ws is not None and project and project not in {p["gid"] for p in ws["projects"]}:
        errors["project_gid"] = f"this project is not an active project of {ws['name']}"
    if ws is not None and assignee and assignee not in {u["gid"] for u in ws["users"]}:
        errors["assignee_gid"] = f"this user is not a member of {ws['name']}"
    return errors


def validate_project(settings: dict, catalog: Callable[[str], Any] | None, complete: bool) -> dict[str, str]:
    errors: dict[str, str] = {}
    ws = _workspace(settings, catalog, complete, errors)
    team = settings.get("team_gid")
    if ws is not None:
        if ws["is_organization"] and not team and complete:
            errors["team_gid"] = f"{ws['name']} is an organization: pick the team that owns the new projects"
        elif team and not ws["is_organization"]:
            errors["team_gid"] = f"{ws['name']} is a workspace without teams: leave the team empty"
        elif team and team not in {t["gid"] for t in ws["teams"]}:
            errors["team_gid"] = f"this team is not in {ws['name']}"
    return errors


# -- the targets ----------------------------------------------------------------------------------
def _made(obj: dict, fallback_name: str, created: bool) -> Made:
    return Made(external_id=obj["gid"], url=obj.get("permalink_url") or "",
                name=obj.get("name") or fallback_name, created=created)


class _Asana:
    def __init__(self, ctx: TargetContext):
        self.ctx = ctx
        self.client: AsanaClient = ctx.client
        limit = ctx.settings.get("attachment_max_bytes")
        self.max_attachment_bytes = min(int(limit or MAX_ATTACHMENT_BYTES), self.client.max_attachment_bytes,
                                        MAX_ATTACHMENT_BYTES)
        # the hub's limit, when lower than Asana's, also bounds a stream of unknown size
        self.client.max_attachment_bytes = self.max_attachment_bytes

    def attach(self, external_id: str, file: dict[str, Any], chunks: Iterator[bytes], *,
               maybe_sent: bool = False) -> str:
        """Stream one file onto the task or project; a file above the limit is refused unread."""
        name = file.get("name") or f"file-{file.get('id')}"
        size, limit = file.get("size"), self.max_attachment_bytes
        if size is not None and size > limit:
            raise AttachmentRefused(f"{name} is {size} bytes; the limit is {limit} bytes", "too_large")
        if maybe_sent:   # an upload whose answer was lost may have landed: same name on the parent
            found = next((a for a in self.client.attachments(external_id) if a.get("name") == name), None)
            if found is not None:
                return found["gid"]
        try:
            made = self.client.upload_attachment(external_id, name, chunks, file.get("mime"), size=size)
        except AttachmentTooLarge as exc:
            raise AttachmentRefused(str(exc), "too_large") from None
        except BudgetExhausted:
            raise          # not this file's problem: the whole run gives up
        except Fatal as exc:
            too_large = "too large" in str(exc).lower()
            raise AttachmentRefused(str(exc), "too_large" if too_large else "refused") from None
        return made["gid"]


class TaskTarget(_Asana):
    """Tasks in a project of a workspace (settings: workspace_gid, project_gid, assignee_gid)."""

    def _create(self, spec: TaskSpec, external_gid: str) -> dict:
        s = spec.settings
        data: dict[str, Any] = {"workspace": s["workspace_gid"], "name": spec.name,
                                "html_notes": to_html_notes(spec.notes_html or "", source="html", target="task"),
                                "external": {"gid": external_gid}}
        if s.get("project_gid"):
            data["projects"] = [s["project_gid"]]
        assignee = spec.assignee or s.get("assignee_gid")
        if assignee:
            data["assignee"] = assignee
        if spec.due:
            data["due_at" if "T" in spec.due else "due_on"] = spec.due
        if spec.sharing in ("read_only", "full") and spec.colleagues:
            # the hub's sharing mode as Asana knows it: colleagues who may see the task follow it
            data["followers"] = [gid for gid in dict.fromkeys(spec.colleagues) if gid != assignee]
        return self.client.json("POST", "tasks", params={"opt_fields": ",".join(FIELDS)}, json={"data": data})["data"]

    def ensure(self, spec: TaskSpec, effect_key: str, *, first_try: bool) -> Made:
        if not first_try:
            found = self.client.task_by_external(effect_key, fields=FIELDS)
            if found is not None:
                return _made(found, spec.name, False)
        try:
            return _made(self._create(spec, effect_key), spec.name, True)
        except Fatal as exc:
            if exc.status != 400:   # a duplicate external id is refused with 400: the winner's task
                raise
            found = self.client.task_by_external(effect_key, fields=FIELDS)
            if found is None:
                raise
            return _made(found, spec.name, False)

    def complete(self, external_id: str) -> str:
        task = self.client.json("PUT", "tasks/{task_gid}", path_params={"task_gid": external_id},
                                params={"opt_fields": "completed"}, json={"data": {"completed": True}})["data"]
        return "completed" if task.get("completed") else "open"

    def status(self, external_id: str) -> str:
        return "completed" if self.client.task(external_id, fields=("completed",)).get("completed") else "open"

    def state(self, external_id: str) -> TaskState:
        """Asana knows done or not: `open` or `completed`; a deleted task (404) or one the
        connected account may no longer see (403) is `gone`."""
        try:
            task = self.client.task(external_id, fields=STATE_FIELDS)
        except Fatal as exc:
            if exc.status in (403, 404):
                return TaskState("gone", detail=str(exc)[:200])
            raise
        deadline: date | datetime | None = _utc(task.get("due_at"))
        if deadline is None and task.get("due_on"):
            try:
                deadline = date.fromisoformat(task["due_on"])
            except ValueError:
                deadline = None
        done = bool(task.get("completed"))
        assignee = task.get("assignee") or {}
        return TaskState("completed" if done else "open", deadline=deadline,
                         changed_at=_utc(task.get("completed_at")) if done else _utc(task.get("modified_at")),
                         responsible=assignee.get("name") or assignee.get("gid") or "")

    def reschedule(self, external_id: str, due: str) -> None:
        """A new deadline (the hub's team calendar, for a colleague with full access)."""
        self.client.json("PUT", "tasks/{task_gid}", path_params={"task_gid": external_id},
                         params={"opt_fields": "due_at,due_on"},
                         json={"data": {"due_at": due} if "T" in due else {"due_on": due}})


class ProjectTarget(_Asana):
    """Projects in a workspace, or in a team of an organization (settings: workspace_gid, team_gid)."""

    def ensure(self, spec: TaskSpec, effect_key: str, *, first_try: bool) -> Made:
        s = spec.settings
        if not first_try:
            for p in self.client.projects(s["workspace_gid"], s.get("team_gid") or None, archived=None):
                if p.get("name") == spec.name:
                    return _made(p, spec.name, False)
        project = self.client.create_project(
            s["workspace_gid"], spec.name, team_gid=s.get("team_gid") or None,
            html_notes=to_html_notes(spec.notes_html or "", source="html", target="project"), fields=FIELDS)
        return _made(project, spec.name, True)

    def complete(self, external_id: str) -> str:
        raise Fatal("an Asana project cannot be completed by a rule", 400)

    def status(self, external_id: str) -> str:
        project = self.client.json("GET", "projects/{project_gid}", path_params={"project_gid": external_id},
                                   params={"opt_fields": "archived,completed"})["data"]
        return "archived" if project.get("archived") else "completed" if project.get("completed") else "open"


TARGETS: dict[str, StepKind] = {s.what: s for s in (
    StepKind("task", "Create an Asana task", makes="task", settings=("workspace_gid", "project_gid", "assignee_gid"),
             validate=validate_task, target=TaskTarget, attachments=True, completes=True, catalogs=("workspaces",)),
    StepKind("project", "Create an Asana project", makes="project", settings=("workspace_gid", "team_gid"),
             validate=validate_project, target=ProjectTarget, catalogs=("workspaces",)),
)}
