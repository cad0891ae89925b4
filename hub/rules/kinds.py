"""Step kinds: what a rule's step can be. Connector kinds come from `CONNECTOR.targets`
(`<connector>.<what>`: create a task, a project, a record ...); core kinds are the hub's own:

complete_linked  complete the tasks earlier steps made for this record (each through its target)
email            send an e-mail (queued in the step's transaction: exactly once)
wait             pause: the next steps run as a job scheduled for later
branch           a condition choosing which following steps run (continue, stop, or skip to a step)

Every step may also carry a condition (skipped when it does not hold) and a delay (a wait before it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import connectors

CORE_KINDS = ("complete_linked", "email", "wait", "branch")


@dataclass(frozen=True)
class Setting:
    """One setting of a step as the editor shows it: a key, a label, and where its choices come
    from (a catalog of the step's connector; `parent`: another setting whose value narrows them)."""

    key: str
    label: str
    catalog: str | None = None
    parent: str | None = None
    required: bool = False
    choices: tuple[tuple[str, str], ...] = ()      # fixed (value, label) choices


@dataclass(frozen=True)
class Kind:
    kind: str
    label: str
    connector: str | None = None                   # None: a core kind
    step: Any = None                               # the connector's contract StepKind
    templates: tuple[str, ...] = ()                # template slots: name, description / to, subject, body
    settings: tuple[Setting, ...] = ()
    makes: str | None = None                       # task | project | record
    attachments: bool = False
    completes: bool = False
    carries: bool = False                          # offers the data toggles and field mappings


def _setting(item: Any) -> Setting:
    """A StepKind setting: a key, or an object describing it (key, label, catalog, parent, required)."""
    if isinstance(item, str):
        return Setting(item, item.replace("_", " ").capitalize())
    key = getattr(item, "key")
    return Setting(key, getattr(item, "label", None) or key.replace("_", " ").capitalize(),
                   getattr(item, "catalog", None), getattr(item, "parent", None), bool(getattr(item, "required", False)),
                   tuple(tuple(c) for c in getattr(item, "choices", ()) or ()))


BRANCH_GOTO = (("next", "continue with the next step"), ("stop", "stop the run"))
CORE: dict[str, Kind] = {k.kind: k for k in (
    Kind("complete_linked", "Complete the tasks earlier steps made for this record",
         settings=(Setting("scope", "Which tasks", choices=(("rule", "made by this rule"),
                                                             ("record", "made by any rule for this record"))),)),
    Kind("email", "Send an e-mail", templates=("to", "subject", "body"), carries=True),
    Kind("wait", "Wait"),
    Kind("branch", "Branch: choose the steps that follow",
         settings=(Setting("if_true", "When the condition holds", choices=BRANCH_GOTO),
                   Setting("if_false", "Otherwise", choices=BRANCH_GOTO))),
)}


def connector_kinds() -> dict[str, Kind]:
    out: dict[str, Kind] = {}
    for c in connectors.connectors():
        for step in c.targets.values():
            kind = f"{c.name}.{step.what}"
            out[kind] = Kind(kind, step.label, connector=c.name, step=step, templates=("name", "description"),
                             settings=tuple(_setting(s) for s in step.settings), makes=step.makes,
                             attachments=bool(step.attachments), completes=bool(step.completes), carries=True)
    return out


def all_kinds() -> dict[str, Kind]:
    return {**connector_kinds(), **CORE}


def get(kind: str) -> Kind | None:
    return CORE.get(kind) or connector_kinds().get(kind)
