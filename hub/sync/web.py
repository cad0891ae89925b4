"""Contact sync pages (`/i/<id>/sync...`), the JSON API (`/api/v1/installations/<id>/sync...`) and
the `flask --app hub sync ...` commands (this blueprint's CLI group).

Pages and API call the same `service` functions, so validation and effects are identical."""
from __future__ import annotations

import sys
import time
from typing import Any

import click
from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from hub.errors import Fatal, NeedsReauth, Retriable
from hub.inputs import optional_int
from hub.web.bodies import json_body
from hub.store import Connection
from hub.store.models import ContactSync, SyncRun
from hub.web.access import admin, current_user, member, requires, restricted_to

from . import forms, service
from .engine import SyncBusy, SyncEngine
from .trigger import run_waiting
from .mapping import DEFAULT_FIELD_MAP
from .policy import DELETE_POLICIES

bp = Blueprint("sync", __name__, template_folder="templates", cli_group="sync")
API = "/api/v1/installations/<int:installation_id>/sync"


@bp.context_processor
def _delete_policies() -> dict[str, Any]:
    return {"delete_policies": DELETE_POLICIES}


def services():
    return current_app.extensions["hub"]


def _who() -> str:
    user = current_user()
    return f"{user.name or user.crm_user_id} ({user.crm_user_id})" if user else "cli"


def _labels(connections: list[Connection]) -> tuple[dict[int, list[dict]], str | None]:
    out, problem = {}, None
    for c in connections:
        try:
            out[c.id] = service.labels(services(), c)
        except (Fatal, Retriable, NeedsReauth) as exc:
            out[c.id], problem = [], f"The labels of {c.account_email or c.account_name} could not be read ({exc})."
    return out, problem


def _form_data() -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """The settings form as the service's input (the same keys as the JSON API), the values to show
    again as typed, and the errors of the form's own fields (hub/sync/forms.py)."""
    f = request.form
    pairs = list(zip(f.getlist("map_crm"), f.getlist("map_store")))
    kept = [(n, c.strip(), t.strip()) for n, (c, t) in enumerate(pairs, start=1) if c.strip() or t.strip()]
    data: dict[str, Any] = {
        "name": f.get("name", ""), "direction": f.get("direction", ""), "conflict_policy": f.get("conflict_policy", ""),
        "delete_policy": f.get("delete_policy") or None,
        "field_map": [{"crm": c, "store": t} for _, c, t in kept], "enabled": bool(f.get("enabled")),
    }
    numbers, shown, errors = forms.read(f, services().settings["sync.contact_cap"])
    data.update(numbers)
    if "store_connection_id" in f:
        data["store_connection_id"] = f.get("store_connection_id")
        data["group"] = f.get("group", "")
        data["new_group_name"] = f.get("new_group_name", "")
    shown.update(field_map_rows=[{"crm": c, "store": t} for c, t in pairs], row_numbers=[n for n, _, _ in kept])
    return {k: v for k, v in data.items() if v is not None}, shown, errors


# -- pages ----------------------------------------------------------------------------------------
@bp.route("/i/<int:installation_id>/sync", methods=["GET", "POST"])
@requires(GET="member", POST="admin")
def index(installation_id: int):
    with services().db.begin() as s:
        connections = service.store_connections(s, installation_id)
        texts = service.page_texts(s, installation_id, connections[0].id if connections else None)
        for c in connections:
            s.expunge(c)
        syncs = [service.summary(s, x) for x in s.scalars(select(ContactSync).where(
            ContactSync.installation_id == installation_id, ContactSync.parent_id.is_(None)).order_by(ContactSync.id))]
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"field_map": DEFAULT_FIELD_MAP, "direction": "two_way", "conflict_policy": "newest",
                              "schedule_seconds": services().settings["sync.default_schedule_seconds"],
                              "delete_share": services().settings["sync.delete_share"],
                              "contact_cap": services().settings["sync.contact_cap"], "enabled": True,
                              "person_filter": {}, "name": "", "new_group_name": "", "group": "__new__",
                              "store_connection_id": ""}
    if request.method == "POST":
        data, shown, form_errors = _form_data()
        try:
            forms.refuse_if_invalid(services(), installation_id, data, form_errors)
            sync = service.create(services(), installation_id, _who(), data)
        except service.SyncInputError as exc:
            errors = exc.fields
            values.update(data, **shown)
        else:
            flash(f"Sync “{sync.name}” created with label “{sync.group_name}”.")
            return redirect(url_for("sync.detail", installation_id=installation_id, sync_id=sync.id))
    labels, labels_error = _labels(connections) if connections else ({}, None)
    return render_template("sync/index.html", installation=g.installation, syncs=syncs, connections=connections,
                           labels=labels, labels_error=labels_error, errors=errors, values=values,
                           row_errors=forms.row_errors(errors, values.get("row_numbers", [])),
                           crm_fields=service.crm_fields(services(), installation_id), **texts), \
        (400 if errors else 200)


