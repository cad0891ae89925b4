"""Steps that steer the run. A wait is only its delay (the run waits before the step, like any
step's delay; the step itself does nothing). A branch decides what follows: its condition holds
or not, and each outcome continues with the next step, stops the run, or skips to a later step.
The decision is stored with the step, so a retry or a replay follows it again."""
from __future__ import annotations

from typing import Any

from ..conditions import describe


def run_wait(ex: Any, step: Any, state: Any) -> None:
    return None


def run_branch(ex: Any, step: Any, state: Any) -> str | None:
    holds = True if not step.condition else ex.holds(step.condition)
    goto = str(step.settings.get("if_true" if holds else "if_false") or "next")
    state.detail["holds"] = holds
    where = {"next": "the next step runs", "stop": "the run stops here"}.get(goto)
    if where is None:
        target = next((s for s in ex.plan.steps if s.uid == goto), None)
        where = f"skips to {target.label}" if target else "the next step runs"
    what = f"{describe(step.condition)} {'holds' if holds else 'does not hold'}" if step.condition else "no condition"
    ex.save(state, trace_step="rule.branch", message=f"{step.label}: {what}: {where}", status="info")
    return goto
