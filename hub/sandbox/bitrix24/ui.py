"""The sandbox page: the person playing a Bitrix24 user moves, wins and loses deals, adds and
converts leads, and views / starts / pauses / completes / approves / disapproves / defers tasks.

Plain POST forms calling the emulator methods the REST API uses, so events fire exactly as for API
changes. The acting user and the portal are cookies picked in the header. The portal's own
addresses of a deal and a task (`/portal/<p>/crm/deal/details/<id>/`, `.../tasks/task/view/<id>/`)
lead here, so links the hub shows open the sandbox."""
from __future__ import annotations

import json

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from hub.web.returns import safe_return_target

from .util import RestError, iso

TASK_STATUS = {2: "Pending", 3: "In progress", 4: "Awaiting control", 5: "Completed", 6: "Deferred"}
SUB_STATUS = {-1: "overdue", -2: "not viewed", -3: "almost overdue"}
ACTIONS = ("start", "pause", "complete", "approve", "disapprove", "defer", "renew")


def _sb():
    return current_app.extensions["sandbox"]


def _portal() -> str:
    sb = _sb()
    raw = request.cookies.get("bx_portal", "")
    return raw if raw in sb.data["bx_portals"] else sb.default_portal()


def _actor(portal: str) -> int:
    sb = _sb()
    raw = request.cookies.get("bx_actor", "")
    return int(raw) if raw.isdigit() and sb.user(portal, raw) else sb.admin_id(portal)


def _form_int(name: str) -> int | None:
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return None
    if not raw.lstrip("-").isdigit():
        raise RestError("ERROR_ARGUMENT", f"{name}: a whole number")
    return int(raw)


