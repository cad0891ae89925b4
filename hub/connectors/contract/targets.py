"""What a connector can do as a step of a rule: create a task or a project, create or update a
record, complete the tasks linked to a record. Each step kind is data (`StepKind`) with its
settings' validation against the connector's catalogs and an `ensure` that is idempotent for an
effect key: calling it twice (a retry, a replay, a second worker) gives one object."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol

from .records import SourceRecord


@dataclass
class TaskSpec:
    """A rendered step, ready to send: the target's own settings plus what the templates gave."""

    name: str
    notes_html: str = ""                   # rich text the target accepts (connectors convert)
    due: str | None = None                 # ISO date or datetime
    assignee: str | None = None            # target user id
    settings: dict[str, Any] = field(default_factory=dict)   # the step's target settings (project id ...)
    fields: dict[str, Any] = field(default_factory=dict)     # mapped custom fields, target ids -> values
    record: SourceRecord | None = None     # the CRM record it comes from (for links back)


@dataclass
class Made:
    """What a target made (or found: `created=False`)."""

    external_id: str
    url: str = ""
    name: str = ""
    created: bool = True


@dataclass(frozen=True)
class TargetContext:
    client: Any
    api_base: str
    catalog: Callable[[str], Any]
    settings: dict[str, Any] = field(default_factory=dict)
    file_chunks: Callable[[dict], Iterator[bytes]] | None = None   # the source's files, for attachments


class TaskTarget(Protocol):
    def ensure(self, spec: TaskSpec, effect_key: str, *, first_try: bool) -> Made:
        """Create the object once per effect key; on a retry find what an earlier try made."""

    def complete(self, external_id: str) -> str:
        """Complete (or send for review) a task; returns the new status in neutral words."""

    def status(self, external_id: str) -> str:
        """open | completed | ... in neutral words."""

    def attach(self, external_id: str, file: dict[str, Any], chunks: Iterator[bytes]) -> str | None:
        """Copy one file; returns the target's attachment id (None: refused, e.g. too large)."""


@dataclass(frozen=True)
class StepKind:
    """A step a connector offers. The rule stores it as `<connector name>.<what>`; `label` is what
    the editor shows."""

    what: str                              # task | project | record | ...
    label: str
    makes: str                             # the object type it creates: task | project | record
    settings: tuple[str, ...]              # setting keys the step uses (validated below)
    validate: Callable[[dict, Any, bool], dict[str, str]]   # (settings, catalogs or None, complete) -> errors
    target: Callable[[TargetContext], TaskTarget]
    attachments: bool = False
    completes: bool = False                # its objects can be completed by "complete linked tasks"
