"""The rule editor's check of an "apply task templates" step: a template set of this installation,
or the post-sale set of the deal's sales process (won or lost)."""
from __future__ import annotations

from typing import Any

from ..store.models import TaskTemplateSet


def check_step(services: Any, installation_id: int, step: dict[str, Any], prefix: str, complete: bool,
               errors: dict[str, str]) -> None:
    settings = step["settings"]
    set_id, outcome = settings.get("set_id"), settings.get("post_sale")
    if outcome not in (None, "", "won", "lost"):
        errors[f"{prefix}.settings.post_sale"] = "won or lost (the post-sale set of the deal's sales process)"
        return
    if outcome:
        settings.pop("set_id", None)
        settings["post_sale"] = outcome
        return
    if set_id in (None, ""):
        if complete:
            errors[f"{prefix}.settings.set_id"] = "pick a template set (or the post-sale set)"
        return
    ident = int(set_id) if isinstance(set_id, int) and not isinstance(set_id, bool) else \
        int(set_id) if isinstance(set_id, str) and set_id.isascii() and set_id.isdigit() and len(set_id) < 19 else None
    with services.db.begin() as session:
        row = session.get(TaskTemplateSet, ident) if ident is not None else None
        if row is None or row.installation_id != installation_id:
            errors[f"{prefix}.settings.set_id"] = "a template set of this installation"
            return
    settings["set_id"] = ident
