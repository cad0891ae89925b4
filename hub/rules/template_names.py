"""Names a template uses that will render empty for a rule's trigger: another object's namespace
(`deal.title` in a lead rule: only the trigger's object is filled in) or a field the object does
not have (`deal.nonexistent`). Found with Jinja's own parser (undeclared names and the attribute
accesses on them), so loops, `set` and string literals never count as names. Warnings, not
errors: a rule that names a field the CRM dropped must still be editable and saveable."""
from __future__ import annotations

from typing import Any, Iterable

from jinja2 import Environment, TemplateSyntaxError, meta, nodes

from ..mappings.context import OBJECT_KINDS

# what template_context puts under the object's name (and `record`) besides the CRM's own fields
RECORD_NAMES = frozenset({"id", "title", "status", "url", "pipeline", "stage", "owner", "value"})
LINKED = {"person": frozenset({"name", "email", "phone", "emails", "phones"}),
          "org": frozenset({"name", "address"}), "organization": frozenset({"name", "address"}),
          "rule": frozenset({"name"})}
_ENV = Environment()


def _accesses(tree: nodes.Template, names: set[str]) -> Iterable[tuple[str, str | None]]:
    """(name, attribute or None) for every use of the undeclared `names`."""
    used: set[int] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        base = node.node
        if not isinstance(base, nodes.Name) or base.name not in names:
            continue
        if isinstance(node, nodes.Getattr):
            attr = node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            attr = node.arg.value
        else:
            continue
        used.add(id(base))
        yield base.name, attr
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name in names and id(node) not in used:
            yield node.name, None


def field_names(fields: list[dict[str, Any]] | None) -> set[str] | None:
    """What a template may name on the trigger's object: the fixed record names, the CRM's field keys
    and custom fields' labels; None when the CRM's field list is unknown."""
    if fields is None:
        return None
    return set(RECORD_NAMES) | {str(f["key"]) for f in fields} | {str(f.get("label")) for f in fields if f.get("custom")}


def problems(source: str, object_type: str, fields: list[dict[str, Any]] | None) -> list[str]:
    """Why parts of `source` will render empty in a rule whose trigger is about `object_type`."""
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError:
        return []                       # the renderer's own check reports it, as an error
    names = set(meta.find_undeclared_variables(tree))
    known = field_names(fields)
    own = {object_type, "record"} if object_type in OBJECT_KINDS else {"record"}
    if object_type in ("org", "organization"):
        own |= {"org", "organization"}
    out: list[str] = []
    for name, attr in _accesses(tree, names):
        shown = f"{name}.{attr}" if attr else name
        if name in OBJECT_KINDS and name not in own and name not in LINKED:
            better = f"{object_type}.{attr}" if attr and object_type in OBJECT_KINDS else f"record.{attr or 'title'}"
            message = f"{shown} is always empty in a rule about a {object_type}; use {better}"
        elif name in own and attr is not None and known is not None and attr not in known:
            shown_fields = sorted(RECORD_NAMES | {str(f["key"]) for f in fields or [] if not f.get("custom")}) + \
                [str(f.get("label")) for f in fields or [] if f.get("custom") and str(f.get("label")).isidentifier()]
            some = ", ".join(shown_fields[:15])
            message = f"{shown}: a {object_type} has no field {attr!r}, so it renders empty (fields: {some} ...)"
        elif name in LINKED and name not in own and attr is not None and attr not in LINKED[name]:
            message = f"{shown}: {name} has only {', '.join(sorted(LINKED[name]))}, so it renders empty"
        else:
            continue
        if message not in out:
            out.append(message)
    return out
