"""A connector's step (`<connector>.<what>`): render the step's templates for the record, have the
target make the object once (`TaskTarget.ensure(spec, effect_key, first_try=...)`: idempotent for
the step's effect key, so a retry after a lost answer finds what an earlier try made), link it to
the record, and copy the record's files when the step carries them.

Progress is kept as it happens: a write-ahead mark before the first `ensure`, saved with the try's
progress (a later try that finds it, or follows a try that died, passes `first_try=False`, so the
target looks before creating), the object's id before
its files are copied, each file when it is copied (and, before an upload, which file is on its
way: `attach(..., maybe_sent=True)` then looks before sending again)."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from ...connectors.contract.targets import TargetContext, TaskSpec
from ...connectors.retry import BudgetExhausted
from ...errors import Fatal
from ...mappings import Rendered, file_name, title_of
from ...store import utcnow
from .. import catalogs, connections


def make_target(services: Any, kind: Any, connection: Any, file_chunks: Any = None) -> Any:
    """The connector's TaskTarget for one connection (outside a run too: closing, the status check)."""
    context = TargetContext(client=connections.client(services, connection), api_base=connection.api_base,
                            catalog=catalogs.Loader(services, connection),
                            settings=connections.settings_for(services, kind.connector), file_chunks=file_chunks)
    return kind.step.target(context)


def target_for(ex: Any, kind: Any, connection: Any) -> Any:
    """The connector's TaskTarget for one connection of a run (its files come from the run's record)."""
    return make_target(ex.services, kind, connection, lambda f: ex.source().file_chunks(f))


def record_made(ex: Any, step: Any, state: Any, kind: Any, connection: Any, made: Any, *, now: bool,
                deadline: str | None = None) -> None:
    """The object exists: its id on the step's progress, its link to the record, a line in the log."""
    state.external_id = made.external_id
    verb = "created" if made.created else "found (made by an earlier attempt)"
    who = connections.title(kind.connector)
    ex.made.append(f"{who} {kind.makes} {made.external_id}")
    ex.save(state, now=now, link={"connector": kind.connector, "connection_id": connection.id, "made": kind.makes,
                                  "external_id": str(made.external_id)[:200], "name": (made.name or "")[:1024],
                                  "url": (made.url or "")[:500], "deadline": deadline},
            trace_step=step.kind[:40], message=f"{who} {kind.makes} {made.external_id} {verb}: {made.name}"[:4000])


def run(ex: Any, step: Any, state: Any, kind: Any) -> None:
    connection = ex.connection(step.connection_id, kind.connector)
    record = ex.record()
    files = list(record.files) if step.carry.attachments and kind.attachments else []
    target = target_for(ex, kind, connection)
    if state.external_id:                     # an earlier attempt made it and recorded that
        ex.made.append(f"{connections.title(kind.connector)} {kind.makes} {state.external_id}")
    else:
        if kind.templates:
            rendered = ex.renderer.render(step.templates.get("name", ""), step.templates.get("description", ""),
                                          record, step.carry, step.mappings, event=ex.event(),
                                          rule_name=ex.plan.rule_name)
        else:                                 # a record update: its settings say it all
            rendered = Rendered(title_of(record), "")
        ex.warnings.extend(rendered.warnings)
        due = None
        if step.due_in_days is not None and kind.makes == "task":
            due = (utcnow() + timedelta(days=step.due_in_days)).date().isoformat()
        spec = TaskSpec(name=rendered.name, notes_html=rendered.html_notes, due=due, settings=dict(step.settings),
                        record=record)
        first_try = not state.detail.get("sent") and not ex.may_have_sent()
        if first_try:
            # the write-ahead mark: a later try knows a create may be out. It is written with this
            # try's progress: on the way out if the call fails, with the outcome if it succeeds;
            # a try that dies writes nothing, and the next one knows that (`may_have_sent`)
            state.detail["sent"] = True
            ex.save(state)
        made = target.ensure(spec, ex.external_key(state), first_try=first_try)
        if not made.name:
            made.name = rendered.name
        # without files to copy, the id goes with the step's outcome (the target finds the object again
        # by its effect key after a crash); with files, now, so the log shows it before its files
        record_made(ex, step, state, kind, connection, made, now=bool(files), deadline=due)
    if files:
        copy_files(ex, step, state, kind, target, files)
    for entry in (state.detail.get("attachments") or {}).values():
        if entry.get("status") != "copied":
            ex.warnings.append(f"{entry['name']}: {entry['status'].replace('_', ' ')}")


def copy_files(ex: Any, step: Any, state: Any, kind: Any, target: Any, files: list[dict]) -> None:
    """Stream each file from the CRM to the target once. Files the target refuses (too large ...)
    are reported on the run and skipped; a retry skips files already copied, and asks the target
    to look first for a file whose upload may have landed with its answer lost."""
    detail = state.detail
    report: dict[str, dict] = dict(detail.get("attachments") or {})
    for f in files:
        file_id = str(f.get("id"))
        if file_id in report:
            continue
        name = file_name(f)
        entry: dict[str, Any] = {"name": name, "size": f.get("size", f.get("file_size"))}
        maybe_sent = detail.get("uploading") == file_id
        detail["uploading"] = file_id
        if not maybe_sent:
            ex.save(state, now=True)
        entry.update(_upload(ex, target, state, f, maybe_sent))
        report[file_id] = entry
        detail["attachments"] = report
        detail.pop("uploading", None)
        ex.save(state, now=True, trace_step=f"{kind.connector}.attachment"[:40],
                status="ok" if entry["status"] == "copied" else "error",
                message=f"{name}: {entry['status'].replace('_', ' ')}"
                        + (f" ({entry['message']})" if entry.get("message") else ""))


def _upload(ex: Any, target: Any, state: Any, f: dict, maybe_sent: bool) -> dict[str, Any]:
    try:
        chunks = ex.source().file_chunks(f)
        if maybe_sent:
            target.attach(state.external_id, f, chunks, maybe_sent=True)
        else:
            target.attach(state.external_id, f, chunks)
    except BudgetExhausted:
        raise          # not this file's problem: the whole run gives up
    except Fatal as exc:           # AttachmentRefused says why (too_large | refused); others say it in words
        reason = getattr(exc, "reason", None) or ("too_large" if "too large" in str(exc).lower() else "failed")
        return {"status": reason, "message": str(exc)}
    return {"status": "copied"}
