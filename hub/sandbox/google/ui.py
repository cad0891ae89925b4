"""Sandbox pages under `/_sandbox/ui/`: see each account's labels and contacts, edit them by hand.

Edits go through the emulator's public methods (the same code the API runs), so a contact changed
here shows up in the next `syncToken` listing exactly like a change made in Google Contacts — which
is how two-way sync is tried out without a real account. Also the fault knobs and token expiry."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for

from .emulator import GoogleSandbox
from .errors import ApiError
from .knobs import KNOBS, LABELS

EDITED_FIELDS = ("names", "emailAddresses", "phoneNumbers", "organizations", "memberships")


def _lines(raw: str | None) -> list[str]:
    return [line.strip() for line in (raw or "").splitlines() if line.strip()]


def person_from_form(form, current: dict[str, Any] | None) -> dict[str, Any]:
    """A Person body from the contact form; existing values keep their type when re-submitted."""
    current = current or {}
    person: dict[str, Any] = {}
    given, family = form.get("given_name", "").strip(), form.get("family_name", "").strip()
    person["names"] = [{k: v for k, v in (("givenName", given), ("familyName", family)) if v}] if given or family else []
    for field, key, default_type in (("emailAddresses", "emails", "other"), ("phoneNumbers", "phones", "mobile")):
        known = {item.get("value"): item.get("type") for item in current.get(field, [])}
        person[field] = [{"value": value, "type": known.get(value) or default_type} for value in _lines(form.get(key))]
    org = form.get("organization", "").strip()
    old_org = (current.get("organizations") or [{}])[0]
    person["organizations"] = [dict({k: v for k, v in old_org.items() if k in ("title", "department", "type")},
                                    name=org)] if org else []
    person["memberships"] = [{"contactGroupMembership": {"contactGroupResourceName": name}}
                             for name in form.getlist("label")]
    return person


def make_ui_blueprint(sb: GoogleSandbox) -> Blueprint:
    bp = Blueprint("google_ui", __name__, url_prefix="/_sandbox/ui", template_folder="templates")

    def account_or_404(account_id: str) -> dict[str, str]:
        for acct in sb.accounts():
            if acct["id"] == account_id:
                return acct
        abort(404)

    def back(account_id: str, error: str | None = None):
        return redirect(url_for("google_ui.account", account_id=account_id, **({"error": error} if error else {})))

    @bp.get("/")
    def index():
        rows = []
        for acct in sb.accounts():
            rows.append(dict(acct, contacts=sb.contact_count(acct["id"]),
                             labels=[g["name"] for g in sb.groups(acct["id"])]))
        return render_template("google/ui_index.html", accounts=rows, faults=sb.faults.as_dict(), knobs=LABELS,
                               counters=sb.tokens.counters(), limit=sb.contact_limit,
                               error=request.args.get("error"))

    @bp.post("/faults")
    def set_faults():
        form = request.form
        values: dict[str, Any] = {k: form[k] for k in ("latency_ms", "error_rate", "error_status", "burst_429",
                                                        "retry_after", *KNOBS) if form.get(k, "") != ""}
        values["strict_refresh"] = form.get("strict_refresh") == "true"
        try:
            sb.faults.update(values)
        except ValueError as exc:
            return redirect(url_for("google_ui.index", error=str(exc)))
        return redirect(url_for("google_ui.index"))

    @bp.post("/tokens/expire")
    def expire_tokens():
        sb.tokens.expire_all_now()
        return redirect(url_for("google_ui.index"))

    @bp.post("/sync-tokens/expire")
    def expire_sync_tokens():
        sb.expire_sync_tokens()
        return redirect(url_for("google_ui.index"))

    @bp.get("/accounts/<account_id>")
    def account(account_id: str):
        acct = account_or_404(account_id)
        groups = sb.groups(account_id, include_system=True)
        return render_template("google/ui_account.html", account=acct, groups=groups, all_groups=groups,
                               contacts=sb.contacts(account_id),
                               group_names={g["resourceName"]: g["formattedName"] for g in groups},
                               error=request.args.get("error"))

    @bp.post("/accounts/<account_id>/contacts")
    def create_contact(account_id: str):
        account_or_404(account_id)
        try:
            sb.create_contact(account_id, person_from_form(request.form, None))
        except ApiError as exc:
            return back(account_id, exc.message)
        return back(account_id)

    @bp.get("/accounts/<account_id>/contacts/<person_id>")
    def edit_contact(account_id: str, person_id: str):
        acct = account_or_404(account_id)
        try:
            contact = sb.contact(account_id, f"people/{person_id}")
        except ApiError as exc:
            return back(account_id, exc.message)
        return render_template("google/ui_contact.html", account=acct, contact=contact,
                               all_groups=sb.groups(account_id, include_system=True),
                               error=request.args.get("error"))

    @bp.post("/accounts/<account_id>/contacts/<person_id>")
    def update_contact(account_id: str, person_id: str):
        account_or_404(account_id)
        name = f"people/{person_id}"
        try:
            current = sb.contact(account_id, name)
            sb.update_contact(account_id, name, person_from_form(request.form, current), EDITED_FIELDS)
        except ApiError as exc:
            return redirect(url_for("google_ui.edit_contact", account_id=account_id, person_id=person_id,
                                    error=exc.message))
        return back(account_id)

    @bp.post("/accounts/<account_id>/contacts/<person_id>/delete")
    def delete_contact(account_id: str, person_id: str):
        account_or_404(account_id)
        try:
            sb.delete_contact(account_id, f"people/{person_id}")
        except ApiError as exc:
            return back(account_id, exc.message)
        return back(account_id)

    @bp.post("/accounts/<account_id>/labels")
    def create_label(account_id: str):
        account_or_404(account_id)
        try:
            sb.create_group(account_id, request.form.get("name", ""))
        except ApiError as exc:
            return back(account_id, exc.message)
        return back(account_id)

    @bp.post("/accounts/<account_id>/labels/<group_id>/delete")
    def delete_label(account_id: str, group_id: str):
        account_or_404(account_id)
        try:
            sb.delete_group(account_id, f"contactGroups/{group_id}")
        except ApiError as exc:
            return back(account_id, exc.message)
        return back(account_id)

    return bp