def _load(installation_id: int, sync_id: int) -> dict[str, Any]:
    with services().db.begin() as s:
        try:
            sync = service.get(s, installation_id, sync_id)
        except LookupError:
            abort(404, "no such sync")
        candidates = service.share_candidates(s, sync) if sync.parent_id is None else []
        parent = s.get(ContactSync, sync.parent_id) if sync.parent_id else None
        return {"sync": service.summary(s, sync), "conflicts": service.conflicts(s, sync_id, 50),
                "share_candidates": [service.candidate_json(s, c) for c in candidates],
                "parent": {"id": parent.id, "name": parent.name} if parent else None,
                "share_modes": service.SHARE_MODES,
                "left_out": service.left_out(s, sync_id, 200), "log": service.run_log(s, installation_id, sync_id, 30),
                "runs": service.runs(s, sync_id, 10), "pending": dict(sync.pending_deletes or {}),
                "run_waiting": run_waiting(s, sync_id),
                **service.page_texts(s, installation_id, sync.store_connection_id)}


@bp.route("/i/<int:installation_id>/sync/<int:sync_id>", methods=["GET", "POST"])
@requires(GET="member", POST="admin")
def detail(installation_id: int, sync_id: int):
    errors: dict[str, str] = {}
    form_values = None
    if request.method == "POST":
        data, shown, form_errors = _form_data()
        try:
            forms.refuse_if_invalid(services(), installation_id, data, form_errors, sync_id)
            service.change(services(), installation_id, sync_id, _who(), data)
        except LookupError:
            abort(404, "no such sync")
        except service.SyncInputError as exc:
            errors, form_values = exc.fields, {**data, **shown}
        else:
            flash("Sync settings saved.")
            return redirect(url_for("sync.detail", installation_id=installation_id, sync_id=sync_id))
    page = _load(installation_id, sync_id)
    values = dict(page["sync"], **(form_values or {}))
    return render_template("sync/detail.html", installation=g.installation, errors=errors, values=values,
                           row_errors=forms.row_errors(errors, values.get("row_numbers", [])),
                           crm_fields=service.crm_fields(services(), installation_id), **page), \
        (400 if errors else 200)


@bp.post("/i/<int:installation_id>/sync/<int:sync_id>/run")
@admin
def run_now(installation_id: int, sync_id: int):
    try:
        job = service.run_now(services(), installation_id, sync_id, _who())
    except LookupError:
        abort(404, "no such sync")
    flash("Sync started." if job else "A run of this sync is already waiting.")
    return redirect(url_for("sync.detail", installation_id=installation_id, sync_id=sync_id))


@bp.post("/i/<int:installation_id>/sync/<int:sync_id>/shares")
@admin
def share(installation_id: int, sync_id: int):
    """Share the label with a colleague's own account (the form of the Sharing section)."""
    try:
        created = service.create_share(services(), installation_id, sync_id, _who(),
                                       {"connection_id": request.form.get("connection_id"),
                                        "mode": request.form.get("mode")})
    except LookupError:
        abort(404, "no such sync")
    except service.SyncInputError as exc:
        page = _load(installation_id, sync_id)
        return render_template("sync/detail.html", installation=g.installation, errors={}, values=page["sync"],
                               share_errors=exc.fields, share_values=request.form, **page), 400
    flash(f"Label shared ({service.SHARE_MODES[created.share_mode]}); the colleague was told by e-mail.")
    return redirect(url_for("sync.detail", installation_id=installation_id, sync_id=sync_id) + "#sharing")


