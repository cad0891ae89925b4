"""Step kinds: what a rule's step can be. Connector kinds come from `CONNECTOR.targets`
(`<connector>.<what>`: create a task, a project, a record ...); core kinds are the hub's own:

complete_linked  complete the tasks earlier steps made for this record (each through its target)
email            send an e-mail (queued in the step's transaction: exactly once)
wait             pause: the next steps run as a job scheduled for later
branch           a condition choosing which following steps run (continue, stop, or skip to a step)
templates        apply a set of task templates (hub/tasks): several tasks, each in its own target, with
                 delays that become deadlines; or the post-sale set of the deal's sales process

Every step may also carry a condition (skipped when it does not hold) and a delay (a wait before it)."""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from .. import connectors

CORE_KINDS = ("complete_linked", "email", "wait", "branch", "templates")


@dataclass(frozen=True)
class Setting:
    """One setting of a step as the editor shows it: a key, a label, and where its choices come
    from: a catalog of the step's connector (`path`: a list inside each catalog entry, whose
    options then belong to that entry, chosen by the setting `parent`), or fixed `choices`."""

    key: str
    label: str
    catalog: str | None = None
    parent: str | None = None
    required: bool = False
    choices: tuple[tuple[str, str], ...] = ()      # fixed (value, label) choices
    path: str | None = None
    many: bool = False                             # holds several values (a list or a mapping)


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


# a setting's words for the list its options come from, where the plural of its name is not it
LISTS = {"assignee": "users", "owner": "users", "user": "users", "person": "persons"}
# ... and for the kind of id it holds (a connector's ids module checks it)
ID_WORDS = {"assignee": "user", "owner": "user"}


def setting_stem(key: str) -> str:
    """`project_gid` -> `project`: what a setting names."""
    return _stem(key)


def _stem(key: str) -> str:
    for suffix in ("_gid", "_id", "_key"):
        if key.endswith(suffix):
            return key[:-len(suffix)]
    return key


def _settings(keys: tuple[str, ...], catalogs: tuple[str, ...]) -> tuple[Setting, ...]:
    """The editor's view of a step kind's settings, from their names and the catalogs the kind
    names (`StepKind.catalogs`): a setting `<thing>_id` (or `_gid`) takes its options from the
    catalog `<things>` (or `<prefix>_<things>`), or else from the list `<things>` inside each
    entry of a catalog another setting takes its options from (projects of a workspace ...)."""
    def plural(key: str) -> str:
        stem = _stem(key)
        return LISTS.get(stem, stem if stem.endswith("s") else stem + "s")

    def top(key: str) -> str | None:
        want = plural(key)
        return next((c for c in catalogs if c == want or c.endswith("_" + want)), None)

    tops = {top(k): k for k in keys if top(k) and _stem(k) != k}
    out = []
    for key in keys:
        label = _stem(key).replace("_", " ").capitalize()
        catalog = top(key)
        if _stem(key) == key and key.endswith("s"):        # `fields`: several values, no single choice
            out.append(Setting(key, label, many=True))
        elif catalog is not None:
            out.append(Setting(key, label, catalog=catalog))
        elif tops:
            catalog, parent = next(iter(tops.items()))
            out.append(Setting(key, label, catalog=catalog, parent=parent, path=plural(key)))
        else:
            out.append(Setting(key, label))
    return tuple(out)


def _ident(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return str(entry) if isinstance(entry, (str, int)) else None
    for key in ("id", "gid", "key"):
        if entry.get(key) not in (None, ""):
            return str(entry[key])
    return None


def options(setting: Setting, value: Any) -> list[dict[str, str]] | None:
    """The (id, name, parent) choices of `setting` from its catalog's value; None when the value
    has no list shape the editor can offer."""
    if not isinstance(value, list):
        return None
    out = []
    for entry in value:
        if setting.path is None:
            ident = _ident(entry)
            if ident is not None:
                name = entry.get("name") or entry.get("label") if isinstance(entry, dict) else None
                out.append({"id": ident, "name": str(name or ident), "parent": ""})
            continue
        parent = _ident(entry)
        for item in (entry.get(setting.path) or []) if isinstance(entry, dict) else []:
            ident = _ident(item)
            if ident is not None:
                name = item.get("name") or item.get("label") if isinstance(item, dict) else None
                email = item.get("email") if isinstance(item, dict) else None
                out.append({"id": ident, "name": str(name or ident) + (f" <{email}>" if email else ""),
                            "parent": parent or ""})
    return out


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
    Kind("templates", "Apply task templates",
         settings=(Setting("set_id", "Template set (its id; see Task templates)"),
                   Setting("post_sale", "Or: the post-sale set of the deal's sales process",
                           choices=(("", "no"), ("won", "won deals' set"), ("lost", "lost deals' set"))))),
)}


def _declared(step: Any) -> tuple[Setting, ...]:
    """The settings a step kind describes itself (`StepKind.inputs`), in the editor's terms."""
    return tuple(Setting(i.key, i.label, catalog=i.catalog, parent=i.parent, required=i.required,
                         choices=tuple(i.choices), path=i.path, many=i.many)
                 for i in getattr(step, "inputs", ()) or ())


_BUILT: tuple[int, Mapping[str, Kind]] | None = None


def connector_kinds() -> Mapping[str, Kind]:
    """The step kinds the connectors offer, built once per set of connectors (every step of every
    run asks)."""
    global _BUILT
    built, generation = _BUILT, connectors.generation()
    if built is None or built[0] != generation:
        built = _BUILT = (generation, MappingProxyType(_build_connector_kinds()))
    return built[1]


def _build_connector_kinds() -> dict[str, Kind]:
    out: dict[str, Kind] = {}
    for c in connectors.connectors():
        for step in c.targets.values():
            kind = f"{c.name}.{step.what}"
            settings = _declared(step) or _settings(tuple(str(s) for s in step.settings),
                                                    tuple(getattr(step, "catalogs", ()) or ()))
            templates = ("name", "description") if step.makes != "record" else ()   # an update names nothing
            out[kind] = Kind(kind, step.label, connector=c.name, step=step, templates=templates,
                             settings=settings, makes=step.makes,
                             attachments=bool(step.attachments), completes=bool(step.completes), carries=True)
    return out


def all_kinds() -> dict[str, Kind]:
    return {**connector_kinds(), **CORE}


def get(kind: str) -> Kind | None:
    return CORE.get(kind) or connector_kinds().get(kind)
