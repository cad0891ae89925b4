"""`opt_fields` handling: Asana returns only the named field paths plus `gid` once it is given.

Without `opt_fields` a single resource comes back in its default full form (opt-in fields left
out) and a list in compact form. With it, `a.b` paths pick nested fields; a nested object named
without sub-fields comes back as a reference (`gid` and `resource_type`)."""
from __future__ import annotations

from typing import Any, Callable

Tree = dict[str, "Tree"]
# Expands a nested reference to its full record when a sub-field beyond the reference is asked for.
Expander = Callable[[str, str], dict | None]

# Pagination names Asana lists in opt_fields enums; they shape next_page, not the records.
_PAGING = {"offset", "path", "uri"}


def parse(raw: Any) -> Tree | None:
    """`"a,b.c"` or `["a", "b.c"]` -> {"a": {}, "b": {"c": {}}}; None when not given."""
    if raw is None:
        return None
    items = raw if isinstance(raw, list) else str(raw).split(",")
    tree: Tree = {}
    for item in items:
        path = [p for p in str(item).strip().split(".") if p]
        if not path or (len(path) == 1 and path[0] in _PAGING):
            continue
        node = tree
        for part in path:
            node = node.setdefault(part, {})
    return tree


def select(record: dict, tree: Tree, expand: Expander) -> dict:
    out: dict = {"gid": record["gid"]} if "gid" in record else {}
    for name, sub in tree.items():
        if name in record:
            out[name] = _shape(record[name], sub, expand)
    return out


def _shape(value: Any, sub: Tree, expand: Expander) -> Any:
    if isinstance(value, list):
        return [_shape(v, sub, expand) for v in value]
    if not isinstance(value, dict):
        return value
    is_ref = "gid" in value and "resource_type" in value
    if not sub:
        if is_ref:
            return {"gid": value["gid"], "resource_type": value["resource_type"]}
        return {k: _shape(v, {}, expand) for k, v in value.items()}
    if is_ref and any(k not in value for k in sub):
        value = expand(value["resource_type"], value["gid"]) or value
    return select(value, sub, expand)