@bp.post("/i/<int:installation_id>/sync/<int:sync_id>/shares/<int:share_id>")
@member  # a user changes only their own share (service.change_share checks)
def share_change(installation_id: int, sync_id: int, share_id: int):
    """Change a share's mode, or stop sharing (`action=remove`)."""
    try:
        if request.form.get("action") == "remove":
            service.remove_share(services(), installation_id, sync_id, share_id, _who(), as_user=restricted_to())
            flash("Sharing stopped; the colleague keeps the contacts they have.")
        else:
            changed = service.change_share(services(), installation_id, sync_id, share_id, _who(),
                                           {"mode": request.form.get("mode")}, as_user=restricted_to())
            flash(f"The share is now {service.SHARE_MODES[changed.share_mode]}.")
    except LookupError as exc:
        abort(404, str(exc))
    except service.ShareRefused as exc:
        abort(403, str(exc))
    except service.SyncInputError as exc:
        abort(400, "; ".join(f"{k}: {v}" for k, v in exc.fields.items()))
    return redirect(url_for("sync.detail", installation_id=installation_id, sync_id=sync_id) + "#sharing")


@bp.post("/i/<int:installation_id>/sync/<int:sync_id>/deletions")
@admin
def deletions(installation_id: int, sync_id: int):
    decision = request.form.get("decision")
    if decision not in ("confirm", "discard"):
        abort(400, "decision: confirm or discard")
    try:
        out = service.decide_deletes(services(), installation_id, sync_id, _who(), decision == "confirm")
    except LookupError as exc:
        abort(404 if "sync_id" in str(exc) else 400, str(exc))
    flash(f"{out['count']} deletion(s) " + ("confirmed: the next run applies them." if out["confirmed"]
                                             else "discarded: those contacts stay and are no longer linked."))
    return redirect(url_for("sync.detail", installation_id=installation_id, sync_id=sync_id))


# -- JSON API --------------------------------------------------------------------------------------
def _invalid(fields: dict[str, str]):
    return jsonify({"error": "invalid", "message": "; ".join(f"{k}: {v}" for k, v in fields.items()),
                    "fields": fields}), 400


def _not_found(message: str = "sync_id: no such sync"):
    return jsonify({"error": "not_found", "message": message}), 404


def _refused(exc: Exception):
    field, _, message = str(exc).partition(": ")
    return jsonify({"error": "forbidden", "message": str(exc), "fields": {field: message}}), 403


def _body() -> dict[str, Any] | None:
    body = json_body()
    return body if isinstance(body, dict) else None


@bp.get(API)
def api_list(installation_id: int):
    """The installation's syncs; each lists its shares (a share is also a sync of its own: GET by id)."""
    with services().db.begin() as s:
        rows = s.scalars(select(ContactSync).where(ContactSync.installation_id == installation_id,
                                                   ContactSync.parent_id.is_(None)).order_by(ContactSync.id))
        return jsonify({"syncs": [service.summary(s, r) for r in rows]})


@bp.post(API)
@admin
def api_create(installation_id: int):
    body = _body()
    if body is None:
        return _invalid({"body": "expected a JSON object"})
    try:
        sync = service.create(services(), installation_id, _who(), body)
    except service.SyncInputError as exc:
        return _invalid(exc.fields)
    with services().db.begin() as s:
        return jsonify(service.summary(s, s.get(ContactSync, sync.id))), 201


@bp.get(API + "/labels")
def api_labels(installation_id: int):
    with services().db.begin() as s:
        connections = service.store_connections(s, installation_id)
        for c in connections:
            s.expunge(c)
    wanted = optional_int(request.args.get("connection_id"), "connection_id", low=1)
    chosen = [c for c in connections if wanted in (None, c.id)]
    if wanted is not None and not chosen:
        return _invalid({"connection_id": "not a connected address book account of this installation"})
    labels, problem = _labels(chosen)
    return jsonify({"labels": {str(k): v for k, v in labels.items()}, "error": problem})


@bp.get(API + "/<int:sync_id>")
def api_get(installation_id: int, sync_id: int):
    with services().db.begin() as s:
        try:
            return jsonify(service.summary(s, service.get(s, installation_id, sync_id)))
        except LookupError:
            return _not_found()


@bp.patch(API + "/<int:sync_id>")
@admin
def api_change(installation_id: int, sync_id: int):
    body = _body()
    if body is None:
        return _invalid({"body": "expected a JSON object"})
    try:
        service.change(services(), installation_id, sync_id, _who(), body)
    except LookupError:
        return _not_found()
    except service.SyncInputError as exc:
        return _invalid(exc.fields)
    return api_get(installation_id, sync_id)


