"""Tasks: status 2-6, sub-status (-1 overdue, -2 not viewed, -3 almost overdue), control on completion.

Input is UPPER (`fields[RESPONSIBLE_ID]`), output camelCase (`responsibleId`) with string values, as
tasks.task.* shows them; `ufCrmTask` only comes back when UF_CRM_TASK is selected.

Transitions (the status page of the docs): start 2->3, pause 3->2, defer 2|3->6, complete 2|3 ->
5, or -> 4 "supposedly completed" when control is on and someone other than the creator completes
it; approve 4->5 and disapprove 4->2 (back to work) by the creator; renew 4|5|6 -> 2. A task with
SE_PARAMETER code 3 ("result required") cannot be completed by others before a result exists
(`add_task_result`, listed by tasks.task.result.list; params WITH_RESULT_INFO adds the flags).
`subStatus` is computed on read: -1 when an open task's deadline has passed, else -2 while the
responsible has not opened it (pending only), else -3 within a day of its deadline, else `status`.
Viewing is not a change (no event), as in Bitrix24."""
from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from .query import as_list
from .util import RestError, iso, parse_time, to_int, yn

PENDING, IN_PROGRESS, AWAITING_CONTROL, COMPLETED, DEFERRED = 2, 3, 4, 5, 6
OPEN = (PENDING, IN_PROGRESS)
ALMOST_OVERDUE_SECONDS = 24 * 3600
CRM_REF = re.compile(r"^(L|D|C|CO|SI|T[0-9a-f]+)_\d+$")
DEFAULT_SELECT = ("ID", "PARENT_ID", "TITLE", "DESCRIPTION", "MARK", "PRIORITY", "MULTITASK", "NOT_VIEWED",
                  "REPLICATE", "STAGE_ID", "CREATED_BY", "CREATED_DATE", "RESPONSIBLE_ID", "CHANGED_BY",
                  "CHANGED_DATE", "STATUS_CHANGED_BY", "STATUS_CHANGED_DATE", "CLOSED_BY", "CLOSED_DATE",
                  "ACTIVITY_DATE", "DATE_START", "DEADLINE", "START_DATE_PLAN", "END_DATE_PLAN", "GUID", "XML_ID",
                  "COMMENTS_COUNT", "ALLOW_CHANGE_DEADLINE", "TASK_CONTROL", "ADD_IN_REPORT", "TIME_ESTIMATE",
                  "VIEWED_DATE", "DURATION_FACT", "DESCRIPTION_IN_BBCODE", "STATUS", "GROUP_ID", "AUDITORS",
                  "ACCOMPLICES", "FAVORITE")
FILTERABLE = {"ID", "PARENT_ID", "GROUP_ID", "CREATED_BY", "STATUS_CHANGED_BY", "PRIORITY", "RESPONSIBLE_ID", "TITLE",
              "TAG", "REAL_STATUS", "STATUS", "MARK", "DATE_START", "DEADLINE", "CREATED_DATE", "CLOSED_DATE",
              "CHANGED_DATE", "ACCOMPLICE", "AUDITOR", "STAGE_ID", "UF_CRM_TASK", "MEMBER"}
UF_FIELDS = ("UF_CRM_TASK", "UF_TASK_WEBDAV_FILES", "UF_MAIL_MESSAGE")
INPUT = {"TITLE", "DESCRIPTION", "RESPONSIBLE_ID", "CREATED_BY", "DEADLINE", "PRIORITY", "TASK_CONTROL",
         "UF_CRM_TASK", "AUDITORS", "ACCOMPLICES", "GROUP_ID", "START_DATE_PLAN", "END_DATE_PLAN", "PARENT_ID",
         "ALLOW_CHANGE_DEADLINE", "XML_ID", "STATUS", "TAGS", "MARK", "SE_PARAMETER"}
REQUIRE_RESULT = "3"   # SE_PARAMETER code: the responsible must write a result (summary) to complete


