"""The sandbox CRM page: the person playing a Pipedrive user edits deals, persons, leads and notes.

Plain POST forms; every change calls the emulator methods the API uses, so webhooks fire exactly as
for API changes (with `change_source: "app"`). The acting user is a cookie picked in the header."""
from __future__ import annotations

import json

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from hub.web.returns import safe_return_target

from .util import BadRequest, v1_time


def _sb():
    return current_app.extensions["sandbox"]


def _actor() -> int:
    sb = _sb()
    raw = request.cookies.get("pd_actor", "")
    return int(raw) if raw.isdigit() and raw in sb.data["pd_users"] else sb.admin_id()


def _opt_int(name: str):
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number") from None


def _number(name: str, default=0):
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a number") from None
    return int(value) if value.is_integer() else value


def _contact_lines(name: str) -> list[dict]:
    """One entry per line: `value` or `label: value`; a trailing `*` marks the primary one."""
    out = []
    for line in (request.form.get(name) or "").splitlines():
        line = line.strip()
        if not line:
            continue
        primary = line.endswith("*")
        line = line.rstrip("*").strip()
        label, sep, value = line.partition(":")
        if not sep or " " in label.strip() or "@" in label or label.strip().startswith("+"):
            label, value = "work", line
        out.append({"value": value.strip(), "label": label.strip() or "work", "primary": primary})
    return out


def _custom_from_form(entity: str) -> dict:
    values = {}
    for f in _sb().fields(entity):
        if not f["is_custom_field"]:
            continue
        name = "cf_" + f["key"]
        if f["field_type"] == "set":
            chosen = [int(x) for x in request.form.getlist(name) if x.isdigit()]
            values[f["key"]] = chosen or None
            continue
        raw = (request.form.get(name) or "").strip()
        if not raw:
            values[f["key"]] = None
        elif f["field_type"] == "enum":
            values[f["key"]] = int(raw)
        elif f["field_type"] == "double":
            values[f["key"]] = _number(name)
        elif f["field_type"] == "monetary":
            values[f["key"]] = {"value": _number(name), "currency": request.form.get(name + "_currency") or "EUR"}
        else:
            values[f["key"]] = raw
    return values


