"""What a connector can do as a step of a rule: create a task or a project, create or update a
record, complete the tasks linked to a record. Each step kind is data (`StepKind`) with its
settings' validation against the connector's catalogs and an `ensure` that is idempotent for an
effect key: calling it twice (a retry, a replay, a second worker) gives one object."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Callable, Iterator, Protocol

from ...errors import Fatal
from .records import SourceRecord


class AttachmentRefused(Fatal):
    """This one file cannot be copied (`reason`: too_large | refused); the run goes on without it."""

    def __init__(self, message: str, reason: str = "refused"):
        super().__init__(message, 413 if reason == "too_large" else 400)
        self.reason = reason


# A linked task's status in neutral words, whatever the target calls it. `open` is for a target that
# knows no finer state; `gone` means the hub can no longer see the task (deleted, access lost).
TASK_STATUSES = ("not_viewed", "viewed", "updated_by_other", "in_progress", "paused", "awaiting_review",
                 "deadline_changed", "summary_required", "overdue", "completed", "deferred", "open", "gone")
CLOSED_STATUSES = ("completed", "gone")   # nothing more happens to such a task


@dataclass(frozen=True)
class TaskState:
    """What a target says about one task now. `deadline`: a date (due that day) or a naive UTC
    datetime; `changed_at`: naive UTC time of its last change, when the target tells it (the board
    shows the most recently changed task of a record); `responsible`: a name or id to show;
    `detail`: a short note for people (e.g. "deferred by Ann")."""

    status: str
    deadline: date | datetime | None = None
    changed_at: datetime | None = None
    responsible: str = ""
    detail: str = ""

    def __post_init__(self):
        if self.status not in TASK_STATUSES:
            raise ValueError(f"{self.status!r} is not a neutral task status ({', '.join(TASK_STATUSES)})")


@dataclass
class TaskSpec:
    """A rendered step, ready to send: the target's own settings plus what the templates gave."""

    name: str
    notes_html: str = ""                   # HTML from the templates; the target converts it to what it accepts
    due: str | None = None                 # ISO date or datetime
    assignee: str | None = None            # target user id (None: the step's settings decide)
    settings: dict[str, Any] = field(default_factory=dict)   # the step's target settings (project id ...)
    fields: dict[str, Any] = field(default_factory=dict)     # mapped custom fields, target ids -> values
    record: SourceRecord | None = None     # the CRM record it comes from (for links back)
    task_type: str | None = None           # the hub's task type name (Email, Offer, Meeting ...), if any
    # how colleagues see the task (the hub's team calendar honours it everywhere; a target with its
    # own notion of it may carry it): none | free_busy (only its time) | read_only | full (see, edit)
    sharing: str | None = None
    colleagues: tuple[str, ...] = ()       # target user ids of the responsible's colleagues (followers ...)


SHARING_MODES = ("none", "free_busy", "read_only", "full")


@dataclass
class Made:
    """What a target made (or found: `created=False`)."""

    external_id: str
    url: str = ""
    name: str = ""
    created: bool = True


@dataclass(frozen=True)
class TargetContext:
    client: Any                            # the connector's ApiClient for the step's connection
    api_base: str
    catalog: Callable[[str], Any]
    settings: dict[str, Any] = field(default_factory=dict)   # hub limits: attachment_max_bytes
    file_chunks: Callable[[dict], Iterator[bytes]] | None = None   # the source's files, for attachments


class TaskTarget(Protocol):
    max_attachment_bytes: int | None       # larger files are refused before any byte is read

    def ensure(self, spec: TaskSpec, effect_key: str, *, first_try: bool) -> Made:
        """Create the object once per effect key; on a retry find what an earlier try made.

        `effect_key` is unique across installations (the core builds it from the connector, the
        company, the rule, the occurrence and the step) and is used as is, e.g. as an external id.
        `first_try=True` promises that no earlier try can have sent a create for this key (the core
        records a write-ahead mark before calling `ensure`, and passes False only when it finds an
        earlier mark), so the target may skip its look-up."""

    def complete(self, external_id: str) -> str:
        """Complete a task; returns the new status in neutral words: "completed", or
        "awaiting_review" for a task under control (someone must approve its completion)."""

    def status(self, external_id: str) -> str:
        """open | completed | ... in neutral words."""

    def state(self, external_id: str) -> TaskState:
        """The task's status, deadline and last change (targets whose kinds complete implement it).
        A task deleted or no longer visible to the connection is `TaskState("gone")`, not an error."""

    def attach(self, external_id: str, file: dict[str, Any], chunks: Iterator[bytes], *,
               maybe_sent: bool = False) -> str:
        """Copy one file (`{"id", "name", "size", "mime"}`); returns the target's attachment id.
        `maybe_sent`: an earlier try may have sent it and lost the answer: look before sending.
        Raises AttachmentRefused for this file only (too large, refused)."""


@dataclass(frozen=True)
class Input:
    """How the rule editor shows one setting of a step kind, when its name alone does not say it
    (without `StepKind.inputs` the editor guesses from the names: `project_gid` -> catalog
    `projects`). `catalog`: the connector catalog whose entries are the choices; with `path` and
    `parent` the choices are the list `path` inside the entry of `catalog` that the setting `parent`
    picked (the stages of the chosen pipeline); `choices`: fixed (value, label) pairs; `many`: several values."""

    key: str
    label: str
    catalog: str | None = None
    parent: str | None = None
    path: str | None = None
    required: bool = False
    choices: tuple[tuple[str, str], ...] = ()
    many: bool = False


@dataclass(frozen=True)
class StepKind:
    """A step a connector offers. The rule stores it as `<connector name>.<what>`; `label` is what
    the editor shows.

    `validate(settings, catalog, complete)`: `catalog` is the core's `catalog(name) -> value` for
    the step's connection (None when the lists cannot be loaded: check only what needs none);
    `complete=False` for a draft (missing settings are fine). Error keys are setting names (the
    core puts them under the step); messages are for the admin.

    `advances`: the step moves the run's object forward in its pipeline (a lead to a later stage).
    The core skips such a step, saying why in the run log, for an object whose `auto_advance` flag
    is off (a person moved it back by hand: hub/events/flags.py)."""

    what: str                              # task | project | record | ...
    label: str
    makes: str                             # the object type it creates: task | project | record
    settings: tuple[str, ...]              # setting keys the step uses (validated below)
    validate: Callable[[dict, Any, bool], dict[str, str]]   # (settings, catalog or None, complete) -> errors
    target: Callable[[TargetContext], TaskTarget]
    attachments: bool = False
    completes: bool = False                # its objects can be completed by "complete linked tasks"
    catalogs: tuple[str, ...] = ()         # the connector's catalogs its settings' dropdowns use
    inputs: tuple[Input, ...] = ()         # the editor's view of `settings` (empty: guessed from names)
    advances: bool = False                 # moves the object forward: skipped while its auto-advance is off
