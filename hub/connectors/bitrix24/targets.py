"""Bitrix24 as a rule's target: the step kind `task` (`bitrix24.task`), a task linked to the rule's
deal or lead through `UF_CRM_TASK` (["D_<id>"], ["L_<id>"]) so it shows in the record's timeline.

Settings: `responsible_id` (default: the record's responsible, else the connected user),
`deadline_hours` (the deadline as a delay after the trigger: the record's change the event carried,
so a retried run keeps the same deadline; the step's own due date wins when it has one), `priority` (0 low, 1 normal, 2 high), `control` (control
on completion, TASK_CONTROL: completing it sends it to its creator for review), `created_by` (the
task's creator, who reviews it under control; default: the connected user), `auditors` (user ids
who watch it, for the sharing modes that ask for them).

Control works as Bitrix24 has it: a task under control that anybody but its creator completes
awaits the creator's review (`awaiting_review`); its creator's own completion completes it. The
hub acts as the connected user, so "complete the tasks linked to a closed deal" sends a task to
review when somebody else created it (`created_by`), and completes one the connected user created.

Exactly-once: the task's `XML_ID` (an external id Bitrix24 keeps and returns, though
`tasks.task.list` cannot filter by it) carries a digest of the effect key. A first try creates
straight away (the core's write-ahead mark promises no earlier try sent a create); a later try
lists the tasks of the linked record (`UF_CRM_TASK`, which the list filters by), or of the
responsible person when nothing is linked, newest first, and takes the one whose XML_ID is the
key. What is left: an unlinked task whose responsible was changed between a lost answer and the
retry would be made again. Statuses are the neutral words of statuses.py; completing a task under control gives
`awaiting_review`, not `completed`."""
from __future__ import annotations

import hashlib
import html
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from ...errors import Fatal
from ..contract.targets import AttachmentRefused, Input, Made, StepKind, TargetContext, TaskSpec, TaskState
from . import statuses
from .catalogs import PRIORITIES
from .client import Bitrix24Client
from .records import portal

MAX_DEADLINE_HOURS = 24 * 3650
LOOKUP_LIMIT = 1000      # tasks read at most when looking for an effect key (a record has few)


def xml_id(effect_key: str) -> str:
    return f"relayhub-{hashlib.sha256(effect_key.encode()).hexdigest()[:40]}"


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("y", "yes", "true", "1", "on")


