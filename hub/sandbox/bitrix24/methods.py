"""The REST methods: `fn(ctx, params) -> (result, extra)` where extra may add `total` / `next`.

`ctx` names the portal, the app (client_id) and the user whose token made the call. Each method
declares its scope; `batch` lives in rest.py (it calls these)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .query import as_dict, as_list, matches, page, sort
from .util import RestError, to_int

METHODS: dict[str, tuple[str, Callable]] = {}


@dataclass
class Ctx:
    sb: Any
    portal: str
    client_id: str
    user_id: int
    scopes: list


def method(name: str, scope: str):
    def deco(fn):
        METHODS[name] = (scope, fn)
        return fn
    return deco


def _crm_list(ctx: Ctx, table: str, params: dict) -> tuple[Any, dict]:
    records = ctx.sb.records(ctx.portal, table)
    flt = as_dict(params.get("filter"), "filter")
    records = [r for r in records if matches(r, flt, lambda r, f: r.get(f))]
    records = sort(records, as_dict(params.get("order"), "order") or {"ID": "ASC"}, lambda r, f: r.get(f))
    chunk, extra = page(records, params.get("start"))
    select = [str(s).upper() for s in as_list(params.get("select"))]
    if select and "*" not in select:
        keep = set(select) | {"ID"}
        chunk = [{k: v for k, v in r.items() if k in keep} for r in chunk]
    elif select and "*" in select:
        chunk = [{k: v for k, v in r.items() if not k.startswith("UF_") or k in select} for r in chunk]
    return chunk, extra


def _get(ctx: Ctx, table: str, params: dict):
    rid = params.get("id", params.get("ID"))
    if rid in (None, ""):
        raise RestError("", "ID is not defined or invalid.", 400)
    rec = ctx.sb.record(ctx.portal, table, str(rid).strip())
    if rec is None:
        raise RestError("", "Not found", 400)
    return rec, {}


def _fields(params: dict) -> dict:
    fields = params.get("fields", params.get("FIELDS"))
    if not isinstance(fields, dict) or not fields:
        raise RestError("", "fields: required, an object of field values", 400)
    return fields


# -- common ---------------------------------------------------------------------------------------
@method("profile", "basic")
def profile(ctx: Ctx, params: dict):
    u = ctx.sb.user(ctx.portal, ctx.user_id)
    return {"ID": u["ID"], "ADMIN": bool(u["ADMIN"]), "NAME": u["NAME"], "LAST_NAME": u["LAST_NAME"],
            "PERSONAL_GENDER": u["PERSONAL_GENDER"], "PERSONAL_PHOTO": u["PERSONAL_PHOTO"], "TIME_ZONE": "",
            "TIME_ZONE_OFFSET": 0}, {}


@method("app.info", "basic")
def app_info(ctx: Ctx, params: dict):
    install = ctx.sb.installed(ctx.portal, ctx.client_id) or {}
    version = str(install.get("version") or "1")
    return {"ID": 1, "CODE": ctx.client_id, "VERSION": int(version) if version.isdigit() else version,
            "STATUS": install.get("status", "L"), "INSTALLED": bool(install.get("finished")), "PAYMENT_EXPIRED": "N",
            "DAYS": None, "LANGUAGE_ID": "en", "LICENSE": "en_basic", "LICENSE_TYPE": "basic",
            "LICENSE_FAMILY": "basic"}, {}


@method("scope", "basic")
def scope(ctx: Ctx, params: dict):
    return list(ctx.scopes), {}


def _user_out(u: dict) -> dict:
    return {k: v for k, v in u.items() if k != "ADMIN"}


@method("user.current", "user")
def user_current(ctx: Ctx, params: dict):
    return _user_out(ctx.sb.user(ctx.portal, ctx.user_id)), {}


@method("user.get", "user")
def user_get(ctx: Ctx, params: dict):
    users = ctx.sb.users(ctx.portal)
    flt = {k: v for k, v in (as_dict(params.get("filter"), "filter") or {}).items()}
    for key in ("ID", "ACTIVE", "EMAIL", "NAME", "LAST_NAME"):
        if key in params and key not in flt:
            flt[key] = params[key]
    flt = {k: ("true" if v is True else v) for k, v in flt.items()}
    users = [u for u in users if matches({**u, "ACTIVE": "true" if u["ACTIVE"] else "false"}, flt,
                                         lambda r, f: r.get(f))]
    chunk, extra = page(users, params.get("start"))
    return [_user_out(u) for u in chunk], extra


# -- crm ------------------------------------------------------------------------------------------
@method("crm.deal.list", "crm")
def deal_list(ctx, params):
    return _crm_list(ctx, "deals", params)


@method("crm.deal.get", "crm")
def deal_get(ctx, params):
    return _get(ctx, "deals", params)


@method("crm.deal.add", "crm")
def deal_add(ctx, params):
    return int(ctx.sb.create_deal(ctx.portal, _fields(params), actor=ctx.user_id)["ID"]), {}


@method("crm.deal.update", "crm")
def deal_update(ctx, params):
    ctx.sb.update_deal(ctx.portal, params.get("id", params.get("ID")), _fields(params), actor=ctx.user_id)
    return True, {}


@method("crm.deal.delete", "crm")
def deal_delete(ctx, params):
    ctx.sb.delete_deal(ctx.portal, params.get("id", params.get("ID")), actor=ctx.user_id)
    return True, {}


@method("crm.deal.fields", "crm")
def deal_fields(ctx, params):
    from .crm import DEAL_FIELDS, READ_ONLY
    return {name: {"type": kind, "isRequired": False, "isReadOnly": name in READ_ONLY, "isImmutable": name == "CATEGORY_ID",
                   "isMultiple": False, "isDynamic": False, "title": name} for name, kind in DEAL_FIELDS.items()}, {}


@method("crm.category.list", "crm")
def category_list(ctx, params):
    if str(params.get("entityTypeId", "")) != "2":
        raise RestError("NOT_FOUND", "entityTypeId: the sandbox portals have categories for deals (2) only", 400)
    return {"categories": ctx.sb.categories(ctx.portal)}, {"total": len(ctx.sb.categories(ctx.portal))}


@method("crm.dealcategory.list", "crm")
def dealcategory_list(ctx, params):
    cats = [{"ID": str(c["id"]), "CREATED_DATE": None, "NAME": c["name"], "IS_LOCKED": "N", "SORT": str(c["sort"])}
            for c in ctx.sb.categories(ctx.portal) if c["id"] != 0]
    return cats, {"total": len(cats)}


@method("crm.dealcategory.stage.list", "crm")
def dealcategory_stage_list(ctx, params):
    cid = to_int(params.get("id", 0) or 0, "id")
    return [{"NAME": s["NAME"], "SORT": s["SORT"], "STATUS_ID": s["STATUS_ID"]}
            for s in ctx.sb.stages(ctx.portal, cid)], {}


@method("crm.status.list", "crm")
def status_list(ctx, params):
    statuses = ctx.sb.statuses(ctx.portal)
    flt = as_dict(params.get("filter"), "filter")
    statuses = [s for s in statuses if matches(s, flt, lambda r, f: r.get(f))]
    statuses = sort(statuses, as_dict(params.get("order"), "order") or {"SORT": "ASC"}, lambda r, f: r.get(f))
    return statuses, {"total": len(statuses)}


LEAD_FIELDS = {"ID": "integer", "TITLE": "string", "NAME": "string", "SECOND_NAME": "string", "LAST_NAME": "string",
               "COMPANY_TITLE": "string", "SOURCE_ID": "crm_status", "STATUS_ID": "crm_status",
               "STATUS_SEMANTIC_ID": "string", "STATUS_DESCRIPTION": "string", "CURRENCY_ID": "crm_currency",
               "OPPORTUNITY": "double", "OPENED": "char", "ASSIGNED_BY_ID": "user", "CREATED_BY_ID": "user",
               "MODIFY_BY_ID": "user", "DATE_CREATE": "datetime", "DATE_MODIFY": "datetime", "DATE_CLOSED": "datetime",
               "CONTACT_ID": "crm_contact", "COMPANY_ID": "crm_company", "IS_RETURN_CUSTOMER": "char",
               "COMMENTS": "string", "HAS_EMAIL": "char", "HAS_PHONE": "char", "EMAIL": "crm_multifield",
               "PHONE": "crm_multifield"}
CONTACT_FIELDS = {"ID": "integer", "NAME": "string", "SECOND_NAME": "string", "LAST_NAME": "string", "POST": "string",
                  "COMPANY_ID": "crm_company", "LEAD_ID": "crm_lead", "SOURCE_ID": "crm_status", "OPENED": "char",
                  "TYPE_ID": "crm_status", "ASSIGNED_BY_ID": "user", "CREATED_BY_ID": "user", "MODIFY_BY_ID": "user",
                  "DATE_CREATE": "datetime", "DATE_MODIFY": "datetime", "HAS_EMAIL": "char", "HAS_PHONE": "char",
                  "EMAIL": "crm_multifield", "PHONE": "crm_multifield"}
READ_ONLY_COMMON = {"ID", "STATUS_SEMANTIC_ID", "CREATED_BY_ID", "MODIFY_BY_ID", "DATE_CREATE", "DATE_MODIFY",
                    "DATE_CLOSED", "HAS_EMAIL", "HAS_PHONE"}


def _describe(fields: dict) -> dict:
    return {name: {"type": kind, "isRequired": False, "isReadOnly": name in READ_ONLY_COMMON, "isImmutable": False,
                   "isMultiple": kind == "crm_multifield", "isDynamic": False, "title": name}
            for name, kind in fields.items()}


@method("crm.lead.fields", "crm")
def lead_fields(ctx, params):
    return _describe(LEAD_FIELDS), {}


@method("crm.contact.fields", "crm")
def contact_fields(ctx, params):
    return _describe(CONTACT_FIELDS), {}


@method("crm.lead.list", "crm")
def lead_list(ctx, params):
    return _crm_list(ctx, "leads", params)


@method("crm.lead.get", "crm")
def lead_get(ctx, params):
    return _get(ctx, "leads", params)


@method("crm.lead.add", "crm")
def lead_add(ctx, params):
    return int(ctx.sb.create_lead(ctx.portal, _fields(params), actor=ctx.user_id)["ID"]), {}


@method("crm.lead.update", "crm")
def lead_update(ctx, params):
    ctx.sb.update_lead(ctx.portal, params.get("id", params.get("ID")), _fields(params), actor=ctx.user_id)
    return True, {}


@method("crm.contact.list", "crm")
def contact_list(ctx, params):
    return _crm_list(ctx, "contacts", params)


@method("crm.contact.get", "crm")
def contact_get(ctx, params):
    return _get(ctx, "contacts", params)


@method("crm.company.get", "crm")
def company_get(ctx, params):
    return _get(ctx, "companies", params)


@method("crm.company.list", "crm")
def company_list(ctx, params):
    return _crm_list(ctx, "companies", params)


# -- tasks ----------------------------------------------------------------------------------------
def _task_id(params: dict) -> Any:
    tid = params.get("taskId", params.get("TASKID", params.get("id")))
    if tid in (None, ""):
        raise RestError("100", "CTaskItem All parameters in the constructor must have real class type (internal error)",
                        400)
    return tid


def _select(params: dict) -> list:
    select = params.get("select")
    if select in (None, "", []):
        return []
    if not isinstance(select, (list, dict)):
        raise RestError("100", f"Invalid value {select} to match with parameter {{select}}. "
                               "Should be value of type array. (internal error)", 400)
    return as_list(select)


def _check_access(ctx: Ctx, tid: Any) -> None:
    """A task its caller may not see (not an admin, not a member) is refused like a missing one."""
    with ctx.sb.state.lock:
        t = ctx.sb._task(ctx.portal, tid)
        visible = ctx.sb.can_see_task(ctx.portal, t, ctx.user_id)
    if not visible:
        raise RestError("1048582", "Action on the task is not allowed", 400)


@method("tasks.task.add", "task")
def task_add(ctx, params):
    t = ctx.sb.create_task(ctx.portal, params.get("fields") or {}, actor=ctx.user_id)
    return {"task": ctx.sb.render_task(ctx.portal, t)}, {}


@method("tasks.task.update", "task")
def task_update(ctx, params):
    _check_access(ctx, _task_id(params))
    t = ctx.sb.update_task(ctx.portal, _task_id(params), params.get("fields") or {}, actor=ctx.user_id)
    return {"task": ctx.sb.render_task(ctx.portal, t)}, {}


@method("tasks.task.get", "task")
def task_get(ctx, params):
    select = _select(params)
    tid = _task_id(params)
    try:
        t = ctx.sb.task(ctx.portal, int(str(tid).strip()))
    except ValueError:
        raise RestError("0", "wrong task id", 400) from None
    if t is None or not ctx.sb.can_see_task(ctx.portal, t, ctx.user_id):
        return [], {}   # "an empty array if the task does not exist or the user has no access"
    return {"task": ctx.sb.render_task(ctx.portal, t, select, _result_info(params))}, {}


def _result_info(params: dict) -> bool:
    opts = params.get("params") if isinstance(params.get("params"), dict) else {}
    return str(opts.get("WITH_RESULT_INFO", "")).lower() in ("1", "y", "true")


@method("tasks.task.result.list", "task")
def task_result_list(ctx, params):
    tid = _task_id(params)
    _check_access(ctx, tid)
    with ctx.sb.state.lock:
        t = ctx.sb._task(ctx.portal, tid)
        results = list(t.get("results") or [])
    return list(reversed(results)), {}


@method("tasks.task.list", "task")
def task_list(ctx, params):
    select = _select(params)
    tasks = [t for t in ctx.sb.tasks(ctx.portal) if ctx.sb.can_see_task(ctx.portal, t, ctx.user_id)]
    flt = ctx.sb.task_filter(as_dict(params.get("filter"), "filter"))
    tasks = [t for t in tasks if matches(t, flt, ctx.sb.task_filter_value)]
    order = as_dict(params.get("order"), "order") or {"ID": "ASC"}
    tasks = sort(tasks, order, ctx.sb.task_filter_value)
    chunk, extra = page(tasks, params.get("start"))
    info = _result_info(params)
    return {"tasks": [ctx.sb.render_task(ctx.portal, t, select, info) for t in chunk]}, extra


@method("tasks.task.delete", "task")
def task_delete(ctx, params):
    _check_access(ctx, _task_id(params))
    ctx.sb.delete_task(ctx.portal, _task_id(params), actor=ctx.user_id)
    return {"task": True}, {}


def _action(name: str):
    def fn(ctx, params):
        _check_access(ctx, _task_id(params))
        t = ctx.sb.task_action(ctx.portal, _task_id(params), name, actor=ctx.user_id)
        return {"task": ctx.sb.render_task(ctx.portal, t)}, {}
    return fn


for _name in ("start", "pause", "defer", "complete", "renew", "approve", "disapprove"):
    method(f"tasks.task.{_name}", "task")(_action(_name))


# -- events ---------------------------------------------------------------------------------------
def _admin(ctx: Ctx) -> None:
    u = ctx.sb.user(ctx.portal, ctx.user_id)
    if not u or not u["ADMIN"]:
        raise RestError("ACCESS_DENIED", "Access denied! Admin permissions required", 403)


@method("event.bind", "basic")
def event_bind(ctx, params):
    _admin(ctx)
    auth_type = to_int(params.get("auth_type") or 0, "auth_type")
    ctx.sb.bind(ctx.portal, ctx.client_id, str(params.get("event") or ""), str(params.get("handler") or ""),
                auth_type=auth_type, event_type=str(params.get("event_type") or "online").lower())
    return True, {}


@method("event.unbind", "basic")
def event_unbind(ctx, params):
    _admin(ctx)
    auth_type = params.get("auth_type")
    count = ctx.sb.unbind(ctx.portal, ctx.client_id, str(params.get("event") or ""),
                          params.get("handler") if params.get("handler") not in (None, "") else None,
                          to_int(auth_type, "auth_type") if auth_type not in (None, "") else None,
                          str(params.get("event_type") or "online").lower())
    return {"count": count}, {}


@method("event.get", "basic")
def event_get(ctx, params):
    _admin(ctx)
    return [{"event": b["event"], "handler": b["handler"], "auth_type": str(b["auth_type"]),
             "offline": 1 if b["event_type"] == "offline" else 0}
            for b in ctx.sb.bindings(ctx.portal, ctx.client_id)], {}


@method("events", "basic")
def events(ctx, params):
    from .emulator import EVENTS
    return list(EVENTS), {}


@method("event.offline.get", "basic")
def offline_get(ctx, params):
    _admin(ctx)
    clear = str(params.get("clear", 1)) not in ("0", "N", "false")
    limit = min(max(to_int(params.get("limit") or 50, "limit"), 1), 1000)
    out = ctx.sb.offline_get(ctx.portal, ctx.client_id, clear=clear, limit=limit,
                             process_id=params.get("process_id") or None)
    return out, {}


@method("event.offline.clear", "basic")
def offline_clear(ctx, params):
    _admin(ctx)
    pid = params.get("process_id")
    if not pid:
        raise RestError("ERROR_ARGUMENT", "process_id: required", 400)
    ids = [str(i) for i in as_list(params.get("id") or params.get("message_id"))]
    return ctx.sb.offline_clear(ctx.portal, ctx.client_id, str(pid), ids), {}
