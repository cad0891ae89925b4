"""The Asana endpoints the hub uses (FACTS §4), each with its spec operationId in the docstring."""
from __future__ import annotations

from flask import Blueprint, g, request

from .api import (
    _emu, body_data, bool_arg, json_response, list_response, location, scoped, single,
    task_for, user_gid, visible,
)
from .models import ApiError


def register(bp: Blueprint) -> None:
    # -- workspaces ------------------------------------------------------------------------------
    @bp.get("/workspaces")
    @scoped("workspaces:read")
    def get_workspaces():
        """getWorkspaces: the workspaces and organizations the user belongs to."""
        me = g.asana_ctx["user"]
        return list_response("workspace", [w for w in _emu().workspaces() if _emu().member_of(me, w["gid"])])

    @bp.get("/workspaces/<workspace_gid>")
    @scoped("workspaces:read")
    def get_workspace(workspace_gid: str):
        """getWorkspace: full record with is_organization and email_domains."""
        visible("workspaces", workspace_gid, "workspace")
        return single("workspace", workspace_gid)

    # -- teams -----------------------------------------------------------------------------------
    @bp.get("/workspaces/<workspace_gid>/teams")
    @scoped("teams:read")
    def get_teams_for_workspace(workspace_gid: str):
        """getTeamsForWorkspace: only organizations have teams."""
        ws = visible("workspaces", workspace_gid, "workspace")
        if not ws["is_organization"]:
            raise ApiError(400, "workspace: Only organizations have teams")
        return list_response("team", [t for t in _emu().teams() if t["organization"] == workspace_gid])

    @bp.get("/users/<user_ref>/teams")
    @scoped("teams:read")
    def get_teams_for_user(user_ref: str):
        """getTeamsForUser: `organization` is required."""
        org = request.args.get("organization")
        if not org:
            raise ApiError(400, "organization: Missing input")
        visible("workspaces", org, "organization")
        user = _emu().get("users", user_gid(user_ref))
        return list_response("team", [t for t in _emu().teams()
                                      if t["organization"] == org and t["gid"] in user["teams"]])

    @bp.get("/teams/<team_gid>")
    @scoped("teams:read")
    def get_team(team_gid: str):
        """getTeam."""
        visible("teams", team_gid, "team")
        return single("team", team_gid)

    # -- projects --------------------------------------------------------------------------------
    def project_list(predicate) -> object:
        archived = bool_arg("archived")
        me = g.asana_ctx["user"]
        return list_response("project", [
            p for p in _emu().projects()
            if predicate(p) and (archived is None or p["archived"] == archived)
            and _emu().member_of(me, p["workspace"])])

    @bp.get("/projects")
    @scoped("projects:read")
    def get_projects():
        """getProjects: filter by workspace and/or (deprecated) team."""
        ws, team = request.args.get("workspace"), request.args.get("team")
        if ws:
            visible("workspaces", ws, "workspace")
        if team:
            visible("teams", team, "team")
        return project_list(lambda p: (not ws or p["workspace"] == ws) and (not team or p["team"] == team))

    @bp.get("/workspaces/<workspace_gid>/projects")
    @scoped("projects:read")
    def get_projects_for_workspace(workspace_gid: str):
        """getProjectsForWorkspace."""
        visible("workspaces", workspace_gid, "workspace")
        return project_list(lambda p: p["workspace"] == workspace_gid)

    @bp.get("/teams/<team_gid>/projects")
    @scoped("projects:read")
    def get_projects_for_team(team_gid: str):
        """getProjectsForTeam."""
        visible("teams", team_gid, "team")
        return project_list(lambda p: p["team"] == team_gid)

    @bp.get("/projects/<project_gid>")
    @scoped("projects:read")
    def get_project(project_gid: str):
        """getProject."""
        visible("projects", project_gid, "project")
        return single("project", project_gid)

    def created_project(gid: str, options: dict):
        return single("project", gid, 201, options, location("asana_api.get_project", project_gid=gid))

    @bp.post("/projects")
    @scoped("projects:write")
    def create_project():
        """createProject: workspace required; team required in an organization."""
        data, options = body_data()
        return created_project(_emu().create_project(data, g.asana_ctx), options)

    @bp.post("/workspaces/<workspace_gid>/projects")
    @scoped("projects:write")
    def create_project_for_workspace(workspace_gid: str):
        """createProjectForWorkspace: team still required in an organization."""
        visible("workspaces", workspace_gid, "workspace")
        data, options = body_data()
        return created_project(_emu().create_project(data, g.asana_ctx, workspace=workspace_gid), options)

    @bp.post("/teams/<team_gid>/projects")
    @scoped("projects:write")
    def create_project_for_team(team_gid: str):
        """createProjectForTeam: the route that needs no deprecated `team` body field."""
        visible("teams", team_gid, "team")
        data, options = body_data()
        return created_project(_emu().create_project(data, g.asana_ctx, team=team_gid), options)

    # -- users -----------------------------------------------------------------------------------
    @bp.get("/users")
    @scoped("users:read")
    def get_users():
        """getUsers: by workspace or team, sorted by user id, paginated."""
        ws, team = request.args.get("workspace"), request.args.get("team")
        if not ws and not team:
            raise ApiError(400, "workspace: Missing input")
        if ws:
            visible("workspaces", ws, "workspace")
        if team:
            visible("teams", team, "team")
        return list_response("user", [u for u in _emu().users()
                                      if (not ws or ws in u["workspaces"]) and (not team or team in u["teams"])])

    @bp.get("/workspaces/<workspace_gid>/users")
    @scoped("users:read")
    def get_users_for_workspace(workspace_gid: str):
        """getUsersForWorkspace: alphabetical, no `limit` (only `offset`), capped at 2000."""
        visible("workspaces", workspace_gid, "workspace")
        return list_response("user", [u for u in _emu().users() if workspace_gid in u["workspaces"]],
                             sort_key=lambda u: [u["name"].lower(), int(u["gid"])], paginated=False, cap=2000)

    @bp.get("/users/<user_ref>")
    @scoped("users:read")
    def get_user(user_ref: str):
        """getUser: `me`, an email or a gid."""
        return single("user", user_gid(user_ref))

    # -- tasks -----------------------------------------------------------------------------------
    @bp.post("/tasks")
    @scoped("tasks:write")
    def create_task():
        """createTask: 201 with the default full record and a Location header."""
        data, options = body_data()
        gid = _emu().create_task(data, g.asana_ctx)
        return single("task", gid, 201, options, location("asana_api.get_task", task_gid=gid))

    @bp.get("/tasks/<path:task_gid>")
    @scoped("tasks:read")
    def get_task(task_gid: str):
        """getTask: a gid or `external:<id>` set by this OAuth app."""
        return single("task", task_for(task_gid)["gid"])

    @bp.put("/tasks/<path:task_gid>")
    @scoped("tasks:write")
    def update_task(task_gid: str):
        """updateTask: scalar fields, rich text and external data."""
        task = task_for(task_gid)
        data, options = body_data()
        _emu().update_task(task, data, g.asana_ctx)
        return single("task", task["gid"], 200, options)

    @bp.get("/tasks")
    @scoped("tasks:read")
    def get_tasks():
        """getTasks: needs a project, a section, or assignee + workspace."""
        project, section = request.args.get("project"), request.args.get("section")
        assignee, ws = request.args.get("assignee"), request.args.get("workspace")
        if project:
            visible("projects", project, "project")
            tasks = _emu().tasks(project)
        elif section:
            sec = _emu().get("sections", section)
            if sec is None:
                raise ApiError(404, f"section: Unknown object: {section}")
            visible("projects", sec["project"], "project")
            tasks = [t for t in _emu().tasks() if any(m["section"] == section for m in t["memberships"])]
        elif assignee and ws:
            visible("workspaces", ws, "workspace")
            who = user_gid(assignee)
            tasks = [t for t in _emu().tasks() if t["workspace"] == ws and t["assignee"] == who]
        elif assignee:
            raise ApiError(400, "workspace: Missing input")
        else:
            raise ApiError(400, "project: Missing input")
        return list_response("task", tasks)

    @bp.get("/projects/<project_gid>/tasks")
    @scoped("tasks:read")
    def get_tasks_for_project(project_gid: str):
        """getTasksForProject."""
        visible("projects", project_gid, "project")
        return list_response("task", _emu().tasks(project_gid))

    # -- attachments -----------------------------------------------------------------------------
    @bp.post("/attachments")
    @scoped("attachments:write")
    def create_attachment():
        """createAttachmentForObject: multipart upload or external link; 200, not 201."""
        if request.mimetype != "multipart/form-data":
            raise ApiError(400, "Request must be multipart/form-data")
        parent = request.form.get("parent")
        if not parent:
            raise ApiError(400, "parent: Missing input")
        upload = request.files.get("file")
        content = None
        if upload is not None:
            limit = _emu().attachment_max_bytes
            content = upload.stream.read(limit + 1)
        subtype = request.form.get("resource_subtype", "asana")
        gid = _emu().create_attachment(
            parent_ref=parent, ctx=g.asana_ctx, name=request.form.get("name") or (upload.filename if upload else None),
            subtype=subtype, content=content, content_type=upload.mimetype if upload else None,
            url=request.form.get("url"))
        options = {"fields": request.form["opt_fields"]} if "opt_fields" in request.form else None
        return single("attachment", gid, 200, options)

    @bp.get("/attachments")
    @scoped("attachments:read")
    def get_attachments_for_object():
        """getAttachmentsForObject: `parent` (task or project) required."""
        parent = request.args.get("parent")
        if not parent:
            raise ApiError(400, "parent: Missing input")
        task = _emu().find_task(parent, g.asana_ctx)
        gid = task_for(parent)["gid"] if task else visible("projects", parent, "parent")["gid"]
        return list_response("attachment", _emu().attachments(gid))

    @bp.get("/attachments/<attachment_gid>")
    @scoped("attachments:read")
    def get_attachment(attachment_gid: str):
        """getAttachment: with a fresh short-lived download_url."""
        att = _emu().get("attachments", attachment_gid)
        if att is None:
            raise ApiError(404, f"attachment: Unknown object: {attachment_gid}")
        table = "tasks" if att["parent_type"] == "task" else "projects"
        visible(table, att["parent"], "attachment")
        return single("attachment", attachment_gid)

    @bp.delete("/attachments/<attachment_gid>")
    @scoped("attachments:delete")
    def delete_attachment(attachment_gid: str):
        """deleteAttachment: 200 with an empty data object."""
        att = _emu().get("attachments", attachment_gid)
        if att is None:
            raise ApiError(404, f"attachment: Unknown object: {attachment_gid}")
        visible("tasks" if att["parent_type"] == "task" else "projects", att["parent"], "attachment")
        _emu().delete_attachment(attachment_gid)
        return json_response({"data": {}})

