"""Tasks in the Example CRM as a rule's step: made once per effect key through the CRM's own
`external_id` (a second create with the same one is refused with 409 and names the holder)."""
from __future__ import annotations

import hashlib
from typing import Any, Iterator

from datetime import date

from hub.connectors.contract.targets import AttachmentRefused, Made, StepKind, TargetContext, TaskSpec, TaskState
from hub.errors import Fatal


def external_id(effect_key: str) -> str:
    """The CRM takes at most 100 characters; an effect key may be longer, so it is digested."""
    return "hub-" + hashlib.sha256(effect_key.encode()).hexdigest()[:48]


def validate_task(settings: dict, catalog: Any, complete: bool) -> dict[str, str]:
    """Nothing is required (an unassigned task is fine); what is given must exist."""
    errors: dict[str, str] = {}
    assignee = settings.get("assignee_id")
    if assignee not in (None, ""):
        if not str(assignee).isdigit():
            errors["assignee_id"] = "a user of the connected Example CRM account"
        elif catalog is not None and str(assignee) not in {u["id"] for u in catalog("users")}:
            errors["assignee_id"] = "this user is not in the connected Example CRM account"
    for key in ("link_deal", "review"):
        if not isinstance(settings.get(key, key == "link_deal"), bool):
            errors[key] = "true or false"
    return errors


class ExampleTasks:
    max_attachment_bytes = 0   # the CRM's tasks take no files

    def __init__(self, ctx: TargetContext):
        self.ctx = ctx
        self.client = ctx.client

    @staticmethod
    def _made(task: dict, created: bool) -> Made:
        return Made(external_id=str(task["id"]), url=task.get("url") or "", name=task.get("title") or "",
                    created=created)

    def ensure(self, spec: TaskSpec, effect_key: str, *, first_try: bool) -> Made:
        external = external_id(effect_key)
        if not first_try:                          # an earlier try may have made it and lost the answer
            found = self.client.task_by_external(external)
            if found is not None:
                return self._made(found, False)
        settings = {**self.ctx.settings, **spec.settings}
        assignee = spec.assignee or settings.get("assignee_id")
        body: dict[str, Any] = {"title": spec.name, "notes": spec.notes_html, "external_id": external}
        if spec.due:
            body["due"] = spec.due
        if assignee not in (None, ""):
            body["assignee_id"] = int(assignee)
        if settings.get("review"):
            body["review"] = True
        if settings.get("link_deal", True) and spec.record is not None and spec.record.kind == "deal":
            body["deal_id"] = int(spec.record.id)
        task, holder = self.client.create_task(body)
        if task is not None:
            return self._made(task, True)
        if holder is None:
            raise Fatal("example: the external id is taken but the CRM did not say by which task", 409)
        return self._made(self.client.task(holder), False)   # a racing try made it first

    def complete(self, external_id: str) -> str:
        return self.client.complete_task(external_id)["status"]

    def status(self, external_id: str) -> str:
        return self.client.task(external_id)["status"]

    def state(self, external_id: str) -> TaskState:
        """open | awaiting_review | completed; a task the CRM no longer has (404) is gone."""
        try:
            task = self.client.task(external_id)
        except Fatal as exc:
            if exc.status == 404:
                return TaskState("gone", detail="deleted in the Example CRM")
            raise
        due = task.get("due")
        try:
            deadline = date.fromisoformat(due[:10]) if due else None
        except ValueError:
            deadline = None
        status = task.get("status") if task.get("status") in ("completed", "awaiting_review") else "open"
        return TaskState(status, deadline=deadline,
                         responsible=str(task.get("assignee_id") or ""))

    def attach(self, external_id: str, file: dict[str, Any], chunks: Iterator[bytes], *,
               maybe_sent: bool = False) -> str:
        raise AttachmentRefused(f"{file.get('name') or 'file'}: Example CRM tasks take no files", "refused")


TARGETS = {
    "task": StepKind(what="task", label="Create an Example CRM task", makes="task",
                     settings=("assignee_id", "link_deal", "review"), validate=validate_task, target=ExampleTasks,
                     attachments=False, completes=True, catalogs=("users",)),
}