def ui_blueprint() -> Blueprint:
    bp = Blueprint("pd_ui", __name__, url_prefix="/_sandbox/ui", template_folder="templates")

    @bp.context_processor
    def common():
        sb = _sb()
        with sb.state.lock:
            return {"sb": sb, "company": sb.company(), "users": sb.users(), "actor": _actor(), "v1_time": v1_time,
                    "msg": request.args.get("msg"), "pipelines": sorted(sb.data["pd_pipelines"].values(), key=lambda p: p["id"]),
                    "stages": sorted(sb.data["pd_stages"].values(), key=lambda s: (s["pipeline_id"], s["order_nr"])),
                    "persons": sorted((p for p in sb.data["pd_persons"].values() if not p.get("is_deleted")), key=lambda p: p["name"]),
                    "orgs": sorted(sb.data["pd_orgs"].values(), key=lambda o: o["name"])}

    @bp.errorhandler(BadRequest)
    def bad(exc: BadRequest):
        if request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json":
            return {"success": False, "error": exc.message}, exc.status   # `flask --app hub sandbox ...`
        return render_template("pipedrive/message.html", title="Not saved", message=exc.message), exc.status

    def back(endpoint: str, msg: str, **kw):
        return redirect(url_for(endpoint, msg=msg, **kw))

    @bp.post("/actor")
    def set_actor():
        resp = redirect(safe_return_target(request.form.get("next"), url_for("pd_ui.index")))
        resp.set_cookie("pd_actor", request.form.get("actor", ""), httponly=True, samesite="Lax")
        return resp

    # -- deals ------------------------------------------------------------------------------------
    @bp.get("/")
    def index():
        sb = _sb()
        with sb.state.lock:
            deals = sorted((d for d in sb.data["pd_deals"].values() if not d["is_deleted"]), key=lambda d: -d["id"])
            return render_template("pipedrive/index.html", deals=deals, fields=sb.fields("deal"))

    @bp.post("/deals")
    def deal_create():
        sb = _sb()
        d = sb.create_deal(request.form.get("title", ""), stage_id=_opt_int("stage_id"), value=_number("value"),
                           currency=request.form.get("currency") or "EUR", person_id=_opt_int("person_id"),
                           org_id=_opt_int("org_id"), owner_id=_opt_int("owner_id"),
                           custom_fields={k: v for k, v in _custom_from_form("deal").items() if v is not None},
                           actor=_actor())
        return back("pd_ui.deal", "Deal created", deal_id=d["id"])

    @bp.get("/deals/<int:deal_id>")
    def deal(deal_id):
        sb = _sb()
        with sb.state.lock:
            d = sb._get("pd_deals", deal_id, "Deal")
            notes = sorted((n for n in sb.data["pd_notes"].values() if n.get("deal_id") == deal_id), key=lambda n: -n["id"])
            files = [f for f in sb.data["pd_files"].values() if f.get("deal_id") == deal_id]
            return render_template("pipedrive/deal.html", d=d, notes=notes, files=files, fields=sb.fields("deal"))

    @bp.post("/deals/<int:deal_id>")
    def deal_update(deal_id):
        changes = {"title": request.form.get("title", ""), "value": _number("value"),
                   "currency": request.form.get("currency") or "EUR", "person_id": _opt_int("person_id"),
                   "org_id": _opt_int("org_id"), "custom_fields": _custom_from_form("deal")}
        if _opt_int("owner_id"):
            changes["owner_id"] = _opt_int("owner_id")
        if _opt_int("stage_id"):
            changes["stage_id"] = _opt_int("stage_id")
        _sb().update_deal(deal_id, changes, actor=_actor())
        return back("pd_ui.deal", "Deal saved", deal_id=deal_id)

    @bp.post("/deals/<int:deal_id>/stage")
    def deal_stage(deal_id):
        _sb().move_stage(deal_id, _opt_int("stage_id"), actor=_actor())
        return back("pd_ui.deal", "Stage changed", deal_id=deal_id)

    @bp.post("/deals/<int:deal_id>/status")
    def deal_status(deal_id):
        sb, status = _sb(), request.form.get("status")
        if status == "won":
            sb.mark_won(deal_id, actor=_actor())
        elif status == "lost":
            sb.mark_lost(deal_id, request.form.get("lost_reason") or None, actor=_actor())
        elif status == "open":
            sb.reopen(deal_id, actor=_actor())
        elif status == "deleted":
            sb.delete_deal(deal_id, actor=_actor())
            return back("pd_ui.index", "Deal deleted")
        else:
            raise BadRequest("status must be won, lost, open or deleted")
        return back("pd_ui.deal", f"Deal marked {status}", deal_id=deal_id)

    @bp.post("/deals/<int:deal_id>/notes")
    def note_add(deal_id):
        _sb().add_note(request.form.get("content", ""), deal_id=deal_id,
                       pinned_to_deal=bool(request.form.get("pinned")), actor=_actor())
        return back("pd_ui.deal", "Note added", deal_id=deal_id)

    @bp.post("/notes/<int:note_id>/pin")
    def note_pin(note_id):
        note = _sb().pin_note(note_id, request.form.get("pinned") == "1", actor=_actor())
        return back("pd_ui.deal", "Note pinned" if note["pinned_to_deal_flag"] else "Note unpinned",
                    deal_id=note["deal_id"])

    @bp.post("/deals/<int:deal_id>/files")
    def file_add(deal_id):
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise BadRequest("Choose a file to upload")
        _sb().attach_file(deal_id, upload.filename, upload.read(), actor=_actor())
        return back("pd_ui.deal", "File attached", deal_id=deal_id)

    # -- persons and leads ------------------------------------------------------------------------
    @bp.get("/persons")
    def persons():
        return render_template("pipedrive/persons.html", fields=_sb().fields("person"))

    @bp.post("/persons")
    def person_create():
        _sb().create_person(request.form.get("name") or None, emails=_contact_lines("emails"),
                            phones=_contact_lines("phones"), org_id=_opt_int("org_id"),
                            owner_id=_opt_int("owner_id"),
                            custom_fields={k: v for k, v in _custom_from_form("person").items() if v is not None},
                            actor=_actor())
        return back("pd_ui.persons", "Person created")

    @bp.post("/persons/<int:person_id>")
    def person_update(person_id):
        _sb().update_person(person_id, {"name": request.form.get("name", ""), "emails": _contact_lines("emails"),
                                        "phones": _contact_lines("phones"), "org_id": _opt_int("org_id")},
                            actor=_actor())
        return back("pd_ui.persons", "Person saved")

    @bp.post("/persons/<int:person_id>/delete")
    def person_delete(person_id):
        _sb().delete_person(person_id, actor=_actor())
        return back("pd_ui.persons", "Person deleted")

    @bp.get("/leads")
    def leads():
        sb = _sb()
        with sb.state.lock:
            items = sorted(sb.data["pd_leads"].values(), key=lambda l: -l["add_time"])
            return render_template("pipedrive/leads.html", leads=items)

    @bp.post("/leads")
    def lead_add():
        amount = (request.form.get("amount") or "").strip()
        if _opt_int("person_id") is None and _opt_int("organization_id") is None:
            raise BadRequest("A lead belongs to a person or an organization: choose one of them (or both).")
        _sb().add_lead(request.form.get("title", ""), person_id=_opt_int("person_id"),
                       organization_id=_opt_int("organization_id"), amount=_number("amount") if amount else None,
                       currency=request.form.get("currency") or "EUR", owner_id=_opt_int("owner_id"), actor=_actor())
        return back("pd_ui.leads", "Lead added")

    # -- webhooks, installs, faults ---------------------------------------------------------------
    @bp.get("/webhooks")
    def webhooks():
        sb = _sb()
        with sb.state.lock:
            hooks = sorted(sb.data["pd_webhooks"].values(), key=lambda w: -w["id"])
        deliveries = list(reversed(sb.deliveries[-100:]))
        return render_template("pipedrive/webhooks.html", hooks=hooks, deliveries=deliveries,
                               callbacks=list(reversed(sb.callbacks[-50:])), pending=sb.dispatcher.pending(),
                               dumps=lambda o: json.dumps(o, indent=2, ensure_ascii=False))

    @bp.get("/installs")
    def installs():
        sb = _sb()
        with sb.state.lock:
            outbox = list(reversed(sb.data["pd_outbox"][-100:]))
        return render_template("pipedrive/installs.html", installs=sb.installs.all(), outbox=outbox,
                               clients=sb.client_options)

    @bp.post("/installs/<client_id>/visibility")
    def install_visibility(client_id):
        _sb().installs.set_visibility(client_id, _actor(), request.form.get("visibility", "me"),
                                      [int(x) for x in request.form.getlist("user_ids") if x.isdigit()],
                                      notify=bool(request.form.get("notify")))
        return back("pd_ui.installs", "Visibility saved")

    @bp.post("/installs/<client_id>/uninstall/<int:user_id>")
    def install_remove(client_id, user_id):
        if client_id not in _sb().client_options:
            raise BadRequest("Unknown app", 404)
        done = _sb().installs.uninstall(client_id, user_id)
        return back("pd_ui.installs", "App uninstalled" if done else "The app was not installed for that user")

    @bp.route("/faults", methods=["GET", "POST"])
    def faults():
        sb = _sb()
        if request.method == "POST":
            try:
                sb.faults.update_from_form(request.form)
            except ValueError as exc:
                raise BadRequest(str(exc)) from None
            if request.form.get("expire_tokens"):
                sb.tokens.expire_all_now()
            return back("pd_ui.faults", "Fault settings saved")
        return render_template("pipedrive/faults.html", settings=sb.faults.as_dict(),
                               counters=sb.tokens.counters())

    return bp