def camel(name: str) -> str:
    head, *rest = name.lower().split("_")
    return head + "".join(part.title() for part in rest)


def upper(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


class TasksMixin:
    def _task(self, portal: str, task_id: Any) -> dict:
        """Call under the lock; a task that does not exist (or is gone) refuses every action."""
        try:
            key = str(int(str(task_id).strip()))
        except ValueError:
            raise RestError("0", "wrong task id", 400) from None
        t = self.portal(portal)["tasks"].get(key)
        if t is None:
            raise RestError("1048582", "Action on the task is not allowed", 400)
        return t

    def task(self, portal: str, task_id: Any) -> dict | None:
        with self.state.lock:
            t = self.portal(portal)["tasks"].get(str(task_id))
            return copy.deepcopy(t) if t else None

    def tasks(self, portal: str) -> list[dict]:
        with self.state.lock:
            return [copy.deepcopy(t) for t in sorted(self.portal(portal)["tasks"].values(), key=lambda t: t["id"])]

    # -- create and update ------------------------------------------------------------------------
    def _task_fields(self, p: dict, fields: Any, t: dict) -> None:
        if not isinstance(fields, dict):
            raise RestError("100", "fields: expected an object", 400)
        for raw, value in fields.items():
            key = str(raw).upper() if str(raw).isupper() or "_" in str(raw) else upper(str(raw))
            if key not in INPUT:
                continue
            if key == "TITLE":
                if not str(value or "").strip():
                    raise RestError("ERROR_CORE", "TITLE: the task name is not specified", 400)
                t["title"] = str(value).strip()
            elif key == "DESCRIPTION":
                t["description"] = "" if value is None else str(value)
            elif key in ("RESPONSIBLE_ID", "CREATED_BY"):
                uid = str(to_int(value, key))
                if uid not in p["users"]:
                    raise RestError("ERROR_CORE", f"{key}: user {uid} not found", 400)
                t["responsibleId" if key == "RESPONSIBLE_ID" else "createdBy"] = int(uid)
            elif key in ("DEADLINE", "START_DATE_PLAN", "END_DATE_PLAN"):
                t[camel(key)] = parse_time(value, key)
            elif key == "PRIORITY":
                prio = to_int(value, key)
                if prio not in (0, 1, 2):
                    raise RestError("ERROR_CORE", "PRIORITY: 0 (low), 1 (medium) or 2 (high)", 400)
                t["priority"] = prio
            elif key in ("TASK_CONTROL", "ALLOW_CHANGE_DEADLINE"):
                t[camel(key)] = yn(value, key)
            elif key == "UF_CRM_TASK":
                refs = [str(v) for v in as_list(value) if str(v)]
                bad = [r for r in refs if not CRM_REF.match(r)]
                if bad:
                    raise RestError("ERROR_CORE", f"UF_CRM_TASK: not a CRM binding: {bad[0]!r} "
                                                  f"(L_<id>, D_<id>, C_<id>, CO_<id>)", 400)
                t["ufCrmTask"] = refs
            elif key in ("AUDITORS", "ACCOMPLICES"):
                ids = []
                for v in as_list(value):
                    uid = str(to_int(v, key))
                    if uid not in p["users"]:
                        raise RestError("ERROR_CORE", f"{key}: user {uid} not found", 400)
                    ids.append(int(uid))
                t[camel(key)] = sorted(set(ids))
            elif key in ("GROUP_ID", "PARENT_ID"):
                t[camel(key)] = to_int(value or 0, key)
            elif key == "STATUS":
                status = to_int(value, key)
                if status not in (1, 2, 3, 4, 5, 6, 7):
                    raise RestError("ERROR_CORE", "STATUS: unknown status", 400)
                t["_status_request"] = 2 if status == 1 else status
            elif key in ("XML_ID", "MARK"):
                t[camel(key)] = None if value is None else str(value)
            elif key == "TAGS":
                t["tags"] = [str(v) for v in as_list(value)]
            elif key == "SE_PARAMETER":
                for item in as_list(value):
                    if not isinstance(item, dict) or "CODE" not in item:
                        raise RestError("ERROR_CORE", "SE_PARAMETER: a list of {CODE, VALUE}", 400)
                    if str(item["CODE"]) == REQUIRE_RESULT:
                        t["requireResult"] = yn(item.get("VALUE", "Y"), "SE_PARAMETER")

    def create_task(self, portal: str, fields: dict, *, actor: int | None = None, automation: bool = False) -> dict:
        with self.state.change():
            p = self.portal(portal)
            actor = int(actor or p["info"]["admin_id"])
            now = self.now()
            t = {"id": None, "parentId": 0, "title": "", "description": "", "priority": 1, "status": PENDING,
                 "createdBy": actor, "responsibleId": actor, "createdDate": now, "changedBy": actor,
                 "changedDate": now, "statusChangedBy": actor, "statusChangedDate": now, "closedBy": None,
                 "closedDate": None, "dateStart": None, "deadline": None, "startDatePlan": None, "endDatePlan": None,
                 "taskControl": False, "allowChangeDeadline": True, "ufCrmTask": [], "auditors": [],
                 "accomplices": [], "groupId": 0, "viewedBy": {}, "guid": "{" + str(uuid.uuid4()) + "}",
                 "xmlId": None, "mark": None, "tags": [], "commentsCount": 0, "history": [],
                 "requireResult": False, "results": []}
            if "TITLE" not in {str(k).upper() for k in (fields or {})} and "title" not in (fields or {}):
                raise RestError("ERROR_CORE", "TITLE: the task name is not specified", 400)
            self._task_fields(p, fields, t)
            requested = t.pop("_status_request", None)
            t["id"] = self.next_id(portal, "task")
            t["viewedBy"] = {str(actor): now}            # the creator has seen what they wrote
            if requested in (IN_PROGRESS, DEFERRED):
                t["status"] = requested
            p["tasks"][str(t["id"])] = t
            t["history"].append({"at": now, "by": actor, "what": "created"})
            result = copy.deepcopy(t)
        self.emit(portal, "ONTASKADD", _task_event(None, result["id"]), user_id=actor, automation=automation,
                  object_id=str(result["id"]))
        return result

    def update_task(self, portal: str, task_id: Any, fields: dict, *, actor: int | None = None,
                    automation: bool = False) -> dict:
        with self.state.change():
            p = self.portal(portal)
            t = self._task(portal, task_id)
            actor = int(actor or p["info"]["admin_id"])
            new = copy.deepcopy(t)
            self._task_fields(p, fields, new)
            requested = new.pop("_status_request", None)
            if requested is not None and requested != new["status"]:
                self._set_status(new, requested, actor)
            if new != t:
                new.update(changedBy=actor, changedDate=self.now())
                if new["deadline"] != t["deadline"]:
                    new["history"].append({"at": self.now(), "by": actor, "what": "deadline"})
                if new["responsibleId"] != t["responsibleId"]:
                    new["viewedBy"].pop(str(new["responsibleId"]), None)
                t.clear()
                t.update(new)
            result = copy.deepcopy(t)
        self.emit(portal, "ONTASKUPDATE", _task_event(result["id"], result["id"]), user_id=actor,
                  automation=automation, object_id=str(result["id"]))
        return result

    def delete_task(self, portal: str, task_id: Any, *, actor: int | None = None) -> None:
        with self.state.change():
            p = self.portal(portal)
            t = self._task(portal, task_id)
            del p["tasks"][str(t["id"])]
        self.emit(portal, "ONTASKDELETE", {"FIELDS_BEFORE": {"ID": t["id"]}, "FIELDS_AFTER": "undefined",
                                           "IS_ACCESSIBLE_BEFORE": "undefined", "IS_ACCESSIBLE_AFTER": "N"},
                  user_id=actor, object_id=str(t["id"]))

    def can_see_task(self, portal: str, t: dict, user_id: int) -> bool:
        """Admins see every task; others the tasks they create, do, watch or help with."""
        with self.state.lock:
            user = self.portal(portal)["users"].get(str(user_id))
        if user is None or not user["ACTIVE"]:
            return False
        return bool(user["ADMIN"]) or int(user_id) in (t["createdBy"], t["responsibleId"], *t["auditors"],
                                                        *t["accomplices"])

    def view_task(self, portal: str, task_id: Any, user_id: int) -> dict:
        """Someone opens the task: `notViewed` / sub-status -2 end once the responsible has."""
        with self.state.change():
            t = self._task(portal, task_id)
            t["viewedBy"].setdefault(str(int(user_id)), self.now())
            return copy.deepcopy(t)

    # -- status actions ---------------------------------------------------------------------------
    def _set_status(self, t: dict, status: int, actor: int) -> None:
        now = self.now()
        t.update(status=status, statusChangedBy=actor, statusChangedDate=now, changedBy=actor, changedDate=now)
        if status == IN_PROGRESS and not t["dateStart"]:
            t["dateStart"] = now
        if status in (COMPLETED, AWAITING_CONTROL):
            t.update(closedBy=actor, closedDate=now)
        elif status in (PENDING, IN_PROGRESS, DEFERRED):
            t.update(closedBy=None, closedDate=None)
        t["history"].append({"at": now, "by": actor, "what": f"status {status}"})

    def task_action(self, portal: str, task_id: Any, action: str, *, actor: int | None = None,
                    automation: bool = False) -> dict:
        with self.state.change():
            p = self.portal(portal)
            t = self._task(portal, task_id)
            actor = int(actor or p["info"]["admin_id"])
            status = t["status"]
            is_creator = actor == t["createdBy"] or p["users"].get(str(actor), {}).get("ADMIN")
            target = None
            if action == "start" and status in (PENDING, DEFERRED):
                target = IN_PROGRESS
            elif action == "pause" and status == IN_PROGRESS:
                target = PENDING
            elif action == "defer" and status in OPEN:
                target = DEFERRED
            elif action == "complete" and status in (*OPEN, DEFERRED):
                if t.get("requireResult") and not t.get("results") and actor != t["createdBy"]:
                    raise RestError("ERROR_CORE", "The task requires a result (summary) before it is completed", 400)
                target = AWAITING_CONTROL if t["taskControl"] and actor != t["createdBy"] else COMPLETED
            elif action == "approve" and status == AWAITING_CONTROL and is_creator:
                target = COMPLETED
            elif action == "disapprove" and status == AWAITING_CONTROL and is_creator:
                target = PENDING
            elif action == "renew" and status in (AWAITING_CONTROL, COMPLETED, DEFERRED):
                target = PENDING
            if target is None:
                code = "0" if action == "start" else "1048582"
                raise RestError(code, "Action on the task is not allowed", 400)
            self._set_status(t, target, actor)
            result = copy.deepcopy(t)
        self.emit(portal, "ONTASKUPDATE", _task_event(result["id"], result["id"]), user_id=actor,
                  automation=automation, object_id=str(result["id"]))
        return result

    def add_task_result(self, portal: str, task_id: Any, text: str, *, actor: int | None = None) -> dict:
        """A result (summary): a fixed comment; the sandbox stores the text alone (no comment item)."""
        if not str(text or "").strip():
            raise RestError("ERROR_CORE", "text: the result needs a text", 400)
        with self.state.change():
            p = self.portal(portal)
            t = self._task(portal, task_id)
            actor = int(actor or p["info"]["admin_id"])
            now = self.now()
            res = {"id": self.next_id(portal, "result"), "taskId": t["id"], "commentId": None, "createdBy": actor,
                   "createdAt": iso(now), "updatedAt": iso(now), "status": 0, "text": str(text).strip(),
                   "formattedText": str(text).strip(), "files": []}
            t.setdefault("results", []).append(res)
            t.update(changedBy=actor, changedDate=now, commentsCount=t["commentsCount"] + 1)
            t["history"].append({"at": now, "by": actor, "what": "result"})
            tid = t["id"]
        self.emit(portal, "ONTASKUPDATE", _task_event(tid, tid), user_id=actor, object_id=str(tid))
        return copy.deepcopy(res)

    # -- rendering --------------------------------------------------------------------------------
    def sub_status(self, t: dict) -> int:
        now = self.now()
        if t["status"] in OPEN and t["deadline"] is not None and t["deadline"] < now:
            return -1
        if t["status"] == PENDING and str(t["responsibleId"]) not in t["viewedBy"]:
            return -2
        if t["status"] in OPEN and t["deadline"] is not None and t["deadline"] - now <= ALMOST_OVERDUE_SECONDS:
            return -3
        return t["status"]

    def render_task(self, portal: str, t: dict, select: list | None = None, result_info: bool = False) -> dict:
        """tasks.task.* shape: camelCase, string values; `select` of UPPER names (default set);
        `result_info` (params WITH_RESULT_INFO) adds taskRequireResult / taskHasResult / taskHasOpenResult."""
        wanted = [str(s).upper() for s in (select or [])] or list(DEFAULT_SELECT)
        if result_info:
            wanted += ["TASK_REQUIRE_RESULT", "TASK_HAS_RESULT", "TASK_HAS_OPEN_RESULT"]
        if "*" in wanted:
            wanted = list(DEFAULT_SELECT) + [w for w in wanted if w != "*"]
        if "ID" not in wanted:
            wanted.insert(0, "ID")
        with self.state.lock:
            users = self.portal(portal)["users"]
        responsible_viewed = t["viewedBy"].get(str(t["responsibleId"]))
        values = {
            "ID": str(t["id"]), "PARENT_ID": str(t["parentId"] or 0) if t["parentId"] else None, "TITLE": t["title"],
            "DESCRIPTION": t["description"], "MARK": t["mark"], "PRIORITY": str(t["priority"]), "MULTITASK": "N",
            "NOT_VIEWED": "N" if responsible_viewed else "Y", "REPLICATE": "N", "STAGE_ID": "0",
            "CREATED_BY": str(t["createdBy"]), "CREATED_DATE": iso(t["createdDate"]),
            "RESPONSIBLE_ID": str(t["responsibleId"]), "CHANGED_BY": str(t["changedBy"]),
            "CHANGED_DATE": iso(t["changedDate"]), "STATUS_CHANGED_BY": str(t["statusChangedBy"]),
            "STATUS_CHANGED_DATE": iso(t["statusChangedDate"]),
            "CLOSED_BY": str(t["closedBy"]) if t["closedBy"] else None, "CLOSED_DATE": iso(t["closedDate"]),
            "ACTIVITY_DATE": iso(t["changedDate"]), "DATE_START": iso(t["dateStart"]), "DEADLINE": iso(t["deadline"]),
            "START_DATE_PLAN": iso(t["startDatePlan"]), "END_DATE_PLAN": iso(t["endDatePlan"]), "GUID": t["guid"],
            "XML_ID": t["xmlId"], "COMMENTS_COUNT": str(t["commentsCount"]),
            "ALLOW_CHANGE_DEADLINE": "Y" if t["allowChangeDeadline"] else "N",
            "TASK_CONTROL": "Y" if t["taskControl"] else "N", "ADD_IN_REPORT": "N", "TIME_ESTIMATE": "0",
            "VIEWED_DATE": iso(responsible_viewed), "DURATION_FACT": None, "DESCRIPTION_IN_BBCODE": "Y",
            "STATUS": str(t["status"]), "REAL_STATUS": str(t["status"]), "GROUP_ID": str(t["groupId"]),
            "AUDITORS": [str(u) for u in t["auditors"]], "ACCOMPLICES": [str(u) for u in t["accomplices"]],
            "FAVORITE": "N", "UF_CRM_TASK": list(t["ufCrmTask"]) or False, "UF_TASK_WEBDAV_FILES": False,
            "UF_MAIL_MESSAGE": None, "TAGS": list(t.get("tags") or []),
            "TASK_REQUIRE_RESULT": "Y" if t.get("requireResult") else "N",
            "TASK_HAS_RESULT": "Y" if t.get("results") else "N", "TASK_HAS_OPEN_RESULT": "N",
        }
        out: dict[str, Any] = {}
        for name in wanted:
            if name in values:
                out[camel(name)] = values[name]
        if "STATUS" in wanted:
            out["subStatus"] = str(self.sub_status(t))

        def person(uid):
            u = users.get(str(uid)) or {}
            return {"id": str(uid), "name": f"{u.get('NAME', '')} {u.get('LAST_NAME', '')}".strip(),
                    "link": f"/company/personal/user/{uid}/", "icon": "/bitrix/images/tasks/default_avatar.png",
                    "workPosition": u.get("WORK_POSITION", "")}
        if "CREATED_BY" in wanted:
            out["creator"] = person(t["createdBy"])
        if "RESPONSIBLE_ID" in wanted:
            out["responsible"] = person(t["responsibleId"])
        if "AUDITORS" in wanted:
            out["auditorsData"] = {str(u): person(u) for u in t["auditors"]}
        return out

    def task_filter_value(self, t: dict, field: str) -> Any:
        """What a tasks.task.list filter key compares against (STATUS is the sub-status, REAL_STATUS the status)."""
        if field == "STATUS":
            return self.sub_status(t)
        if field == "REAL_STATUS":
            return t["status"]
        if field == "UF_CRM_TASK":
            return list(t["ufCrmTask"])
        if field in ("AUDITOR", "AUDITORS"):
            return list(t["auditors"])
        if field in ("ACCOMPLICE", "ACCOMPLICES"):
            return list(t["accomplices"])
        if field == "MEMBER":
            return [t["createdBy"], t["responsibleId"], *t["auditors"], *t["accomplices"]]
        if field in ("CREATED_BY", "RESPONSIBLE_ID", "CHANGED_BY", "ID", "GROUP_ID", "PRIORITY", "PARENT_ID"):
            return t.get(camel(field))
        if field in ("TASK_CONTROL", "ALLOW_CHANGE_DEADLINE"):
            return "Y" if t.get(camel(field)) else "N"
        if field in ("CREATED_DATE", "CHANGED_DATE", "CLOSED_DATE", "DEADLINE", "STATUS_CHANGED_DATE", "DATE_START",
                     "ACTIVITY_DATE"):
            key = "changedDate" if field == "ACTIVITY_DATE" else camel(field)
            return iso(t.get(key))
        if field == "TITLE":
            return t["title"]
        if field == "TAG":
            return list(t.get("tags") or [])
        if field == "STATUS_CHANGED_BY":
            return t["statusChangedBy"]
        if field == "MARK":
            return t["mark"]
        if field == "STAGE_ID":
            return 0
        return None

    @staticmethod
    def task_filter(flt: dict) -> dict:
        """The documented filter fields only: others (XML_ID, ::SUBFILTER-PARAMS ...) are ignored."""
        from .query import split_key
        return {k: v for k, v in flt.items() if split_key(str(k))[1].upper() in FILTERABLE}


def _task_event(before_id: int | None, after_id: int) -> dict:
    if before_id is None:
        return {"FIELDS_BEFORE": "undefined", "FIELDS_AFTER": {"ID": after_id},
                "IS_ACCESSIBLE_BEFORE": "N", "IS_ACCESSIBLE_AFTER": "undefined"}
    return {"FIELDS_BEFORE": {"ID": before_id}, "FIELDS_AFTER": {"ID": after_id},
            "IS_ACCESSIBLE_BEFORE": "undefined", "IS_ACCESSIBLE_AFTER": "undefined"}
