"""Field mappings, sandboxed templates and the rendering of a CRM record into a target object.

`TargetRenderer` is the entry point: `check()` when a rule is saved, `render()` per event and
for the preview. See render.py and sizes.py (sandbox and limits), pool.py and jail.py (the render
processes that hold the CPU and memory budgets), direct.py (templates that only print data, rendered
in-process with the same results), fields.py (values), context.py (context, details
block) and richtext.py (the neutral rich text every target converts). Records are the connector
contract's `SourceRecord`: nothing here knows a provider.

Names are imported on first use: the render process imports `hub.mappings.jail` and must not pay
for what context.py needs."""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"Carry": "context", "KNOWN_NAMES": "context", "Rendered": "context", "SourceRecord": "context",
            "TargetRenderer": "context", "sample_record": "context", "file_name": "context", "file_size": "context",
            "money_of": "context", "title_of": "context", "clean_html": "richtext", "Mapping": "fields",
            "catalog_choices": "fields", "field_value": "fields", "Limits": "render", "TemplateProblem": "render"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
