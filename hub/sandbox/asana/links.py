"""Asana's web addresses (`permalink_url`: `<origin>/1/<workspace>/task/<gid>` ...) as the
emulator's own pages. With the `permalink_base` option set to where the emulator is served (the
hub's sandbox does: hub/sandbox/__init__.py), a task's or project's link in the hub's run log
opens the sandbox's page of it instead of the real site."""
from __future__ import annotations

from flask import Blueprint, redirect, url_for


def links_blueprint() -> Blueprint:
    bp = Blueprint("asana_links", __name__)

    @bp.get("/1/<workspace>/task/<gid>")
    def task(workspace: str, gid: str):
        return redirect(url_for("asana_ui.task", gid=gid))

    @bp.get("/1/<workspace>/project/<gid>")
    def project(workspace: str, gid: str):
        return redirect(url_for("asana_ui.project", gid=gid))

    @bp.get("/0/<team>/<gid>")
    def team(team: str, gid: str):
        return redirect(url_for("asana_ui.index"))

    return bp
