"""Activities (v2 `/api/v2/activities`) and activity types (v1 `/api/v1/activityTypes`), as the
stored OpenAPI documents describe them (operations getActivities, getActivity, addActivity,
updateActivity, deleteActivity, getActivityTypes: parameters, bodies, scopes `activities:read` /
`activities:full`; v2 is strict about types, FACTS §1; v1 was deprecated, FACTS §17).

Activities are a CRM user's to-dos (calls, meetings, tasks, deadlines ...) linked to a deal, lead,
person or organization. They have no external id. A change fires a v2 webhook with
`meta.entity: "activity"` (an `event_object` the webhooks API accepts, FACTS §6) whose `data` is the
activity as the API gives it: the webhook shape of activities is not documented (unconfirmed).
Unknown body fields are refused as for persons; the subject defaults to the type's name."""
from __future__ import annotations

import copy
import re
from typing import Any

from flask import Blueprint, current_app, g, request

from . import models as m
from .util import BadRequest

# Pipedrive's default activity types (getActivityTypes example and the app's defaults).
DEFAULT_TYPES = (("call", "Call"), ("meeting", "Meeting"), ("task", "Task"), ("deadline", "Deadline"),
                 ("email", "Email"), ("lunch", "Lunch"))
WRITABLE = {"subject", "type", "owner_id", "deal_id", "lead_id", "person_id", "org_id", "project_id", "due_date",
            "due_time", "duration", "busy", "done", "location", "participants", "attendees", "public_description",
            "priority", "note"}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"\d{2}:\d{2}(:\d{2})?")


def activity_v2(a: dict) -> dict:
    return {"id": a["id"], "subject": a["subject"], "type": a["type"], "owner_id": a["owner_id"],
            "creator_user_id": a["creator_user_id"], "is_deleted": a.get("is_deleted", False),
            "add_time": m.v2_time(a["add_time"]), "update_time": m.v2_time(a["update_time"]),
            "deal_id": a.get("deal_id"), "lead_id": a.get("lead_id"), "person_id": a.get("person_id"),
            "org_id": a.get("org_id"), "project_id": a.get("project_id"), "due_date": a.get("due_date"),
            "due_time": a.get("due_time"), "duration": a.get("duration"), "busy": a.get("busy", False),
            "done": a.get("done", False), "marked_as_done_time": m.v2_time(a.get("marked_as_done_time")),
            "location": copy.deepcopy(a.get("location")), "participants": copy.deepcopy(a.get("participants") or []),
            "attendees": copy.deepcopy(a.get("attendees") or []), "conference_meeting_client": None,
            "conference_meeting_url": None, "conference_meeting_id": None,
            "public_description": a.get("public_description"), "priority": a.get("priority"), "note": a.get("note")}


def activity_type_v1(key: str, name: str, order: int, ident: int) -> dict:
    return {"id": ident, "order_nr": order, "name": name, "key_string": key, "icon_key": key, "active_flag": True,
            "color": "FFFFFF", "is_custom_flag": False, "add_time": "2019-10-04 16:24:55",
            "update_time": "2019-10-04 16:24:55"}


