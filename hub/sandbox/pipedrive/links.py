"""The company's web addresses a person opens (`https://<company>.pipedrive.com/deal/42` ...), as
the emulator's own pages: the API domain is this app's root, so a link the hub built from it
(a deal's link in a task's description, "open in the CRM") lands on the sandbox's page of that
object instead of a 404. Paths as the real web app spells them."""
from __future__ import annotations

from flask import Blueprint, redirect, url_for


def links_blueprint() -> Blueprint:
    bp = Blueprint("pd_links", __name__)

    @bp.get("/deal/<int:deal_id>")
    def deal(deal_id: int):
        return redirect(url_for("pd_ui.deal", deal_id=deal_id))

    @bp.get("/person/<int:person_id>")
    @bp.get("/organization/<int:org_id>")
    def contacts(person_id: int | None = None, org_id: int | None = None):
        return redirect(url_for("pd_ui.persons"))

    @bp.get("/leads/inbox/<lead_id>")
    def lead(lead_id: str):
        return redirect(url_for("pd_ui.leads"))

    @bp.get("/activities/list")
    def activities():
        return redirect(url_for("pd_ui.index"))

    return bp
