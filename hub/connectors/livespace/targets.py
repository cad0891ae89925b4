"""Livespace as a rule's target: the step kind `task` makes a todo (title, description, date, task
type, responsible, private or not, linked to the rule's deal, person or company).

Exactly-once: a todo has no external id and the write's echo is not trusted (unknown keys are
echoed but dropped), so the effect key is written into the description as a marker (its last
line, `relay-hub:<24 hex digits of the key's SHA-256>`). A first try creates at once (the core's
write-ahead mark promises nothing was sent before); a later try first lists the todos linked to
the record (else the most recently changed) and takes the one carrying the marker. After a create
the todo is read back by the id the echo gave: what Livespace kept is what the hub records. A
create whose answer is lost is never re-sent blindly: the job's next try looks first.

Privacy: a TaskSpec whose sharing mode is "none" or "free_busy" (colleagues may not read it) makes a
private todo (`is_private`); so does the step's own `private` setting."""
from __future__ import annotations

import hashlib
import html
import re
from datetime import date, datetime
from typing import Any, Callable, Iterator

from hub.connectors.contract.targets import (AttachmentRefused, Input, Made, StepKind, TargetContext, TaskSpec,
                                             TaskState)
from hub.errors import Fatal, Retriable

LOOKUP_LIMIT = 100
PRIVATE_SHARING = frozenset({"none", "free_busy"})
OBJECT_TYPES = {"deal": "deal", "person": "contact", "company": "company", "organization": "company"}


def marker(effect_key: str) -> str:
    return f"relay-hub:{hashlib.sha256(effect_key.encode()).hexdigest()[:24]}"


