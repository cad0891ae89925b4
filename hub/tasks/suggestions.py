"""Next-task suggestions: "when a task of type X is completed, suggest the task of template T".

Triggered by a CRM's `task.completed` event (its `extra`: `task_type` (a name), `completed_by`
{`id`, `email`}, and, when the connector knows it, `record` {`type`, `id`}: the record the task
belongs to) and by the hub's own tasks becoming completed (the team calendar's "complete"). The
record of the next task is the event's `record`, else the record the hub made the completed task
for.

One suggestion per completion (its effect key). It reaches the person who completed the task: an
e-mail with a one-click accept link (signed with the hub's secret over the suggestion and its
nonce; single-use: accepting flips `open` to `accepted` in the transaction that queues the task's
job, so a second click finds it accepted and does nothing; it expires after `EXPIRES`), and the
list in the hub (accept / dismiss). With the rule's mode `create`, the task is made at once.

An accept link is a GET so that one click does it; a mail scanner that follows links would accept
too (the task is still made once)."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from ..events import subscribe, trace
from ..mail import queue_mail
from ..store import HubEvent, utcnow
from ..store.models import HubTask, NextTaskRule, TaskSuggestion, TaskTemplate, TaskType
from ..store.sql import insert_ignore
from .apply import enqueue
from .mirror import COMPLETED_HOOKS

EXPIRES = timedelta(days=7)


def sign(services: Any, suggestion_id: int, nonce: str) -> str:
    """The link's signature: the hub's session key (the one every web process shares) over the
    suggestion and its nonce, so a link cannot be made for another suggestion."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key + b":task-suggestion", f"{suggestion_id}:{nonce}".encode(), hashlib.sha256).hexdigest()


def accept_url(services: Any, suggestion_id: int, nonce: str) -> str:
    return f"{services.base_url}/tasks/suggestions/{suggestion_id}/accept?token={sign(services, suggestion_id, nonce)}"


def suggest(services: Any, session, installation_id: int, *, type_name: str, effect_key: str, object_type: str,
            object_id: str, completed: str, by_email: str, by_user_id: str, hub_event_id: int | None = None) -> int | None:
    """Inside the transaction that saw the completion: the suggestion (or the task, mode create)."""
    if not type_name:
        return None
    type_id = session.scalar(select(TaskType.id).where(TaskType.installation_id == installation_id,
                                                       TaskType.name == type_name))
    rule = session.scalar(select(NextTaskRule).where(NextTaskRule.installation_id == installation_id,
                                                     NextTaskRule.from_type_id == type_id)) if type_id else None
    if rule is None:
        return None
    template = session.get(TaskTemplate, rule.template_id)
    if template is None:
        return None
    if not object_id:
        trace(session, installation_id, "tasks.suggestion",
              f"{completed} was completed, but the record it belongs to is unknown: no next task suggested",
              status="info", hub_event_id=hub_event_id)
        return None
    nonce = secrets.token_urlsafe(24)
    now = utcnow()
    auto = rule.mode == "create"
    suggestion_id = insert_ignore(session, TaskSuggestion, {
        "installation_id": installation_id, "effect_key": effect_key[:200], "template_id": template.id,
        "object_type": object_type, "object_id": str(object_id)[:100], "completed_task": completed[:300],
        "to_email": (by_email or "")[:300], "to_user_id": (by_user_id or "")[:100],
        "status": "accepted" if auto else "open", "nonce": nonce, "expires_at": now + EXPIRES, "created_at": now,
        "decided_at": now if auto else None}, ["installation_id", "effect_key"])
    if suggestion_id is None:
        return None              # this completion was seen before
    title = template.title if "{" not in template.title else "the next task"
    if auto:
        enqueue(services, session, installation_id, key=f"s{suggestion_id}", template_ids=[template.id],
                object_type=object_type, object_id=str(object_id), origin="suggestion", suggestion_id=suggestion_id)
        trace(session, installation_id, "tasks.next_task",
              f"{completed} was completed: the next task ({title}) is made at once for {object_type} {object_id}",
              hub_event_id=hub_event_id)
        return suggestion_id
    if by_email:
        queue_mail(services, session, by_email, f"Relay Hub: what next after {completed[:80]}?",
                   f"You completed {completed}.\n\nThe next step is suggested: {title} "
                   f"(for {object_type} {object_id}).\n\nCreate it with one click:\n"
                   f"{accept_url(services, suggestion_id, nonce)}\n\n"
                   f"Or see your suggestions in Relay Hub: {services.base_url}/i/{installation_id}/tasks/suggestions\n"
                   f"The link works once and until {(now + EXPIRES):%Y-%m-%d} (UTC).",
                   installation_id=installation_id, dedupe_key=f"task-suggestion:{suggestion_id}")
    trace(session, installation_id, "tasks.suggestion",
          f"{completed} was completed: {title} suggested to {by_email or by_user_id or 'the team'}",
          hub_event_id=hub_event_id)
    return suggestion_id


