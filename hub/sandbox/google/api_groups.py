"""People API v1 `contactGroups.*` methods: labels, their paging/sync, and member changes."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request

from .api import bool_arg, int_arg, json_body, require_read, require_write
from .emulator import GROUP_DEFAULT_FIELDS, GROUP_FIELDS, GoogleSandbox, _group_client_data, _group_etag, _group_id
from .errors import ApiError, invalid_argument, unknown_field
from .people import parse_mask

CONTACT_GROUP_PROPERTIES = {"clientData", "etag", "formattedName", "groupType", "memberCount",
                            "memberResourceNames", "metadata", "name", "resourceName"}
READ_DEFAULT_AFTER_WRITE = {"metadata", "groupType", "name"}


def _group_fields(raw: str | None, default: set[str], param: str) -> set[str]:
    return parse_mask(raw, GROUP_FIELDS, param, required=False, default=default)


def _contact_group_body(body: dict[str, Any], allowed: set[str], where: str) -> dict[str, Any]:
    for key in body:
        if key not in allowed:
            raise unknown_field(key, where)
    group = body.get("contactGroup")
    if not isinstance(group, dict):
        raise invalid_argument("contactGroup is required.", "contactGroup")
    for key in group:
        if key not in CONTACT_GROUP_PROPERTIES:
            raise unknown_field(key, "contact_group")
    return group


def register_group_routes(bp: Blueprint, sb: GoogleSandbox) -> None:
    @bp.get("/v1/contactGroups")
    def groups_list():
        require_read()
        fields = _group_fields(request.args.get("groupFields"), GROUP_DEFAULT_FIELDS, "groupFields")
        params = {"groupFields": sorted(fields), "pageSize": int_arg("pageSize", 30, 1, 1000, "page_size"),
                  "syncToken": request.args.get("syncToken") or ""}
        page_token = request.args.get("pageToken") or ""
        sb.charge(g.account_id, read=1)
        now = sb.clock()
        with sb.state.change() as data:
            root = data["google"]
            acct = sb.account(g.account_id)
            sb._prune_tokens(root, now)
            if page_token:
                cursor = sb.use_page_token(root, acct, page_token, "groups", params, now)
            else:
                if params["syncToken"]:
                    token = sb.use_sync_token(root, acct, params["syncToken"], "groups", now)
                    chosen = sorted((x for x in acct["groups"].values() if x["seq"] > token["seq"]),
                                    key=lambda x: x["seq"])
                    full_at = token["full_sync_at"]
                else:
                    chosen = sorted((x for x in acct["groups"].values() if not x["deleted"]),
                                    key=lambda x: (not x["system"], x["seq"]))
                    full_at = now
                cursor = {"ids": [x["id"] for x in chosen], "offset": 0, "seq": acct["seq"],
                          "sync": bool(params["syncToken"]), "full_sync_at": full_at, "params": params}
            offset, size = cursor["offset"], params["pageSize"]
            page = []
            for gid in cursor["ids"][offset:offset + size]:
                grp = acct["groups"].get(gid)
                if grp is None or (grp["deleted"] and not cursor["sync"]):
                    continue
                page.append(sb.render_group(acct, grp, fields))
            out: dict[str, Any] = {}
            if page:
                out["contactGroups"] = page
            if offset + size < len(cursor["ids"]):
                out["nextPageToken"] = sb.issue_page_token(root, acct, "groups", dict(cursor, offset=offset + size),
                                                           now)
            else:
                out["nextSyncToken"] = sb.issue_sync_token(root, acct, "groups", {}, cursor["full_sync_at"],
                                                           seq=cursor["seq"])
            if cursor["ids"]:
                out["totalItems"] = len(cursor["ids"])
            return jsonify(out)

    @bp.post("/v1/contactGroups")
    def groups_create():
        require_write()
        body = json_body()
        group = _contact_group_body(body, {"contactGroup", "readGroupFields"}, "create_contact_group_request")
        fields = _group_fields(body.get("readGroupFields"), READ_DEFAULT_AFTER_WRITE, "readGroupFields")
        sb.charge(g.account_id, write=1)
        with sb.state.change():
            acct = sb.account(g.account_id)
            grp = sb._new_group(acct, group.get("name"), group.get("clientData"))
            return jsonify(sb.render_group(acct, grp, fields))

    @bp.get("/v1/contactGroups:batchGet")
    def groups_batch_get():
        require_read()
        fields = _group_fields(request.args.get("groupFields"), GROUP_DEFAULT_FIELDS, "groupFields")
        max_members = int_arg("maxMembers", 0, 0, 2**31 - 1, "max_members")
        names = request.args.getlist("resourceNames")
        if not names:
            raise invalid_argument("At least one resourceNames value is required.", "resourceNames")
        if len(names) > 200:
            raise invalid_argument("Too many resourceNames: at most 200 are allowed.", "resourceNames")
        sb.charge(g.account_id, read=1)
        responses = []
        with sb.state.lock:
            acct = sb.account(g.account_id)
            for name in names:
                entry: dict[str, Any] = {"requestedResourceName": name}
                try:
                    grp = sb._group(acct, _group_id(name))
                    entry.update(contactGroup=sb.render_group(acct, grp, fields, max_members=max_members), status={})
                except ApiError as exc:
                    entry["status"] = exc.as_status()
                responses.append(entry)
        return jsonify({"responses": responses})

    @bp.get("/v1/contactGroups/<seg:gid>")
    def groups_get(gid: str):
        require_read()
        fields = _group_fields(request.args.get("groupFields"), GROUP_DEFAULT_FIELDS, "groupFields")
        max_members = int_arg("maxMembers", 0, 0, 2**31 - 1, "max_members")
        sb.charge(g.account_id, read=1)
        with sb.state.lock:
            acct = sb.account(g.account_id)
            return jsonify(sb.render_group(acct, sb._group(acct, gid), fields, max_members=max_members))

    @bp.put("/v1/contactGroups/<seg:gid>")
    def groups_update(gid: str):
        require_write()
        body = json_body()
        group = _contact_group_body(body, {"contactGroup", "readGroupFields", "updateGroupFields"},
                                    "update_contact_group_request")
        update = parse_mask(body.get("updateGroupFields"), {"clientData", "name"}, "updateGroupFields",
                            required=False, default={"name"})
        fields = _group_fields(body.get("readGroupFields"), READ_DEFAULT_AFTER_WRITE, "readGroupFields")
        if group.get("resourceName") not in (None, f"contactGroups/{gid}"):
            raise invalid_argument("contactGroup.resourceName does not match the resource name in the path.",
                                   "contactGroup.resourceName")
        sb.charge(g.account_id, write=1)
        with sb.state.change():
            acct = sb.account(g.account_id)
            grp = sb._user_group(acct, f"contactGroups/{gid}")
            if group.get("etag") and group["etag"] != _group_etag(grp):
                msg = ("Request contactGroup.etag is different than the current contactGroup.etag. "
                       "Clear local cache and get the latest contact group.")
                raise ApiError(400, "FAILED_PRECONDITION", msg,
                               errors=[{"message": msg, "domain": "global", "reason": "failedPrecondition"}])
            name = sb._group_name(acct, group.get("name"), exclude=gid) if "name" in update else grp["name"]
            client_data = _group_client_data(group.get("clientData")) if "clientData" in update else grp["clientData"]
            grp["name"], grp["clientData"] = name, client_data
            sb._bump(acct, grp)
            return jsonify(sb.render_group(acct, grp, fields))

    @bp.delete("/v1/contactGroups/<seg:gid>")
    def groups_delete(gid: str):
        require_write()
        delete_contacts = bool_arg("deleteContacts")
        sb.charge(g.account_id, write=1)
        with sb.state.change():
            acct = sb.account(g.account_id)
            sb._delete_group(acct, sb._user_group(acct, f"contactGroups/{gid}"), delete_contacts)
        return jsonify({})

    @bp.post("/v1/contactGroups/<seg:gid>/members:modify")
    def groups_modify_members(gid: str):
        require_write()
        body = json_body()
        for key in body:
            if key not in ("resourceNamesToAdd", "resourceNamesToRemove"):
                raise unknown_field(key, "modify_contact_group_members_request")
        add = body.get("resourceNamesToAdd") or []
        remove = body.get("resourceNamesToRemove") or []
        if not isinstance(add, list) or not isinstance(remove, list):
            raise invalid_argument("resourceNamesToAdd and resourceNamesToRemove must be lists.", "resourceNamesToAdd")
        sb.charge(g.account_id, write=1)
        with sb.state.change():
            acct = sb.account(g.account_id)
            return jsonify(sb._modify_members(acct, gid, [str(x) for x in add], [str(x) for x in remove]))