def ui_blueprint() -> Blueprint:
    bp = Blueprint("bx_ui", __name__, url_prefix="/_sandbox/ui", template_folder="templates")

    @bp.context_processor
    def common():
        sb = _sb()
        portal = _portal()
        return {"sb": sb, "portal": portal, "portals": sb.portals(), "users": sb.users(portal),
                "actor": _actor(portal), "msg": request.args.get("msg"), "iso": iso,
                "user_name": lambda uid: sb.user_name(portal, uid)}

    @bp.errorhandler(RestError)
    def bad(exc: RestError):
        if request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json":
            return exc.body(), exc.status
        return render_template("bitrix24/message.html", title="Not saved", message=exc.description), \
            (exc.status if exc.status >= 400 else 400)

    def back(endpoint: str, msg: str, **kw):
        return redirect(url_for(endpoint, msg=msg, **kw))

    @bp.post("/who")
    def set_who():
        sb = _sb()
        resp = redirect(safe_return_target(request.form.get("next"), url_for("bx_ui.index")))
        portal = request.form.get("portal", "")
        if portal in sb.data["bx_portals"]:
            resp.set_cookie("bx_portal", portal, httponly=True, samesite="Lax")
        resp.set_cookie("bx_actor", request.form.get("actor", ""), httponly=True, samesite="Lax")
        return resp

    # -- deals and leads --------------------------------------------------------------------------
    @bp.get("/")
    def index():
        sb = _sb()
        portal = _portal()
        categories = sb.categories(portal)
        raw = request.args.get("category", "0")
        cid = int(raw) if raw.isdigit() and any(c["id"] == int(raw) for c in categories) else 0
        stages = sb.stages(portal, cid)
        deals = [d for d in sb.records(portal, "deals") if d["CATEGORY_ID"] == str(cid)]
        columns = [(s, [d for d in deals if d["STAGE_ID"] == s["STATUS_ID"]]) for s in stages]
        leads = sorted(sb.records(portal, "leads"), key=lambda r: -int(r["ID"]))
        lead_status = {s["STATUS_ID"]: s["NAME"] for s in sb.statuses(portal, "STATUS")}
        return render_template("bitrix24/index.html", categories=categories, category=cid, columns=columns,
                               stages=stages, leads=leads, lead_status=lead_status)

    @bp.post("/deals")
    def deal_add():
        portal = _portal()
        deal = _sb().create_deal(portal, {"TITLE": request.form.get("title", ""),
                                          "OPPORTUNITY": request.form.get("amount") or 0,
                                          "CATEGORY_ID": _form_int("category") or 0,
                                          "ASSIGNED_BY_ID": _form_int("assigned") or _actor(portal)},
                                 actor=_actor(portal))
        return back("bx_ui.index", f"Deal {deal['ID']} created", category=deal["CATEGORY_ID"])

    @bp.post("/deals/<int:deal_id>")
    def deal_change(deal_id: int):
        sb, portal = _sb(), _portal()
        what = request.form.get("do")
        actor = _actor(portal)
        if what == "move":
            deal = sb.move_deal(portal, deal_id, request.form.get("stage", ""), actor=actor)
        elif what == "win":
            deal = sb.win_deal(portal, deal_id, actor=actor)
        elif what == "lose":
            deal = sb.lose_deal(portal, deal_id, actor=actor)
        elif what == "delete":
            deal = sb.record(portal, "deals", deal_id) or {}
            sb.delete_deal(portal, deal_id, actor=actor)
            return back("bx_ui.index", f"Deal {deal_id} deleted", category=deal.get("CATEGORY_ID", 0))
        else:
            raise RestError("ERROR_ARGUMENT", "do: move, win, lose or delete")
        return back("bx_ui.index", f"Deal {deal_id}: {deal['STAGE_ID']}", category=deal["CATEGORY_ID"])

    @bp.post("/leads")
    def lead_add():
        portal = _portal()
        lead = _sb().create_lead(portal, {"TITLE": request.form.get("title", ""), "NAME": request.form.get("name"),
                                          "LAST_NAME": request.form.get("last_name"),
                                          "OPPORTUNITY": request.form.get("amount") or 0,
                                          "ASSIGNED_BY_ID": _actor(portal)}, actor=_actor(portal))
        return back("bx_ui.index", f"Lead {lead['ID']} added")

    @bp.post("/leads/<int:lead_id>")
    def lead_change(lead_id: int):
        sb, portal = _sb(), _portal()
        what = request.form.get("do")
        if what == "convert":
            out = sb.convert_lead(portal, lead_id, actor=_actor(portal))
            return back("bx_ui.index", f"Lead {lead_id} converted: deal {out['deal']['ID']}")
        if what == "junk":
            sb.close_lead(portal, lead_id, actor=_actor(portal))
            return back("bx_ui.index", f"Lead {lead_id} closed as junk")
        if what == "progress":
            sb.update_lead(portal, lead_id, {"STATUS_ID": "IN_PROCESS"}, actor=_actor(portal))
            return back("bx_ui.index", f"Lead {lead_id} in progress")
        raise RestError("ERROR_ARGUMENT", "do: convert, junk or progress")

    # -- tasks ------------------------------------------------------------------------------------
    @bp.get("/tasks")
    def tasks():
        sb, portal = _sb(), _portal()
        items = sorted(sb.tasks(portal), key=lambda t: -t["id"])
        return render_template("bitrix24/tasks.html", tasks=items, status_name=TASK_STATUS, sub_name=SUB_STATUS,
                               actions=ACTIONS)

    @bp.post("/tasks")
    def task_add():
        portal = _portal()
        fields = {"TITLE": request.form.get("title", ""), "RESPONSIBLE_ID": _form_int("responsible") or _actor(portal),
                  "TASK_CONTROL": "Y" if request.form.get("control") else "N"}
        if request.form.get("require_result"):
            fields["SE_PARAMETER"] = [{"VALUE": "Y", "CODE": 3}]
        if request.form.get("deadline"):
            fields["DEADLINE"] = request.form["deadline"]
        if request.form.get("link"):
            fields["UF_CRM_TASK"] = [request.form["link"].strip()]
        task = _sb().create_task(portal, fields, actor=_actor(portal))
        return back("bx_ui.tasks", f"Task {task['id']} created")

    @bp.get("/tasks/<int:task_id>")
    def task_view(task_id: int):
        """Opening the task is viewing it (the responsible's first look ends "not viewed")."""
        sb, portal = _sb(), _portal()
        with sb.state.lock:
            sb._task(portal, task_id)
        t = sb.view_task(portal, task_id, _actor(portal))
        return render_template("bitrix24/task.html", t=t, sub=sb.sub_status(t), status_name=TASK_STATUS,
                               sub_name=SUB_STATUS, actions=ACTIONS)

    @bp.post("/tasks/<int:task_id>")
    def task_change(task_id: int):
        sb, portal = _sb(), _portal()
        what = request.form.get("do", "")
        if what in ACTIONS:
            t = sb.task_action(portal, task_id, what, actor=_actor(portal))
        elif what == "deadline":
            t = sb.update_task(portal, task_id, {"DEADLINE": request.form.get("deadline") or ""}, actor=_actor(portal))
        elif what == "delete":
            sb.delete_task(portal, task_id, actor=_actor(portal))
            return back("bx_ui.tasks", f"Task {task_id} deleted")
        else:
            raise RestError("ERROR_ARGUMENT", "do: " + ", ".join(ACTIONS) + ", deadline or delete")
        return back("bx_ui.task_view", f"Task {task_id}: {TASK_STATUS.get(t['status'], t['status'])}", task_id=task_id)

    @bp.post("/tasks/<int:task_id>/result")
    def task_result(task_id: int):
        _sb().add_task_result(_portal(), task_id, request.form.get("text", ""), actor=_actor(_portal()))
        return back("bx_ui.task_view", f"Task {task_id}: result written", task_id=task_id)

    # -- apps, events, faults ---------------------------------------------------------------------
    @bp.get("/events")
    def events():
        sb, portal = _sb(), _portal()
        with sb.state.lock:
            installs = list(sb.portal(portal)["installs"].values())
            offline = len(sb.portal(portal)["offline"])
        return render_template("bitrix24/events.html", installs=installs, bindings=sb.bindings(portal),
                               deliveries=list(reversed(sb.deliveries[-100:])), pending=len(sb.pending()),
                               offline=offline, clients=sb.client_options,
                               dumps=lambda o: json.dumps(o, indent=2, ensure_ascii=False))

    @bp.post("/events/deliver")
    def deliver():
        sent = _sb().deliver_pending()
        return back("bx_ui.events", f"{len(sent)} deliveries sent")

    @bp.post("/apps/<client_id>/uninstall")
    def uninstall(client_id: str):
        done = _sb().uninstall(_portal(), client_id)
        return back("bx_ui.events", "Application removed" if done else "The application was not installed")

    @bp.route("/faults", methods=["GET", "POST"])
    def faults():
        sb = _sb()
        if request.method == "POST":
            try:
                sb.faults.update_from_form(request.form)
            except ValueError as exc:
                raise RestError("ERROR_ARGUMENT", str(exc)) from None
            if request.form.get("expire_tokens"):
                sb.tokens.expire_all_now()
            return back("bx_ui.faults", "Fault settings saved")
        return render_template("bitrix24/faults.html", settings=sb.faults.as_dict(), counters=sb.tokens.counters())

    return bp


