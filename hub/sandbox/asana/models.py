"""The Asana emulator's data model: workspaces, teams, users, projects, tasks and attachments.

Records live in `SandboxState` tables as plain dicts that reference each other by gid; rendering
turns them into the spec's `*Compact` / `*Response` shapes. Business rules Asana enforces (team
required in organizations, rich-text validation, unique external ids per app, immutable
workspace) live here so the HTTP layer stays thin and tests can drive the same rules directly."""
from __future__ import annotations

import base64
import copy
import re
from datetime import datetime, timezone
from typing import Any, Iterable

from ..common import Faults, SandboxState, TokenAuthority
from . import richtext

GID_START = 1207000000000001
EXTERNAL_GID_MAX = 1024
EXTERNAL_DATA_MAX = 32768
DEFAULT_ATTACHMENT_MAX_BYTES = 100 * 1024 * 1024  # FACTS §7: 100 MB per attachment
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

TABLES = ("workspaces", "teams", "users", "projects", "sections", "tasks", "attachments", "blobs")


class ApiError(Exception):
    """An error Asana would answer with `{"errors": [{"message": ...}]}` and `status`."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{datetime.now(timezone.utc).microsecond // 1000:03d}Z"


def _ref(kind: str, rec: dict | None, *extra: str) -> dict | None:
    if rec is None:
        return None
    out = {"gid": rec["gid"], "resource_type": kind, "name": rec.get("name", "")}
    for key in extra:
        out[key] = rec.get(key)
    return out


class AsanaEmulator:
    """State plus rules; reached by tests and the hub as `app.extensions["sandbox"]`."""

    def __init__(self, state: SandboxState, faults: Faults, tokens: TokenAuthority, options: dict):
        self.state = state
        self.faults = faults
        self.tokens = tokens
        self.options = options
        self.attachment_max_bytes = int(options.get("attachment_max_bytes", DEFAULT_ATTACHMENT_MAX_BYTES))
        self.public_base = options.get("permalink_base", "https://app.asana.com")

    # -- plumbing --------------------------------------------------------------------------------
    def _t(self, name: str) -> dict:
        return self.state.table(f"asana_{name}")

    def new_gid(self) -> str:
        return str(self.state.next_id("asana_gid", start=GID_START))

    def get(self, table: str, gid: str | None) -> dict | None:
        with self.state.lock:
            rec = self._t(table).get(gid or "")
            return rec

    def _require(self, table: str, gid: Any, field: str) -> dict:
        if not isinstance(gid, str) or not gid:
            raise ApiError(400, f"{field}: Not a valid gid: {gid!r}" if gid else f"{field}: Missing input")
        rec = self.get(table, gid)
        if rec is None:
            raise ApiError(400, f"{field}: Not a recognized ID: {gid}")
        return rec

    # -- seeding and test helpers ---------------------------------------------------------------
    def seed_if_empty(self) -> None:
        with self.state.change():
            if self._t("workspaces"):
                return
            org = self.add_workspace("Acme Sandbox Org", is_organization=True, email_domains=["acme.example"])
            personal = self.add_workspace("Personal Projects")
            sales = self.add_team(org, "Sales Ops", description="Closes deals and hands them over.")
            success = self.add_team(org, "Customer Success", description="Onboards and renews customers.")
            dana = self.add_user("Dana Whitfield", "dana.whitfield@acme.example", [org, personal], [sales])
            luis = self.add_user("Luis Ortega", "luis.ortega@acme.example", [org], [sales, success])
            self.add_user("Priya Natarajan", "priya.natarajan@acme.example", [org], [success])
            self.add_project(org, "Won deals – onboarding", team=sales, owner=dana, default_view="board",
                             color="light-green")
            self.add_project(org, "Renewals", team=success, owner=luis)
            self.add_project(org, "Q1 pipeline review", team=sales, owner=dana, archived=True)
            self.add_project(personal, "Home office", owner=dana)

    def add_workspace(self, name: str, *, is_organization: bool = False,
                      email_domains: Iterable[str] = ()) -> str:
        gid = self.new_gid()
        with self.state.change():
            self._t("workspaces")[gid] = {"gid": gid, "name": name, "is_organization": bool(is_organization),
                                          "email_domains": list(email_domains)}
        return gid

    def add_team(self, workspace: str, name: str, *, description: str = "") -> str:
        ws = self.get("workspaces", workspace)
        if ws is None or not ws["is_organization"]:
            raise ValueError("teams exist only in organizations")
        gid = self.new_gid()
        with self.state.change():
            self._t("teams")[gid] = {"gid": gid, "name": name, "organization": workspace,
                                     "description": description, "visibility": "public"}
        return gid

    def add_user(self, name: str, email: str, workspaces: Iterable[str], teams: Iterable[str] = ()) -> str:
        gid = self.new_gid()
        with self.state.change():
            self._t("users")[gid] = {"gid": gid, "name": name, "email": email,
                                     "workspaces": list(workspaces), "teams": list(teams)}
        return gid

    def add_project(self, workspace: str, name: str, *, team: str | None = None, owner: str | None = None,
                    notes: str = "", html_notes: str | None = None, archived: bool = False,
                    default_view: str = "list", color: str | None = None,
                    privacy_setting: str = "public_to_workspace", due_on: str | None = None,
                    start_on: str | None = None) -> str:
        gid = self.new_gid()
        section = self.new_gid()
        stamp = now_iso()
        html = html_notes if html_notes is not None else richtext.from_plain(notes)
        with self.state.change():
            self._t("projects")[gid] = {
                "gid": gid, "name": name, "workspace": workspace, "team": team, "owner": owner,
                "notes": richtext.to_plain(html), "html_notes": html, "archived": archived,
                "default_view": default_view, "color": color, "privacy_setting": privacy_setting,
                "due_on": due_on, "start_on": start_on, "created_at": stamp, "modified_at": stamp,
                "members": [owner] if owner else [], "followers": [owner] if owner else [],
                "sections": [section],
            }
            self._t("sections")[section] = {"gid": section, "name": "Untitled section", "project": gid}
        return gid

    def workspaces(self) -> list[dict]:
        return self._records("workspaces")

    def teams(self) -> list[dict]:
        return self._records("teams")

    def users(self) -> list[dict]:
        return self._records("users")

    def projects(self, workspace: str | None = None) -> list[dict]:
        return [p for p in self._records("projects") if workspace in (None, p["workspace"])]

    def tasks(self, project: str | None = None) -> list[dict]:
        return [t for t in self._records("tasks") if project is None or project in t["projects"]]

    def attachments(self, parent: str | None = None) -> list[dict]:
        return [a for a in self._records("attachments") if parent in (None, a["parent"])]

    def attachment_bytes(self, gid: str) -> bytes | None:
        with self.state.lock:
            blob = self._t("blobs").get(gid)
        return base64.b64decode(blob) if blob is not None else None

    def _records(self, table: str) -> list[dict]:
        with self.state.lock:
            return [copy.deepcopy(r) for _, r in sorted(self._t(table).items(), key=lambda kv: int(kv[0]))]

    # -- visibility ------------------------------------------------------------------------------
    def member_of(self, user_gid: str, workspace_gid: str) -> bool:
        user = self.get("users", user_gid)
        return bool(user) and workspace_gid in user["workspaces"]

    def resolve_user(self, value: Any, ctx: dict, field: str, workspace: str | None = None) -> str | None:
        """`"me"`, an email or a gid -> user gid (Asana accepts all three for assignee)."""
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise ApiError(400, f"{field}: Not a valid user: {value!r}")
        if value == "me":
            return ctx["user"]
        with self.state.lock:
            users = self._t("users")
            if _EMAIL.match(value):
                found = next((u for u in users.values() if u["email"].lower() == value.lower()), None)
            else:
                found = users.get(value)
        if found is None:
            raise ApiError(400, f"{field}: Not a recognized ID: {value}")
        if workspace and workspace not in found["workspaces"]:
            raise ApiError(400, f"{field}: User is not a member of the workspace")
        return found["gid"]

    def find_task(self, ref: str, ctx: dict) -> dict | None:
        """A task by gid or `external:<id>` (private to the OAuth app that set it)."""
        with self.state.lock:
            tasks = self._t("tasks")
            if ref.startswith("external:"):
                ext = ref[len("external:"):]
                return next((t for t in tasks.values()
                             if (t.get("external") or {}).get(ctx["client_id"], {}).get("gid") == ext), None)
            return tasks.get(ref)

    def kind_of(self, gid: str) -> str | None:
        with self.state.lock:
            for table, kind in (("tasks", "task"), ("projects", "project"), ("users", "user"),
                                ("teams", "team"), ("workspaces", "workspace")):
                if gid in self._t(table):
                    return kind
        return None

    # -- rendering -------------------------------------------------------------------------------
    def render(self, kind: str, gid: str, ctx: dict) -> dict | None:
        """Full record (opt-in fields included) for `kind`; the API layer drops opt-ins by default."""
        table = {"workspace": "workspaces", "team": "teams", "user": "users", "project": "projects",
                 "task": "tasks", "attachment": "attachments", "section": "sections"}.get(kind)
        if table is None:
            return None
        with self.state.lock:
            rec = self._t(table).get(gid)
            if rec is None:
                return None
            return getattr(self, f"_render_{kind}")(rec, ctx)

    def compact(self, kind: str, rec: dict) -> dict:
        out = {"gid": rec["gid"], "resource_type": kind, "name": rec.get("name", "")}
        if kind == "task":
            out["resource_subtype"] = rec.get("resource_subtype", "default_task")
        if kind == "attachment":
            out["resource_subtype"] = rec.get("resource_subtype", "asana")
        return out

    def _render_workspace(self, rec: dict, ctx: dict) -> dict:
        return {"gid": rec["gid"], "resource_type": "workspace", "name": rec["name"],
                "email_domains": list(rec["email_domains"]), "is_organization": rec["is_organization"]}

    def _render_team(self, rec: dict, ctx: dict) -> dict:
        org = self._t("workspaces").get(rec["organization"])
        html = richtext.from_plain(rec.get("description", ""))
        return {"gid": rec["gid"], "resource_type": "team", "name": rec["name"],
                "description": rec.get("description", ""), "html_description": html,
                "organization": _ref("workspace", org),
                "permalink_url": f"{self.public_base}/0/{rec['gid']}/{rec['gid']}",
                "visibility": rec.get("visibility", "public")}

    def _render_user(self, rec: dict, ctx: dict) -> dict:
        ws = self._t("workspaces")
        return {"gid": rec["gid"], "resource_type": "user", "name": rec["name"], "email": rec["email"],
                "photo": None,
                "workspaces": [_ref("workspace", ws[w]) for w in rec["workspaces"] if w in ws]}

    def _render_section(self, rec: dict, ctx: dict) -> dict:
        return {"gid": rec["gid"], "resource_type": "section", "name": rec["name"]}

    def _user_ref(self, gid: str | None) -> dict | None:
        return _ref("user", self._t("users").get(gid or ""))

    def _render_project(self, rec: dict, ctx: dict) -> dict:
        ws = self._t("workspaces").get(rec["workspace"])
        team = self._t("teams").get(rec.get("team") or "")
        out = {
            "gid": rec["gid"], "resource_type": "project", "name": rec["name"],
            "archived": rec["archived"], "color": rec.get("color"), "icon": rec["default_view"],
            "created_at": rec["created_at"], "current_status": None, "current_status_update": None,
            "custom_field_settings": [], "default_view": rec["default_view"],
            "due_date": rec.get("due_on"), "due_on": rec.get("due_on"), "html_notes": rec["html_notes"],
            "members": [self._user_ref(u) for u in rec["members"] if self._user_ref(u)],
            "modified_at": rec["modified_at"], "notes": rec["notes"],
            "public": rec["privacy_setting"] == "public_to_workspace",
            "privacy_setting": rec["privacy_setting"], "start_on": rec.get("start_on"),
            "default_access_level": "editor", "minimum_access_level_for_customization": "editor",
            "minimum_access_level_for_sharing": "editor", "custom_fields": [],
            "completed": False, "completed_at": None, "completed_by": None,
            "followers": [self._user_ref(u) for u in rec["followers"] if self._user_ref(u)],
            "owner": self._user_ref(rec.get("owner")),
            "permalink_url": f"{self.public_base}/1/{rec['workspace']}/project/{rec['gid']}",
            "project_brief": None, "created_from_template": None, "workspace": _ref("workspace", ws),
        }
        if team is not None:  # only organizations have teams; the spec has no null for `team`
            out["team"] = _ref("team", team)
        return out

    def _render_task(self, rec: dict, ctx: dict) -> dict:
        projects = self._t("projects")
        sections = self._t("sections")
        ws = self._t("workspaces").get(rec["workspace"])
        parent = self._t("tasks").get(rec.get("parent") or "")
        external = (rec.get("external") or {}).get(ctx.get("client_id") or "")
        out = {
            "gid": rec["gid"], "resource_type": "task", "name": rec["name"],
            "resource_subtype": rec["resource_subtype"],
            "created_by": {"gid": rec["created_by"], "resource_type": "user"} if rec.get("created_by") else None,
            "actual_time_minutes": None, "approval_status": "pending",
            "assignee": self._user_ref(rec.get("assignee")),
            "assignee_status": "upcoming", "completed": rec["completed"],
            "completed_at": rec.get("completed_at"), "completed_by": None,
            "created_at": rec["created_at"], "custom_fields": [], "dependencies": [], "dependents": [],
            "due_at": rec.get("due_at"), "due_on": rec.get("due_on"),
            "external": dict(external) if external else None,
            "followers": [r for r in (self._user_ref(u) for u in rec["followers"]) if r],
            "hearted": False, "hearts": [], "html_notes": rec["html_notes"],
            "is_rendered_as_separator": False, "liked": False, "likes": [],
            "memberships": [{"project": _ref("project", projects.get(m["project"])),
                             "section": _ref("section", sections.get(m["section"]))}
                            for m in rec["memberships"] if m["project"] in projects],
            "modified_at": rec["modified_at"], "notes": rec["notes"], "num_hearts": 0, "num_likes": 0,
            "num_subtasks": sum(1 for t in self._t("tasks").values() if t.get("parent") == rec["gid"]),
            "parent": _ref("task", parent, "resource_subtype"),
            "permalink_url": f"{self.public_base}/1/{rec['workspace']}/task/{rec['gid']}",
            "projects": [_ref("project", projects[p]) for p in rec["projects"] if p in projects],
            "start_at": rec.get("start_at"), "start_on": rec.get("start_on"), "tags": [],
            "workspace": _ref("workspace", ws),
        }
        if not external:  # "Conditional": only present once this app has set it
            del out["external"]
        return out

    def _render_attachment(self, rec: dict, ctx: dict) -> dict:
        kind = rec["parent_type"]
        parent = self._t("tasks" if kind == "task" else "projects").get(rec["parent"])
        parent_ref = _ref(kind, parent)
        if parent_ref is not None and kind == "task":
            parent_ref["resource_subtype"] = parent.get("resource_subtype", "default_task")
        urls = ctx.get("attachment_urls", lambda r: (None, None))(rec)
        return {
            "gid": rec["gid"], "resource_type": "attachment", "name": rec["name"],
            "resource_subtype": rec["resource_subtype"], "created_at": rec["created_at"],
            "download_url": urls[0], "permanent_url": urls[1], "host": rec["host"],
            "parent": parent_ref, "size": rec["size"], "view_url": urls[0], "connected_to_app": False,
        }

    # -- writes ----------------------------------------------------------------------------------
    def create_project(self, data: dict, ctx: dict, *, workspace: str | None = None,
                       team: str | None = None) -> str:
        """POST /projects and its workspace/team variants (team mandatory in organizations)."""
        if not isinstance(data, dict):
            raise ApiError(400, "data: Missing input")
        team_gid = team or data.get("team")
        team_rec = self._require("teams", team_gid, "team") if team_gid else None
        ws_gid = workspace or data.get("workspace") or (team_rec["organization"] if team_rec else None)
        if not ws_gid:
            raise ApiError(400, "workspace: Missing input")
        ws = self._require("workspaces", ws_gid, "workspace")
        if not self.member_of(ctx["user"], ws_gid):
            raise ApiError(403, "You do not have access to this workspace")
        if ws["is_organization"] and team_rec is None:
            raise ApiError(400, "Missing required `team` field")
        if team_rec is not None and team_rec["organization"] != ws_gid:
            raise ApiError(400, "team: The team is not in the given workspace")
        name = data.get("name", "")
        if not isinstance(name, str):
            raise ApiError(400, "name: Must be a string")
        notes, html = self._notes(data, richtext.COMMON_TAGS)
        default_view = data.get("default_view", "list")
        if default_view not in ("list", "board", "calendar", "timeline"):
            raise ApiError(400, f"default_view: Unknown value: {default_view}")
        privacy = data.get("privacy_setting", "public_to_workspace")
        if privacy not in ("public_to_workspace", "private_to_team", "private"):
            raise ApiError(400, f"privacy_setting: Unknown value: {privacy}")
        for key in ("due_on", "start_on"):
            if data.get(key) is not None and not _DATE.match(str(data[key])):
                raise ApiError(400, f"{key}: Invalid date: {data[key]}")
        owner = self.resolve_user(data["owner"], ctx, "owner", ws_gid) if data.get("owner") else ctx["user"]
        return self.add_project(ws_gid, name, team=team_rec["gid"] if team_rec else None, owner=owner,
                                html_notes=html, default_view=default_view, color=data.get("color"),
                                privacy_setting=privacy, due_on=data.get("due_on"),
                                start_on=data.get("start_on"))

    def _notes(self, data: dict, tags: frozenset[str]) -> tuple[str, str]:
        if data.get("html_notes") is not None:
            try:
                html = richtext.validate(data["html_notes"], allowed_tags=tags, resolve_gid=self.kind_of)
            except richtext.RichTextError as exc:
                raise ApiError(400, str(exc)) from None
            return richtext.to_plain(html), html
        notes = data.get("notes") or ""
        if not isinstance(notes, str):
            raise ApiError(400, "notes: Must be a string")
        return notes, richtext.from_plain(notes)

    def _external(self, value: Any, ctx: dict, task_gid: str | None) -> dict | None:
        if value is None:
            return None
        if ctx.get("client_id") is None:
            raise ApiError(400, "external: Custom external data requires an OAuth token")
        if not isinstance(value, dict) or set(value) - {"gid", "data"}:
            raise ApiError(400, "external: Must be an object with gid and/or data")
        gid, blob = value.get("gid"), value.get("data")
        if gid is not None and (not isinstance(gid, str) or len(gid) > EXTERNAL_GID_MAX):
            raise ApiError(400, f"external.gid: Must be a string of at most {EXTERNAL_GID_MAX} characters")
        if blob is not None and (not isinstance(blob, str) or len(blob) > EXTERNAL_DATA_MAX):
            raise ApiError(400, f"external.data: Must be a string of at most {EXTERNAL_DATA_MAX} characters")
        if gid:
            clash = self.find_task(f"external:{gid}", ctx)
            if clash is not None and clash["gid"] != task_gid:
                raise ApiError(400, f"external.gid: The external gid {gid} is already used by another object")
        return {k: v for k, v in (("gid", gid), ("data", blob)) if v is not None}

    def create_task(self, data: dict, ctx: dict) -> str:
        """POST /tasks: work out the workspace from workspace/projects/parent, validate, store."""
        if not isinstance(data, dict):
            raise ApiError(400, "data: Missing input")
        project_gids = data.get("projects") or []
        if isinstance(project_gids, str):
            project_gids = [p for p in project_gids.split(",") if p]
        if not isinstance(project_gids, list):
            raise ApiError(400, "projects: Must be an array of gids")
        projects = [self._require("projects", p, "projects") for p in project_gids]
        parent = None
        if data.get("parent"):
            parent = self.find_task(data["parent"], ctx) if isinstance(data["parent"], str) else None
            if parent is None:
                raise ApiError(400, f"parent: Not a recognized ID: {data['parent']}")
        ws_gid = data.get("workspace")
        if ws_gid:
            self._require("workspaces", ws_gid, "workspace")
        candidates = {p["workspace"] for p in projects} | ({parent["workspace"]} if parent else set())
        if ws_gid is None:
            if not candidates:
                raise ApiError(400, "You should specify one of workspace, parent, projects")
            ws_gid = next(iter(candidates))
        if candidates - {ws_gid}:
            raise ApiError(400, "workspace: The projects and parent must be in the given workspace")
        if not self.member_of(ctx["user"], ws_gid):
            raise ApiError(403, "You do not have access to this workspace")
        name = data.get("name", "")
        if not isinstance(name, str):
            raise ApiError(400, "name: Must be a string")
        notes, html = self._notes(data, richtext.TASK_TAGS)
        subtype = data.get("resource_subtype", "default_task")
        if subtype not in ("default_task", "milestone", "approval"):
            raise ApiError(400, f"resource_subtype: Unknown value: {subtype}")
        if data.get("due_on") is not None and data.get("due_at") is not None:
            raise ApiError(400, "You may only provide one of due_on or due_at")
        if data.get("due_on") is not None and not _DATE.match(str(data["due_on"])):
            raise ApiError(400, f"due_on: Invalid date: {data['due_on']}")
        if (data.get("start_on") or data.get("start_at")) and not (data.get("due_on") or data.get("due_at")):
            raise ApiError(400, "You must specify a due date when specifying a start date")
        assignee = self.resolve_user(data.get("assignee"), ctx, "assignee", ws_gid)
        followers = [self.resolve_user(f, ctx, "followers", ws_gid) for f in (data.get("followers") or [])]
        gid = self.new_gid()
        external = self._external(data.get("external"), ctx, gid)
        completed = bool(data.get("completed", False))
        stamp = now_iso()
        follower_set: list[str] = []
        for u in [ctx["user"], assignee, *followers]:  # creator and assignee follow, as in the product
            if u and u not in follower_set:
                follower_set.append(u)
        with self.state.change():
            if external and external.get("gid") and self.find_task(f"external:{external['gid']}", ctx):
                raise ApiError(400, f"external.gid: The external gid {external['gid']} is already used by another object")
            self._t("tasks")[gid] = {
                "gid": gid, "name": name, "resource_subtype": subtype, "workspace": ws_gid,
                "assignee": assignee, "completed": completed, "completed_at": stamp if completed else None,
                "created_at": stamp, "modified_at": stamp, "created_by": ctx["user"],
                "due_on": data.get("due_on"), "due_at": data.get("due_at"),
                "start_on": data.get("start_on"), "start_at": data.get("start_at"),
                "notes": notes, "html_notes": html, "projects": [p["gid"] for p in projects],
                "memberships": [{"project": p["gid"], "section": p["sections"][0]} for p in projects],
                "followers": follower_set, "parent": parent["gid"] if parent else None,
                "external": {ctx["client_id"]: external} if external else {},
            }
        return gid

    def update_task(self, task: dict, data: dict, ctx: dict) -> None:
        """PUT /tasks/{gid}: the writable scalars, rich text and external data (not projects)."""
        if not isinstance(data, dict):
            raise ApiError(400, "data: Missing input")
        for fixed in ("projects", "workspace", "memberships", "tags", "followers"):
            if fixed in data:
                raise ApiError(400, f"{fixed}: Cannot be changed with this endpoint")
        changes: dict[str, Any] = {}
        if "name" in data:
            if not isinstance(data["name"], str):
                raise ApiError(400, "name: Must be a string")
            changes["name"] = data["name"]
        if "html_notes" in data or "notes" in data:
            changes["notes"], changes["html_notes"] = self._notes(data, richtext.TASK_TAGS)
        if "assignee" in data:
            changes["assignee"] = self.resolve_user(data["assignee"], ctx, "assignee", task["workspace"])
        if "completed" in data:
            changes["completed"] = bool(data["completed"])
            changes["completed_at"] = now_iso() if changes["completed"] else None
        for key in ("due_on", "due_at", "start_on", "start_at"):
            if key in data:
                changes[key] = data[key]
        if "external" in data:
            ext = self._external(data["external"], ctx, task["gid"])
            changes["external"] = {**task.get("external", {}), ctx["client_id"]: ext} if ext else \
                {k: v for k, v in task.get("external", {}).items() if k != ctx.get("client_id")}
        with self.state.change():
            rec = self._t("tasks")[task["gid"]]
            rec.update(changes)
            rec["modified_at"] = now_iso()

    def create_attachment(self, *, parent_ref: str, ctx: dict, name: str | None, subtype: str,
                          content: bytes | None, content_type: str | None, url: str | None) -> str:
        """POST /attachments: an uploaded file (`asana`) or a link (`external`) on a task or project."""
        parent = self.find_task(parent_ref, ctx)
        parent_type = "task"
        if parent is None:
            parent = self.get("projects", parent_ref)
            parent_type = "project"
        if parent is None:
            raise ApiError(400, f"parent: Not a recognized ID: {parent_ref}")
        if not self.member_of(ctx["user"], parent["workspace"]):
            raise ApiError(403, "You do not have access to this object")
        if subtype == "external":
            if not url or not name:
                raise ApiError(400, "url: An external attachment needs url and name")
            size, host = 0, "external"
        elif subtype == "asana":
            if content is None:
                raise ApiError(400, "file: Missing input")
            if len(content) > self.attachment_max_bytes:
                raise ApiError(400, f"file: File is too large; the limit is {self.attachment_max_bytes} bytes")
            size, host = len(content), "asana"
        else:
            raise ApiError(400, f"resource_subtype: Unknown value: {subtype}")
        gid = self.new_gid()
        with self.state.change():
            self._t("attachments")[gid] = {
                "gid": gid, "name": name or "upload", "resource_subtype": subtype, "host": host,
                "parent": parent["gid"], "parent_type": parent_type, "size": size, "url": url,
                "content_type": content_type or "application/octet-stream", "created_at": now_iso(),
            }
            if content is not None and subtype == "asana":
                self._t("blobs")[gid] = base64.b64encode(content).decode("ascii")
        return gid

    def delete_attachment(self, gid: str) -> None:
        with self.state.change():
            self._t("attachments").pop(gid, None)
            self._t("blobs").pop(gid, None)
