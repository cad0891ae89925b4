"""The sandbox CRM page: the person playing a HubSpot user changes lifecycle stages, logs outreach and
responses, works leads and deals, completes tasks, and watches the app's webhook deliveries.

Plain POST forms calling the emulator methods the API uses, so history and webhooks carry the
source of a user in the CRM (`CRM_UI`, `userId:<id>`), or of a workflow when the header says the
change is made by one. The account (portal) and the acting user are cookies picked in the header."""
from __future__ import annotations

import json

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from hub.web.returns import safe_return_target

from . import schema as s
from .emulator import ApiError, Source, iso


def _sb():
    return current_app.extensions["sandbox"]


def _portal() -> int:
    sb = _sb()
    raw = request.cookies.get("hs_portal", "")
    ids = [p["hub_id"] for p in sb.portals()]
    return int(raw) if raw.isdigit() and int(raw) in ids else ids[0]


def _actor(hub: int) -> str:
    """`<userId>` or `workflow`."""
    raw = request.cookies.get("hs_actor", "")
    if raw == "workflow" or (raw.isdigit() and str(raw) in _sb().pd(hub)["users"]):
        return raw
    return str(_sb().portal(hub)["admin_user_id"])


def _source(hub: int) -> Source:
    actor = _actor(hub)
    if actor == "workflow":
        return Source("workflow", "enrollmentId:sandbox", None)
    return _sb().ui_source(hub, int(actor))


def _field(name: str, what: str | None = None) -> str:
    value = (request.form.get(name) or "").strip()
    if not value:
        raise ApiError(400, f"{what or name} is required")
    return value


def _name(rec: dict) -> str:
    p = rec["properties"]
    return (" ".join(x for x in (p.get("firstname"), p.get("lastname")) if x) or p.get("email") or p.get("name")
            or p.get("dealname") or p.get("hs_lead_name") or p.get("hs_task_subject") or f"#{rec['id']}")