class ActivitiesMixin:
    """PipedriveSandbox's activity methods (the UI, tests and the API routes all use these)."""

    def activity_types(self) -> list[dict]:
        return [activity_type_v1(key, name, n, n + 3) for n, (key, name) in enumerate(DEFAULT_TYPES, 1)]

    def activities(self) -> list[dict]:
        return sorted((copy.deepcopy(a) for a in self.data["pd_activities"].values() if not a.get("is_deleted")),
                      key=lambda a: a["id"])

    def _activity_values(self, body: dict, current: dict | None) -> dict:
        unknown = set(body) - WRITABLE
        if unknown:
            raise BadRequest(f"Unknown field(s): {', '.join(sorted(unknown))}")
        out: dict[str, Any] = {}
        for key in ("subject", "note", "public_description", "duration"):
            if key in body:
                if body[key] is not None and not isinstance(body[key], str):
                    raise BadRequest(f"{key} must be a string")
                out[key] = body[key]
        if "type" in body:
            if body["type"] not in {t for t, _ in DEFAULT_TYPES}:
                raise BadRequest(f"Activity type '{body['type']}' does not exist",
                                 info="Use the key_string of an active activity type.")
            out["type"] = body["type"]
        for key, table, what in (("owner_id", "pd_users", "Owner"), ("deal_id", "pd_deals", "Deal"),
                                 ("person_id", "pd_persons", "Person"), ("org_id", "pd_orgs", "Organization")):
            if key in body:
                out[key] = self._ref(table, body[key], what)
        if "lead_id" in body:
            if body["lead_id"] is not None and body["lead_id"] not in self.data["pd_leads"]:
                raise BadRequest(f"Lead with id {body['lead_id']} does not exist")
            out["lead_id"] = body["lead_id"]
        if "due_date" in body:
            if body["due_date"] is not None and not (isinstance(body["due_date"], str) and _DATE.fullmatch(body["due_date"])):
                raise BadRequest("due_date must be a date in YYYY-MM-DD format")
            out["due_date"] = body["due_date"]
        if "due_time" in body:
            if body["due_time"] is not None and not (isinstance(body["due_time"], str) and _TIME.fullmatch(body["due_time"])):
                raise BadRequest("due_time must be a time in HH:MM format")
            out["due_time"] = body["due_time"]
        for key in ("busy", "done"):
            if key in body:
                if not isinstance(body[key], bool):
                    raise BadRequest(f"{key} must be a boolean")
                out[key] = body[key]
        if "priority" in body:
            if body["priority"] is not None and (isinstance(body["priority"], bool) or not isinstance(body["priority"], int)):
                raise BadRequest("priority must be an integer")
            out["priority"] = body["priority"]
        for key in ("location", "participants", "attendees", "project_id"):
            if key in body:
                out[key] = copy.deepcopy(body[key])
        return out

    def create_activity(self, body: dict, *, actor: int | None = None, source: str = "app") -> dict:
        with self.state.change() as data:
            values = self._activity_values(body, None)
            now, actor_id = self.now(), self._actor(actor)
            kind = values.get("type") or "task"
            a = {"id": self.state.next_id("activity", 500), "subject": values.get("subject") or dict(DEFAULT_TYPES)[kind],
                 "type": kind, "owner_id": values.get("owner_id") or actor_id, "creator_user_id": actor_id,
                 "is_deleted": False, "add_time": now, "update_time": now, "done": False, "busy": False,
                 "marked_as_done_time": None,
                 **{k: v for k, v in values.items() if k not in ("subject", "type", "owner_id")}}
            if a["done"]:
                a["marked_as_done_time"] = now
            data["pd_activities"][str(a["id"])] = a
            event = self._event("activity", "create", a["id"], activity_v2(a), None, actor, source)
        self._publish(event)
        return copy.deepcopy(a)

    def update_activity(self, activity_id: int, body: dict, *, actor: int | None = None, source: str = "app") -> dict:
        with self.state.change():
            a = self._get("pd_activities", activity_id, "Activity")
            before = activity_v2(a)
            values = self._activity_values(body, a)
            new = {**a, **values}
            if values.get("done") is True and not a.get("done"):
                new["marked_as_done_time"] = self.now()
            elif values.get("done") is False:
                new["marked_as_done_time"] = None
            new["update_time"] = self.now()
            after = activity_v2(new)
            previous = self._diff(before, after)
            if set(previous) <= {"update_time"}:
                return copy.deepcopy(a)
            a.clear()
            a.update(new)
            event = self._event("activity", "change", a["id"], after, previous, actor, source)
        self._publish(event)
        return copy.deepcopy(a)

    def complete_activity(self, activity_id: int, **kw) -> dict:
        return self.update_activity(activity_id, {"done": True}, **kw)

    def delete_activity(self, activity_id: int, *, actor: int | None = None, source: str = "app") -> None:
        with self.state.change():
            a = self._get("pd_activities", activity_id, "Activity")
            a["is_deleted"] = True
            a["update_time"] = self.now()
            event = self._event("activity", "delete", a["id"], None, activity_v2(a), actor, source)
        self._publish(event)


def activity_routes(bp: Blueprint) -> None:
    """Adds the activity routes to the API blueprint (behind its token, scope and fault gate)."""
    from .api import cursor_page, error, id_filters, json_body, ok, scopes, time_filters

    def sb():
        return current_app.extensions["sandbox"]

    @bp.get("/v1/activityTypes")
    @scopes("activities:read", "activities:full", "admin")
    def activity_types_list():
        return ok(sb().activity_types())

    @bp.get("/v2/activities")
    @scopes("activities:read", "activities:full")
    def activities_list():
        items = id_filters(sb().activities(), ("owner_id", "deal_id", "person_id", "org_id"))
        if request.args.get("lead_id"):
            items = [a for a in items if a.get("lead_id") == request.args["lead_id"]]
        done = request.args.get("done")
        if done not in (None, ""):
            if done not in ("true", "false"):
                raise BadRequest("Parameter 'done' must be true or false")
            items = [a for a in items if bool(a.get("done")) == (done == "true")]
        # sortable by due date: an activity without one sorts first ("" here, null in the answer)
        items = [dict(a, due_date=a.get("due_date") or "") for a in time_filters(items)]
        return cursor_page(items, lambda a: activity_v2(dict(a, due_date=a["due_date"] or None)),
                           ("id", "update_time", "add_time", "due_date"))

    @bp.get("/v2/activities/<int:activity_id>")
    @scopes("activities:read", "activities:full")
    def activities_get(activity_id):
        s = sb()
        with s.state.lock:
            a = s.data["pd_activities"].get(str(activity_id))
            if a is None or a.get("is_deleted"):
                return error(404, "Activity not found", "Object was not found.")
            return ok(activity_v2(a))

    @bp.post("/v2/activities")
    @scopes("activities:full")
    def activities_create():
        return ok(activity_v2(sb().create_activity(json_body(), actor=g.pd_user, source="api")))

    @bp.patch("/v2/activities/<int:activity_id>")
    @scopes("activities:full")
    def activities_update(activity_id):
        return ok(activity_v2(sb().update_activity(activity_id, json_body(), actor=g.pd_user, source="api")))

    @bp.delete("/v2/activities/<int:activity_id>")
    @scopes("activities:full")
    def activities_delete(activity_id):
        sb().delete_activity(activity_id, actor=g.pd_user, source="api")
        return ok({"id": activity_id})