@bp.post(API + "/<int:sync_id>/run")
@admin
def api_run(installation_id: int, sync_id: int):
    try:
        job = service.run_now(services(), installation_id, sync_id, _who())
    except LookupError:
        return _not_found()
    return jsonify({"queued": job is not None, "job_id": job}), 202


@bp.post(API + "/<int:sync_id>/deletions")
@admin
def api_deletions(installation_id: int, sync_id: int):
    body = _body() or {}
    if not isinstance(body.get("confirm"), bool):
        return _invalid({"confirm": "true to apply the held deletions, false to discard them"})
    try:
        return jsonify(service.decide_deletes(services(), installation_id, sync_id, _who(), body["confirm"]))
    except LookupError as exc:
        return _not_found(str(exc)) if "sync_id" in str(exc) else _invalid({"pending_deletes": "nothing waits for confirmation"})


@bp.get(API + "/<int:sync_id>/shares")
def api_shares(installation_id: int, sync_id: int):
    with services().db.begin() as s:
        try:
            sync = service.get(s, installation_id, sync_id)
        except LookupError:
            return _not_found()
        return jsonify({"shares": service.shares(s, sync),
                        "candidates": [service.candidate_json(s, c) for c in service.share_candidates(s, sync)]})


@bp.post(API + "/<int:sync_id>/shares")
@admin
def api_share(installation_id: int, sync_id: int):
    body = _body()
    if body is None:
        return _invalid({"body": "expected a JSON object"})
    try:
        created = service.create_share(services(), installation_id, sync_id, _who(), body)
    except LookupError:
        return _not_found()
    except service.SyncInputError as exc:
        return _invalid(exc.fields)
    with services().db.begin() as s:
        [row] = [x for x in service.shares(s, s.get(ContactSync, sync_id)) if x["id"] == created.id]
        return jsonify(row), 201


@bp.patch(API + "/<int:sync_id>/shares/<int:share_id>")
@member  # a user changes only their own share (service.change_share checks)
def api_share_change(installation_id: int, sync_id: int, share_id: int):
    body = _body()
    if body is None:
        return _invalid({"body": "expected a JSON object"})
    try:
        service.change_share(services(), installation_id, sync_id, share_id, _who(), body, as_user=restricted_to())
    except LookupError as exc:
        return _not_found(str(exc))
    except service.ShareRefused as exc:
        return _refused(exc)
    except service.SyncInputError as exc:
        return _invalid(exc.fields)
    with services().db.begin() as s:
        [row] = [x for x in service.shares(s, s.get(ContactSync, sync_id)) if x["id"] == share_id]
        return jsonify(row)


@bp.delete(API + "/<int:sync_id>/shares/<int:share_id>")
@member  # a user stops only their own share (service.remove_share checks)
def api_share_remove(installation_id: int, sync_id: int, share_id: int):
    try:
        service.remove_share(services(), installation_id, sync_id, share_id, _who(), as_user=restricted_to())
    except LookupError as exc:
        return _not_found(str(exc))
    except service.ShareRefused as exc:
        return _refused(exc)
    return "", 204


def _listing(installation_id: int, sync_id: int, fn, key: str):
    with services().db.begin() as s:
        try:
            service.get(s, installation_id, sync_id)
        except LookupError:
            return _not_found()
        return jsonify({key: fn(s)})


@bp.get(API + "/<int:sync_id>/conflicts")
def api_conflicts(installation_id: int, sync_id: int):
    return _listing(installation_id, sync_id, lambda s: service.conflicts(s, sync_id), "conflicts")


@bp.get(API + "/<int:sync_id>/left-out")
def api_left_out(installation_id: int, sync_id: int):
    return _listing(installation_id, sync_id, lambda s: service.left_out(s, sync_id), "left_out")


@bp.get(API + "/<int:sync_id>/runs")
def api_runs(installation_id: int, sync_id: int):
    return _listing(installation_id, sync_id, lambda s: service.runs(s, sync_id), "runs")


@bp.get(API + "/<int:sync_id>/log")
def api_log(installation_id: int, sync_id: int):
    return _listing(installation_id, sync_id, lambda s: service.run_log(s, installation_id, sync_id), "log")