def ui_blueprint() -> Blueprint:
    bp = Blueprint("hs_ui", __name__, url_prefix="/_sandbox/ui", template_folder="templates")

    @bp.context_processor
    def common():
        sb = _sb()
        hub = _portal()
        with sb.state.lock:
            return {"sb": sb, "hub": hub, "portal": sb.portal(hub), "portals": sb.portals(), "users": sb.users(hub),
                    "owners": {o["id"]: f"{o['firstName']} {o['lastName']}" for o in sb.owners(hub)},
                    "actor": _actor(hub), "msg": request.args.get("msg"), "name": _name,
                    "lifecycle": [(o["value"], o["label"]) for o in sb.property(hub, "contacts", "lifecyclestage")["options"]],
                    "lead_pipelines": sb.pipelines(hub, "leads"), "deal_pipelines": sb.pipelines(hub, "deals"),
                    "reasons": [(o["value"], o["label"]) for o in
                                sb.property(hub, "leads", "hs_lead_disqualification_reason")["options"]],
                    "dispositions": s.CALL_DISPOSITIONS}

    @bp.errorhandler(ApiError)
    def bad(exc: ApiError):
        if request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json":
            return exc.body(), exc.status
        return render_template("hubspot/message.html", title="Not saved", message=exc.message), exc.status

    def back(msg: str, endpoint: str = "hs_ui.index"):
        return redirect(url_for(endpoint, msg=msg))

    @bp.post("/who")
    def who():
        resp = redirect(safe_return_target(request.form.get("next"), url_for("hs_ui.index")))
        portal, actor = request.form.get("portal", ""), request.form.get("actor", "")
        # a user of another account is not valid here: `_actor` falls back to the account's admin
        resp.set_cookie("hs_portal", portal, httponly=True, samesite="Lax")
        resp.set_cookie("hs_actor", actor, httponly=True, samesite="Lax")
        return resp

    @bp.get("/")
    def index():
        sb = _sb()
        hub = _portal()
        with sb.state.lock:
            contacts = sb.records(hub, "contacts")
            companies = sb.records(hub, "companies")
            leads = sb.records(hub, "leads")
            deals = sb.records(hub, "deals")
            tasks = [t for t in sb.records(hub, "tasks")]
            lead_contact = {l["id"]: sb.find(hub, "contacts", l["properties"].get("hs_primary_contact_id") or 0)
                            for l in leads}
            open_leads = {c["id"]: sb.open_leads(hub, c["id"]) for c in contacts}
            members = {co["id"]: [sb.find(hub, "contacts", cid) for cid in sb.associated_ids(hub, "companies", co["id"], "contacts")]
                       for co in companies}
            stage_label = {st["id"]: st["label"] for kind in ("leads", "deals") for p in sb.pipelines(hub, kind)
                           for st in p["stages"]}
            activities = []
            for kind in ("emails", "calls", "meetings", "communications"):
                for rec in sb.records(hub, kind):
                    who_ = sb.associated_ids(hub, kind, rec["id"], "contacts")
                    activities.append((rec["properties"].get("hs_timestamp") or "", kind, rec,
                                       [sb.find(hub, "contacts", c) for c in who_]))
            activities.sort(key=lambda a: a[0], reverse=True)
        return render_template("hubspot/index.html", contacts=contacts, companies=companies, leads=leads,
                               deals=deals, tasks=tasks, lead_contact=lead_contact, open_leads=open_leads,
                               members=members, stage_label=stage_label, activities=activities[:30])

    # -- contacts and companies -------------------------------------------------------------------
    @bp.post("/contacts")
    def contact_create():
        hub = _portal()
        props = {"firstname": request.form.get("firstname", "").strip(), "lastname": request.form.get("lastname", "").strip(),
                 "email": _field("email", "E-mail"), "lifecyclestage": request.form.get("lifecyclestage") or "",
                 "hubspot_owner_id": request.form.get("owner") or ""}
        _sb().create(hub, "contacts", props, source=_source(hub))
        return back("Contact created")

    @bp.post("/contacts/<cid>/lifecycle")
    def contact_lifecycle(cid):
        hub = _portal()
        _sb().set_lifecycle(hub, "contacts", cid, _field("stage", "Lifecycle stage"), source=_source(hub))
        return back("Lifecycle stage changed")

    @bp.post("/companies/<cid>/lifecycle")
    def company_lifecycle(cid):
        hub = _portal()
        _sb().set_lifecycle(hub, "companies", cid, _field("stage", "Lifecycle stage"), source=_source(hub))
        return back("Company lifecycle stage changed (synced to its contacts)")

    @bp.post("/contacts/<cid>/activity")
    def contact_activity(cid):
        """`what`: outreach:email|linkedin|call|meeting, or response:email|call|meeting."""
        hub = _portal()
        direction, _, activity = _field("what", "Activity").partition(":")
        if direction not in ("outreach", "response") or activity not in ("email", "linkedin", "call", "meeting"):
            raise ApiError(400, "Choose an activity to log")
        if direction == "response" and activity == "linkedin":
            raise ApiError(400, "A LinkedIn reply is not something HubSpot logs as a response")
        outcome = request.form.get("outcome") or None if activity == "call" and direction == "outreach" else None
        _sb().log_activity(hub, cid, activity, response=direction == "response", outcome=outcome,
                           source=_source(hub) if direction == "outreach" else None)
        return back(f"{'Response' if direction == 'response' else 'Outreach'} logged: {activity}")

    @bp.post("/calls/<call_id>/outcome")
    def call_outcome(call_id):
        """A call logged earlier gets its outcome later (e.g. no answer -> connected)."""
        hub = _portal()
        _sb().update(hub, "calls", call_id, {"hs_call_disposition": _field("outcome", "Call outcome")},
                     source=_source(hub))
        return back("Call outcome changed")

    # -- leads ------------------------------------------------------------------------------------
    @bp.post("/leads")
    def lead_create():
        hub = _portal()
        sb = _sb()
        contact = sb.find(hub, "contacts", _field("contact", "Contact"))
        if contact is None:
            raise ApiError(400, "Choose an existing contact")
        stage = request.form.get("stage") or ""
        found = sb.stage(hub, "leads", stage) if stage else None
        props = {"hs_lead_name": _field("name", "Lead name"),
                 "hubspot_owner_id": contact["properties"].get("hubspot_owner_id") or ""}
        if found:
            props.update(hs_pipeline=found[0]["id"], hs_pipeline_stage=stage)
        sb.create(hub, "leads", props, [{"to": {"id": contact["id"]}, "types": [
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": s.primary_type("leads", "contacts")}]}],
                  source=_source(hub))
        return back("Lead created")

    @bp.post("/leads/<lid>/stage")
    def lead_stage(lid):
        hub = _portal()
        _sb().move_lead(hub, lid, _field("stage", "Stage"), source=_source(hub))
        return back("Lead moved")

    @bp.post("/leads/<lid>/disqualify")
    def lead_disqualify(lid):
        hub = _portal()
        _sb().disqualify_lead(hub, lid, _field("reason", "Disqualification reason"), source=_source(hub))
        return back("Lead disqualified")

    # -- deals and tasks --------------------------------------------------------------------------
    @bp.post("/deals/<did>/stage")
    def deal_stage(did):
        hub = _portal()
        what = _field("stage", "Stage")
        if what in ("won", "lost"):
            _sb().close_deal(hub, did, what == "won", source=_source(hub))
            return back(f"Deal marked {what}")
        _sb().set_deal_stage(hub, did, what, source=_source(hub))
        return back("Deal moved")

    @bp.post("/tasks/<tid>/complete")
    def task_complete(tid):
        hub = _portal()
        _sb().complete_task(hub, tid, source=_source(hub))
        return back("Task completed")

    # -- webhooks, installs, faults ---------------------------------------------------------------
    @bp.get("/webhooks")
    def webhooks():
        sb = _sb()
        return render_template("hubspot/webhooks.html", clients=sb.client_options, subs=sb.webhooks.subscriptions,
                               target=sb.webhooks.target_url, pending=sb.webhooks.pending_count(),
                               deliveries=list(reversed(sb.deliveries[-60:])),
                               installs={c: sb.installed_portals(c) for c in sb.client_options},
                               dumps=lambda o: json.dumps(o, indent=2, ensure_ascii=False))

    @bp.post("/webhooks/deliver")
    def webhooks_deliver():
        sent = _sb().deliver_pending(force=bool(request.form.get("force")))
        return back(f"{len(sent)} deliveries sent", "hs_ui.webhooks")

    @bp.post("/installs/<client_id>/<int:hub_id>/uninstall")
    def uninstall(client_id, hub_id):
        if client_id not in _sb().client_options:
            raise ApiError(404, "Unknown app", "OBJECT_NOT_FOUND")
        done = _sb().uninstall(client_id, hub_id)
        return back("App uninstalled" if done else "The app was not installed there", "hs_ui.webhooks")

    @bp.route("/faults", methods=["GET", "POST"])
    def faults():
        sb = _sb()
        if request.method == "POST":
            try:
                sb.faults.update_from_form(request.form)
            except ValueError as exc:
                raise ApiError(400, str(exc)) from None
            if request.form.get("expire_tokens"):
                sb.tokens.expire_all_now()
            return back("Fault settings saved", "hs_ui.faults")
        return render_template("hubspot/faults.html", settings=sb.faults.as_dict(), counters=sb.tokens.counters())

    bp.add_app_template_filter(lambda v: (v or "")[:16].replace("T", " "), "hs_time")
    return bp


def control_routes(app) -> None:
    """Operator routes for scripts and tests: flush deliveries, read or replace subscriptions."""
    from flask import jsonify

    @app.post("/_sandbox/webhooks/deliver")
    def control_deliver():
        force = request.args.get("force") in ("1", "true")
        sent = _sb().deliver_pending(force=force)
        return jsonify({"sent": len(sent), "pending": _sb().webhooks.pending_count()})

    @app.get("/_sandbox/webhooks")
    def control_deliveries():
        sb = _sb()
        return jsonify({"pending": sb.webhooks.pending_count(), "deliveries": sb.deliveries[-100:],
                        "subscriptions": sb.webhooks.subscriptions})

    @app.put("/_sandbox/webhooks/subscriptions/<client_id>")
    def control_subscriptions(client_id):
        sb = _sb()
        body = request.get_json(silent=True)
        if client_id not in sb.client_options:
            return jsonify({"error": "unknown client_id"}), 404
        if not isinstance(body, list):
            return jsonify({"error": "body must be a JSON array of subscriptions"}), 400
        try:
            return jsonify(sb.webhooks.set_subscriptions(client_id, body))
        except (ValueError, AttributeError, TypeError) as exc:
            return jsonify({"error": str(exc)}), 400


__all__ = ["ui_blueprint", "control_routes", "iso"]
