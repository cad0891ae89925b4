"""Sandbox pages (`/_sandbox/ui/`) to see what landed, plus attachment downloads and fault knobs.

Rich text is re-rendered from the parsed XML through a tag whitelist, never passed through as
markup, so a task written by a test or a CRM user cannot inject script into the page."""
from __future__ import annotations

import hashlib
import hmac
import time
import xml.etree.ElementTree as ET

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, url_for
from markupsafe import Markup, escape

from .models import AsanaEmulator

DOWNLOAD_TTL = 120  # seconds, like Asana's short-lived download_url
_HTML_TAGS = {"body": "div", "strong": "strong", "em": "em", "u": "u", "s": "s", "code": "code",
              "ol": "ol", "ul": "ul", "li": "li", "h1": "h3", "h2": "h4", "hr": "hr", "a": "a"}


def _emu() -> AsanaEmulator:
    return current_app.extensions["sandbox"]


def rich_text_html(xml: str) -> Markup:
    """Stored `html_notes` -> safe HTML (known tags only, text escaped, http(s)/mailto links)."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return Markup("<pre>") + escape(xml) + Markup("</pre>")

    def render(el: ET.Element) -> str:
        tag = _HTML_TAGS.get(el.tag, "span")
        attrs = ""
        if tag == "a":
            href = el.attrib.get("href", "")
            if href.lower().startswith(("http://", "https://", "mailto:")):
                attrs = f' href="{escape(href)}" rel="noopener noreferrer"'
        inner = str(escape(el.text or "")) + "".join(render(c) + str(escape(c.tail or "")) for c in el)
        return f"<{tag}{attrs}>" if tag == "hr" else f"<{tag}{attrs}>{inner}</{tag}>"

    return Markup(render(root))


def _sign(gid: str, expires: int) -> str:
    key = current_app.config["ASANA_OFFSET_SECRET"]
    return hmac.new(key, f"{gid}:{expires}".encode(), hashlib.sha256).hexdigest()


def attachment_urls(rec: dict) -> tuple[str | None, str | None]:
    """(download_url, permanent_url) for an attachment record; external links point at their URL."""
    if rec["resource_subtype"] == "external":
        return rec.get("url"), rec.get("url")
    expires = int(time.time()) + DOWNLOAD_TTL
    download = url_for("asana_ui.signed_download", gid=rec["gid"], expires=expires,
                       sig=_sign(rec["gid"], expires), _external=True)
    return download, url_for("asana_ui.download", gid=rec["gid"], _external=True)


def _file_response(gid: str) -> Response:
    emu = _emu()
    rec = emu.get("attachments", gid)
    data = emu.attachment_bytes(gid)
    if rec is None or data is None:
        abort(404)
    resp = Response(data, mimetype=rec["content_type"])
    resp.headers["Content-Disposition"] = f'attachment; filename="{rec["name"].replace(chr(34), "")}"'
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def ui_blueprint() -> Blueprint:
    bp = Blueprint("asana_ui", __name__, url_prefix="/_sandbox", template_folder="templates")

    @bp.app_template_filter("rich_text")
    def rich_text_filter(xml: str) -> Markup:
        return rich_text_html(xml or "<body/>")

    @bp.get("/files/<gid>")
    def signed_download(gid: str):
        """The short-lived `download_url` Asana hands out (signed, expires after two minutes)."""
        try:
            expires = int(request.args.get("expires", "0"))
        except ValueError:
            abort(403)
        if expires < time.time() or not hmac.compare_digest(_sign(gid, expires), request.args.get("sig", "")):
            abort(403)
        return _file_response(gid)

    @bp.get("/ui/attachments/<gid>/download")
    def download(gid: str):
        return _file_response(gid)

    @bp.get("/ui/")
    def index():
        emu = _emu()
        workspaces = emu.workspaces()
        teams, users, projects = emu.teams(), emu.users(), emu.projects()
        task_counts: dict[str, int] = {}
        for task in emu.tasks():
            for p in task["projects"]:
                task_counts[p] = task_counts.get(p, 0) + 1
        return render_template("asana/index.html", workspaces=workspaces, teams=teams, users=users,
                               projects=projects, task_counts=task_counts, faults=emu.faults.as_dict(),
                               counters=emu.tokens.counters(),
                               loose_tasks=[t for t in emu.tasks() if not t["projects"]])

    @bp.get("/ui/projects/<gid>")
    def project(gid: str):
        emu = _emu()
        rec = emu.get("projects", gid)
        if rec is None:
            abort(404)
        return render_template("asana/project.html", project=rec, tasks=emu.tasks(gid),
                               users={u["gid"]: u for u in emu.users()},
                               workspace=emu.get("workspaces", rec["workspace"]),
                               team=emu.get("teams", rec.get("team")))

    @bp.get("/ui/tasks/<gid>")
    def task(gid: str):
        emu = _emu()
        rec = next((t for t in emu.tasks() if t["gid"] == gid), None)
        if rec is None:
            abort(404)
        return render_template("asana/task.html", task=rec, users={u["gid"]: u for u in emu.users()},
                               projects={p["gid"]: p for p in emu.projects()},
                               attachments=emu.attachments(gid),
                               workspace=emu.get("workspaces", rec["workspace"]))

    @bp.post("/ui/faults")
    def faults():
        emu = _emu()
        if request.form.get("action") == "expire_tokens":
            emu.tokens.expire_all_now()
        else:
            values = {k: v for k, v in request.form.items() if k != "action" and v != ""}
            values.setdefault("webhooks_paused", "false")
            values.setdefault("strict_refresh", "false")
            try:
                emu.faults.update(values)
            except ValueError as exc:
                return Response(str(exc), status=400, mimetype="text/plain")
        return redirect(url_for("asana_ui.index"))

    return bp