def text_of(notes_html: str) -> str:
    """The templates' HTML as the plain text a todo's description shows."""
    text = re.sub(r"(?i)<br\s*/?>|</p>|</li>|</div>|</h[1-6]>", "\n", notes_html or "")
    text = re.sub(r"(?i)<li[^>]*>", "- ", text)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def livespace_date(due: str | None) -> str | None:
    """An ISO date or datetime as the API's `date` ("YYYY-MM-DD" or "YYYY-MM-DD HH:MM:SS", the wall
    time given); Fatal naming `due` for anything else."""
    if not due:
        return None
    text = str(due).strip()
    try:
        if len(text) == 10:
            return datetime.strptime(text, "%Y-%m-%d").strftime("%Y-%m-%d")
        return datetime.fromisoformat(text.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise Fatal(f"livespace: due: {text[:40]!r} is not an ISO date or time", 422) from None


def flag(settings: dict, key: str, default: bool) -> bool:
    """A yes/no setting as the API gives it (a bool) or the editor's choice ("true" / "false")."""
    value = settings.get(key)
    if isinstance(value, bool):
        return value
    if value in (None, ""):
        return default
    return str(value).lower() == "true"


def _moment(value: Any) -> date | datetime | None:
    """"YYYY-MM-DD" -> a date; "YYYY-MM-DD HH:MM:SS" -> a naive datetime; anything else None."""
    text = str(value or "").strip()
    for fmt, as_date in (("%Y-%m-%d", True), ("%Y-%m-%d %H:%M:%S", False)):
        try:
            moment = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return moment.date() if as_date else moment
    return None


def _ids(catalog: Callable[[str], Any] | None, name: str) -> set[str] | None:
    if catalog is None:
        return None
    return {str(item["id"]) for item in catalog(name) or ()}


def validate_task(settings: dict, catalog: Callable[[str], Any] | None, complete: bool) -> dict[str, str]:
    errors: dict[str, str] = {}
    for key, name, what in (("type_id", "task_types", "a task type"), ("owner_id", "users", "a user")):
        value = settings.get(key)
        if value in (None, ""):
            continue
        known = _ids(catalog, name)
        if not isinstance(value, str):
            errors[key] = f"{what} of the connected Livespace account"
        elif known is not None and value not in known:
            errors[key] = f"not {what} of the connected Livespace account"
    for key in ("link_record", "private"):
        if key in settings and not (isinstance(settings[key], bool) or settings[key] in ("true", "false", "")):
            errors[key] = "true or false"
    if settings.get("sharing") not in (None, "", "none", "free_busy", "read_only", "full"):
        errors["sharing"] = "none, free_busy, read_only or full"
    return errors


class LivespaceTasks:
    max_attachment_bytes = 0     # the hub copies no files into todos

    def __init__(self, ctx: TargetContext):
        self.ctx = ctx
        self.client = ctx.client
        self.base = ctx.api_base.rstrip("/")

    def _made(self, todo: dict, created: bool) -> Made:
        ident = str(todo["id"])
        return Made(external_id=ident, url=f"{self.base}/todo/{ident}", name=todo.get("title") or "", created=created)

    def _type(self, spec: TaskSpec, settings: dict) -> tuple[str | None, str | None]:
        """(type id, type name Livespace does not have): the step's type, else the spec's task type
        by name (a hub template's). A hub type the account lacks (the hub's types are extendable)
        does not stop the task: it is made without a type and the name heads its description."""
        if settings.get("type_id"):
            return str(settings["type_id"]), None
        wanted = spec.task_type or settings.get("task_type")
        if not wanted:
            return None, None
        for item in self.ctx.catalog("task_types") or ():
            if str(item["id"]) == str(wanted) or str(item["name"]).strip().lower() == str(wanted).strip().lower():
                return str(item["id"]), None
        return None, str(wanted)

    @staticmethod
    def _link(spec: TaskSpec, settings: dict) -> dict | None:
        record = spec.record
        if record is None or not flag(settings, "link_record", True) or record.kind not in OBJECT_TYPES:
            return None
        return {"object_type": OBJECT_TYPES[record.kind], "object_id": str(record.id)}

    def find(self, mark: str, link: dict | None) -> dict | None:
        """The todo carrying `mark`: among the record's todos, else the most recently changed."""
        lists = []
        if link is not None:
            lists.append({"object_type": link["object_type"], "object_id": link["object_id"]})
        lists.append({})
        for filters in lists:
            for todo in self.client.todos(LOOKUP_LIMIT, **filters):
                if mark in str(todo.get("description") or ""):
                    return todo
        return None

    def ensure(self, spec: TaskSpec, effect_key: str, *, first_try: bool) -> Made:
        settings = {**self.ctx.settings, **spec.settings}
        mark = marker(effect_key)
        link = self._link(spec, settings)
        if not first_try:                      # an earlier try may have made it and lost the answer
            found = self.find(mark, link)
            if found is not None:
                return self._made(found, False)
        type_id, missing_type = self._type(spec, settings)
        description = text_of(spec.notes_html)
        if missing_type:
            description = f"Type: {missing_type}\n\n{description}".strip()
        todo: dict[str, Any] = {"title": (spec.name or "").strip()[:255] or "Task",
                                "description": f"{description}\n\n{mark}" if description else mark}
        date = livespace_date(spec.due)
        if date:
            todo["date"] = date
        if type_id:
            todo["type_id"] = type_id
        owner = spec.assignee or settings.get("owner_id")
        if owner:
            todo["owner_id"] = str(owner)
        sharing = spec.sharing or settings.get("sharing")
        if sharing in PRIVATE_SHARING or flag(settings, "private", False):
            todo["is_private"] = "1"
        if link is not None:
            todo["objects"] = [link]
        ident = self.client.add_todo(todo)
        stored = self.client.todo(ident) if ident else None
        if stored is None or mark not in str(stored.get("description") or ""):
            stored = self.find(mark, link)     # the echo named no id, or not this todo
        if stored is None:
            raise Retriable("livespace: the todo was sent but cannot be found yet; the next try looks again")
        return self._made(stored, True)

    def complete(self, external_id: str) -> str:
        self.client.edit_todo({"id": external_id, "is_completed": "1"})
        return self.status(external_id)        # the echo says nothing: read what was kept

    def status(self, external_id: str) -> str:
        return "completed" if str(self.client.todo(external_id).get("is_completed")) == "1" else "open"

    def state(self, external_id: str) -> TaskState:
        """Done or not; a todo Livespace no longer shows (550 missing, 540 not allowed) is `gone`.
        Its date and change time are the account's wall clock as the API writes them [U: the API
        names no time zone]."""
        try:
            todo = self.client.todo(external_id)
        except Fatal as exc:
            if exc.status in (403, 404):
                return TaskState("gone", detail="deleted in Livespace" if exc.status == 404
                                 else "the connected user may no longer see it")
            raise
        done = str(todo.get("is_completed")) == "1"
        changed = _moment(todo.get("completed_date") if done else None) or _moment(todo.get("modified"))
        return TaskState("completed" if done else "open", deadline=_moment(todo.get("date_from")),
                         changed_at=changed if isinstance(changed, datetime) else None,
                         responsible=str(todo.get("owner_id") or ""))

    def attach(self, external_id: str, file: dict[str, Any], chunks: Iterator[bytes], *,
               maybe_sent: bool = False) -> str:
        raise AttachmentRefused(f"{file.get('name') or 'file'}: the hub copies no files into Livespace tasks",
                                "refused")


TARGETS = {
    "task": StepKind(what="task", label="Create a Livespace task", makes="task",
                     settings=("type_id", "owner_id", "link_record", "private", "sharing"),
                     validate=validate_task, target=LivespaceTasks, attachments=False, completes=True,
                     catalogs=("task_types", "users"),
                     inputs=(Input("type_id", "Task type", catalog="task_types"),
                             Input("owner_id", "Responsible", catalog="users"),
                             Input("link_record", "Link it to the rule's deal, person or company",
                                   choices=(("true", "Yes"), ("false", "No"))),
                             Input("private", "Private (only the responsible sees it)",
                                   choices=(("false", "No"), ("true", "Yes"))),
                             Input("sharing", "Colleagues see it", choices=(
                                 ("", "as the task type says"), ("none", "not at all (private)"),
                                 ("free_busy", "only its time (private)"), ("read_only", "read only"),
                                 ("full", "fully"))))),
}