def _ids(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return [str(v).strip() for v in items if str(v).strip()]


def validate_task(settings: dict, catalog: Callable[[str], Any] | None, complete: bool) -> dict[str, str]:
    errors: dict[str, str] = {}
    hours = settings.get("deadline_hours")
    if hours not in (None, ""):
        try:
            number = float(hours)
        except (TypeError, ValueError):
            number = -1
        if not 0 <= number <= MAX_DEADLINE_HOURS:
            errors["deadline_hours"] = f"a number of hours from 0 to {MAX_DEADLINE_HOURS}"
    priority = settings.get("priority")
    if priority not in (None, "") and str(priority) not in {p["id"] for p in PRIORITIES}:
        errors["priority"] = "0 (low), 1 (normal) or 2 (high)"
    people = {"responsible_id": _ids(settings.get("responsible_id")), "created_by": _ids(settings.get("created_by")),
              "auditors": _ids(settings.get("auditors"))}
    for key in ("responsible_id", "created_by"):
        if len(people[key]) > 1:
            errors[key] = "one person"
    for key, ids in people.items():
        if any(not i.isdigit() for i in ids):
            errors[key] = "Bitrix24 user ids are whole numbers"
    wanted = [i for ids in people.values() for i in ids]
    if wanted and catalog is not None and not errors:
        users = {u["id"] for u in catalog("users") or []}
        for key, ids in people.items():
            unknown = [i for i in ids if i not in users]
            if unknown:
                errors[key] = f"not an active user of the portal: {', '.join(unknown)}"
    return errors


def html_to_bbcode(text: str) -> str:
    """Templates give HTML; Bitrix24 task descriptions are BBCode (links, bold, lists, breaks)."""
    out = re.sub(r"<\s*br\s*/?>", "\n", text or "", flags=re.I)
    out = re.sub(r"</\s*(p|div|li|h[1-6])\s*>", "\n", out, flags=re.I)
    out = re.sub(r"<\s*li[^>]*>", "• ", out, flags=re.I)
    out = re.sub(r"<\s*(b|strong)\s*>", "[B]", out, flags=re.I)
    out = re.sub(r"</\s*(b|strong)\s*>", "[/B]", out, flags=re.I)
    out = re.sub(r"<\s*(i|em)\s*>", "[I]", out, flags=re.I)
    out = re.sub(r"</\s*(i|em)\s*>", "[/I]", out, flags=re.I)
    out = re.sub(r"<a\s[^>]*href=\"([^\"]*)\"[^>]*>(.*?)</a>", r"[URL=\1]\2[/URL]", out, flags=re.I | re.S)
    out = re.sub(r"<[^>]+>", "", out)
    out = html.unescape(out)
    return re.sub(r"\n{3,}", "\n\n", out).strip()


class TaskTarget:
    max_attachment_bytes: int | None = 0     # a rule copies no files into Bitrix24 tasks

    def __init__(self, ctx: TargetContext):
        self.ctx = ctx
        self.client: Bitrix24Client = ctx.client
        self.base = portal(ctx.api_base)

    def _url(self, task: dict) -> str:
        user = statuses._get(task, "responsibleId") or 0
        return f"{self.base}/company/personal/user/{user}/tasks/task/view/{statuses._get(task, 'id')}/"

    def _made(self, task: dict, created: bool) -> Made:
        return Made(external_id=str(statuses._get(task, "id")), url=self._url(task),
                    name=str(statuses._get(task, "title") or ""), created=created)

    def _deadline(self, spec: TaskSpec) -> str | None:
        if spec.due:
            return spec.due if "T" in spec.due else f"{spec.due}T18:00:00+00:00"
        hours = spec.settings.get("deadline_hours")
        if hours in (None, ""):
            return None
        when = _trigger_time(spec) + timedelta(hours=float(hours))
        return when.replace(microsecond=0).isoformat()

    def fields(self, spec: TaskSpec, key: str) -> dict[str, Any]:
        s = spec.settings
        record = spec.record
        fields: dict[str, Any] = {"TITLE": (spec.name or "Task")[:250], "XML_ID": key,
                                  "DESCRIPTION": html_to_bbcode(spec.notes_html)}
        responsible = (_ids(spec.assignee) or _ids(s.get("responsible_id"))
                       or _ids((record.data if record else {}).get("ASSIGNED_BY_ID")))
        if responsible:
            fields["RESPONSIBLE_ID"] = responsible[0]
        else:
            user, _ = self.client.whoami()
            fields["RESPONSIBLE_ID"] = str(user.get("ID"))
        deadline = self._deadline(spec)
        if deadline:
            fields["DEADLINE"] = deadline
        if s.get("priority") not in (None, ""):
            fields["PRIORITY"] = str(s["priority"])
        fields["TASK_CONTROL"] = "Y" if _truthy(s.get("control")) else "N"
        creator = _ids(s.get("created_by"))
        if creator:
            fields["CREATED_BY"] = creator[0]
        auditors = _ids(s.get("auditors"))
        if auditors:
            fields["AUDITORS"] = auditors
        if record is not None and record.kind in ("deal", "lead", "contact", "company"):
            prefix = {"deal": "D", "lead": "L", "contact": "C", "company": "CO"}[record.kind]
            fields["UF_CRM_TASK"] = [f"{prefix}_{record.id}"]
        return fields

    def _find(self, key: str, fields: dict[str, Any]) -> dict | None:
        if fields.get("UF_CRM_TASK"):
            where = {"UF_CRM_TASK": fields["UF_CRM_TASK"][0]}
        else:
            where = {"RESPONSIBLE_ID": fields["RESPONSIBLE_ID"]}
        for n, task in enumerate(self.client.tasks(where, order={"ID": "DESC"})):
            if str(statuses._get(task, "xmlId") or "") == key:
                return task
            if n >= LOOKUP_LIMIT:
                break
        return None

    def ensure(self, spec: TaskSpec, effect_key: str, *, first_try: bool) -> Made:
        key = xml_id(effect_key)
        fields = self.fields(spec, key)
        if not first_try:
            found = self._find(key, fields)
            if found is not None:
                return self._made(found, False)
        task = self.client.add_task(fields)
        if not task:
            raise Fatal("bitrix24 tasks.task.add answered without the task", 502)
        return self._made(task, True)

    def complete(self, external_id: str) -> str:
        """Completed, or `awaiting_review` for a task under control (its creator approves it)."""
        task = self.client.task(external_id)
        now = statuses.neutral(task)
        if now in ("completed", "awaiting_review", "gone"):
            return now
        try:
            self.client.task_action("complete", external_id)
        except Fatal as exc:
            if "result" in str(exc).lower():     # its responsible must write the summary first
                return "summary_required"
            raise
        return statuses.neutral(self.client.task(external_id))

    def status(self, external_id: str) -> str:
        return statuses.neutral(self.client.task(external_id))

    def state(self, external_id: str) -> TaskState:
        """The task's neutral status, deadline, last change and responsible; a task deleted or no
        longer visible to the connected user is `gone`."""
        task = self.client.task(external_id)
        if not task:
            return TaskState("gone", detail="deleted in Bitrix24, or the connected user may no longer see it")
        responsible = statuses._get(task, "responsible")
        name = responsible.get("name") if isinstance(responsible, dict) else ""
        real = statuses.real_status(task)
        return TaskState(statuses.neutral(task), deadline=_utc(statuses._get(task, "deadline")),
                         changed_at=_utc(statuses._get(task, "changedDate")),
                         responsible=str(name or statuses._get(task, "responsibleId") or ""),
                         detail=_DETAIL.get(real, ""))

    def attach(self, external_id: str, file: dict[str, Any], chunks: Iterator[bytes], *,
               maybe_sent: bool = False) -> str:
        raise AttachmentRefused(f"{file.get('name') or 'a file'}: Bitrix24 tasks take no files from a rule")


def _trigger_time(spec: TaskSpec) -> datetime:
    """When the trigger happened: the record's change the event carried (DATE_MODIFY, a task's
    changedDate), so a run retried later keeps the same deadline; without one, now."""
    data = spec.record.data if spec.record is not None else {}
    stamp = _utc(data.get("DATE_MODIFY") or statuses._get(data, "changedDate"))
    return stamp.replace(tzinfo=timezone.utc) if stamp else datetime.now(timezone.utc)


_DETAIL = {"4": "awaiting the creator's review (control on completion)", "6": "deferred in Bitrix24"}


def _utc(value: Any) -> datetime | None:
    """A Bitrix24 time (ISO 8601 with its offset) as naive UTC, as the hub keeps times."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


TARGETS: dict[str, StepKind] = {s.what: s for s in (
    StepKind("task", "Create a Bitrix24 task linked to the record", makes="task",
             settings=("responsible_id", "deadline_hours", "priority", "control", "created_by", "auditors"),
             validate=validate_task, target=TaskTarget, completes=True, catalogs=("users", "task_priorities"),
             inputs=(Input("responsible_id", "Responsible (empty: the record's responsible)", catalog="users"),
                     Input("deadline_hours", "Deadline, hours after the trigger"),
                     Input("priority", "Priority", choices=tuple((p["id"], p["name"]) for p in PRIORITIES)),
                     Input("control", "Control on completion (the creator reviews it)",
                           choices=(("", "No"), ("Y", "Yes"))),
                     Input("created_by", "Created by (reviews it under control; empty: you)", catalog="users"),
                     Input("auditors", "Auditors", catalog="users", many=True))),
)}