# -- CLI: flask --app hub sync ... ----------------------------------------------------------------------
class ProgressBar:
    """One line per phase: `create_store  [#####.....] 200/253`. On a terminal the line is redrawn
    in place (`\r`); anywhere else (a pipe, a log file, CI) it is written as plain lines, without
    control characters: a phase's state at most every `plain_every` seconds, and its end."""

    def __init__(self, echo=click.echo, width: int = 30, tty: bool | None = None, plain_every: float = 5.0):
        self.echo, self.width = echo, width
        self.tty = sys.stdout.isatty() if tty is None else tty
        self.plain_every = plain_every
        self.phase: str | None = None
        self.last = 0.0
        self.pending: str | None = None   # plain mode: the newest line not written yet
        self.written: str | None = None

    def _line(self, phase: str, done: int, total: int | None) -> str:
        if total:
            filled = int(self.width * min(done, total) / total)
            return f"{phase:<14} [{'#' * filled + '.' * (self.width - filled)}] {done}/{total}"
        return f"{phase:<14} {done}"

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        final = total is not None and done >= total
        line = self._line(phase, done, total)
        if not self.tty:
            if self.phase and phase != self.phase and self.pending:
                self._plain(self.pending)              # the previous phase's last state
            if phase != self.phase or final or now - self.last >= self.plain_every:
                self._plain(line)
                self.last = now
            else:
                self.pending = line
            self.phase = phase
            return
        if phase == self.phase and not final and now - self.last < 0.2:
            return
        if self.phase and phase != self.phase:
            self.echo("")
        self.phase, self.last = phase, now
        self.echo("\r" + line, nl=False)

    def _plain(self, line: str) -> None:
        if line != self.written:     # a phase reports its end more than once
            self.echo(line)
            self.written = line
        self.pending = None

    def close(self) -> None:
        if not self.tty:
            if self.pending:
                self._plain(self.pending)
        elif self.phase:
            self.echo("")


@bp.cli.command("run")
@click.argument("sync_id", type=int)
def cli_run(sync_id: int) -> None:
    """Run sync SYNC_ID now, in this process, with a progress bar (waits if another run holds it)."""
    hub = current_app.extensions["hub"]
    with hub.db.begin() as s:
        if s.get(ContactSync, sync_id) is None:
            raise click.ClickException(f"no sync {sync_id}")
    bar = ProgressBar()
    try:
        result = SyncEngine(hub, sync_id, trigger="cli", on_progress=bar).run()
    except SyncBusy as exc:
        bar.close()
        raise click.ClickException(f"{exc}; try again in {exc.delay:.0f} s")
    except (Fatal, NeedsReauth, Retriable) as exc:
        bar.close()
        raise click.ClickException(f"the run stopped: {exc}")
    bar.close()
    click.echo(f"run {result['run_id']} {result['status']}: {result['message']}")


def share_words(sync: ContactSync, shares: int) -> str:
    """Whether a sync is the original or a colleague's shared copy of one, in words."""
    if sync.parent_id is not None:
        mode = "can edit" if sync.share_mode == "edit" else "read only"
        return f"share of sync {sync.parent_id} ({mode})"
    return f"original, shared {shares}x" if shares else "original"


@bp.cli.command("list")
def cli_list() -> None:
    """Every sync: id, installation, label, direction, status, original or a colleague's shared
    copy (of which sync, can edit or read only), and last run."""
    hub = current_app.extensions["hub"]
    with hub.db.begin() as s:
        syncs = list(s.scalars(select(ContactSync).order_by(ContactSync.id)))
        if not syncs:
            click.echo("No contact syncs yet: an admin sets one up on an installation's Contact sync page.")
            return
        shares: dict[int, int] = {}
        for sync in syncs:
            if sync.parent_id is not None:
                shares[sync.parent_id] = shares.get(sync.parent_id, 0) + 1
        for sync in syncs:
            run = s.get(SyncRun, sync.last_run_id) if sync.last_run_id else None
            click.echo(f"{sync.id}\tinstallation {sync.installation_id}\t{sync.group_name}\t{sync.direction}\t"
                       f"{sync.status}\t{share_words(sync, shares.get(sync.id, 0))}\t"
                       f"{(run.status + ' ' + run.message) if run else 'never ran'}")