def links_blueprint() -> Blueprint:
    """The portal's own addresses for a deal, a lead and a task, sent to the sandbox page."""
    bp = Blueprint("bx_links", __name__)

    def to(endpoint: str, portal: str, **kw):
        resp = redirect(url_for(endpoint, **kw))
        if portal in _sb().data["bx_portals"]:
            resp.set_cookie("bx_portal", portal, httponly=True, samesite="Lax")
        return resp

    @bp.get("/portal/<portal>/crm/deal/details/<int:deal_id>/")
    def deal(portal: str, deal_id: int):
        deal = _sb().record(portal, "deals", deal_id) if portal in _sb().data["bx_portals"] else None
        return to("bx_ui.index", portal, category=(deal or {}).get("CATEGORY_ID", 0), _anchor=f"deal-{deal_id}")

    @bp.get("/portal/<portal>/crm/lead/details/<int:lead_id>/")
    def lead(portal: str, lead_id: int):
        return to("bx_ui.index", portal, _anchor=f"lead-{lead_id}")

    @bp.get("/portal/<portal>/company/personal/user/<int:user_id>/tasks/task/view/<int:task_id>/")
    def task(portal: str, user_id: int, task_id: int):
        return to("bx_ui.task_view", portal, task_id=task_id)

    @bp.get("/portal/<portal>/")
    def home(portal: str):
        return to("bx_ui.index", portal)

    return bp