@subscribe
def on_task_completed(services: Any, session, event: HubEvent) -> None:
    """A CRM's task completed: the hub's own task of that id is completed too, and the next task
    is suggested."""
    if event.kind != "task.completed":
        return
    data = event.data or {}
    extra = data.get("extra") or {}
    current = data.get("current") or {}
    task = session.scalar(select(HubTask).where(HubTask.installation_id == event.installation_id,
                                                HubTask.external_id == event.object_id,
                                                HubTask.status != "completed").limit(1))
    if task is not None:
        task.status, task.completed_at = "completed", utcnow()
    by = extra.get("completed_by") or {}
    record = extra.get("record") or {}
    object_type = str(record.get("type") or (task.object_type if task else "") or "")
    object_id = str(record.get("id") or (task.object_id if task else "") or "")
    type_name = str(extra.get("task_type") or (task.task_type if task else "") or "")
    name = current.get("subject") or current.get("title") or current.get("name") or (task.title if task else "")
    effect = f"hubtask:{task.id}:completed" if task is not None else f"event:{event.id}"
    suggest(services, session, event.installation_id, type_name=type_name, effect_key=effect,
            object_type=object_type, object_id=object_id,
            completed=f"the task “{name}”" if name else f"task {event.object_id}",
            by_email=str(by.get("email") or ""), by_user_id=str(by.get("id") or ""), hub_event_id=event.id)


def hub_task_completed(services: Any, session, task: HubTask, *, by_email: str, by_user_id: str) -> int | None:
    """The hub completed one of its tasks (the calendar): suggest what follows, once."""
    return suggest(services, session, task.installation_id, type_name=task.task_type,
                   effect_key=f"hubtask:{task.id}:completed", object_type=task.object_type,
                   object_id=task.object_id, completed=f"the task “{task.title}”", by_email=by_email,
                   by_user_id=by_user_id)


def _link_completed(session, link: Any) -> None:
    """A task a rule linked became completed (the mirror: the hub's step, the check, a CRM event):
    when the hub made it from a template, it is completed in the calendar too and what follows is
    suggested to its responsible (a CRM event naming who completed it was handled before)."""
    task = session.scalar(select(HubTask).where(HubTask.installation_id == link.installation_id,
                                                HubTask.connector == link.connector,
                                                HubTask.external_id == link.external_id,
                                                HubTask.status != "completed").limit(1))
    if task is None:
        return
    task.status, task.completed_at = "completed", utcnow()
    hub_task_completed(current_app.extensions["hub"], session, task, by_email=task.owner_email,
                       by_user_id=task.owner_id)


COMPLETED_HOOKS.append(_link_completed)


# -- deciding ---------------------------------------------------------------------------------------
def accept(services: Any, session, suggestion_id: int, *, token: str | None = None,
           installation_id: int | None = None, user: tuple[str, str] | None = None, check_only: bool = False) -> str:
    """accepted | already | expired | invalid. With `token`: the e-mail's link; with
    `installation_id` and `user` (email, crm user id): the hub's list (the suggestion must be theirs).
    `check_only`: change nothing, answer "open" for a suggestion that may be accepted."""
    row = session.get(TaskSuggestion, suggestion_id)
    if row is None:
        return "invalid"
    if token is not None:
        if not hmac.compare_digest(str(token), sign(services, row.id, row.nonce)):
            return "invalid"
    elif row.installation_id != installation_id or not _theirs(row, user):
        return "invalid"
    now = utcnow()
    if row.status != "open":
        return "already"
    if row.expires_at <= now:
        return "expired"
    if check_only:
        return "open"
    changed = session.execute(update(TaskSuggestion).where(
        TaskSuggestion.id == row.id, TaskSuggestion.status == "open").values(status="accepted", decided_at=now))
    if changed.rowcount != 1:
        return "already"
    enqueue(services, session, row.installation_id, key=f"s{row.id}", template_ids=[row.template_id],
            object_type=row.object_type, object_id=row.object_id, origin="suggestion", suggestion_id=row.id)
    trace(session, row.installation_id, "tasks.suggestion_accepted",
          f"the next task after {row.completed_task} was accepted by {row.to_email or row.to_user_id}")
    return "accepted"


def dismiss(session, installation_id: int, suggestion_id: int, user: tuple[str, str]) -> bool:
    row = session.get(TaskSuggestion, suggestion_id)
    if row is None or row.installation_id != installation_id or not _theirs(row, user) or row.status != "open":
        return False
    row.status, row.decided_at = "dismissed", utcnow()
    return True


def _theirs(row: TaskSuggestion, user: tuple[str, str] | None) -> bool:
    if user is None:
        return False
    email, crm_user_id = user
    return bool((email and row.to_email.lower() == email.lower()) or (crm_user_id and row.to_user_id == crm_user_id))


def open_for(session, installation_id: int, user: tuple[str, str]) -> list[dict[str, Any]]:
    rows = session.scalars(select(TaskSuggestion).where(TaskSuggestion.installation_id == installation_id,
                                                        TaskSuggestion.status == "open")
                           .order_by(TaskSuggestion.id.desc()).limit(200)).all()
    now = utcnow()
    out = []
    for row in rows:
        if not _theirs(row, user):
            continue
        template = session.get(TaskTemplate, row.template_id)
        out.append({"id": row.id, "completed_task": row.completed_task, "object_type": row.object_type,
                    "object_id": row.object_id, "template": template.title if template else "(deleted template)",
                    "expires_at": row.expires_at.isoformat() + "Z", "expired": row.expires_at <= now})
    return out
