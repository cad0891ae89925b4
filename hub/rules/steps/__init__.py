"""How each step kind runs. `run_step(execution, step, state)` does the step's work and
returns where the run goes on: None (the next step), "stop", or the uid of a later step.

make.py      a connector's step: render, `TaskTarget.ensure` once per effect key, link, attachments
complete.py  complete the tasks earlier steps made for the record, each through its own target
email.py     an e-mail, queued in the transaction that records the step as done
flow.py      wait (its delay is the step) and branch (a condition choosing what follows)
templates    apply a set of task templates (hub.tasks.apply: one task per template, each once)"""
from __future__ import annotations

from typing import Any

from .. import kinds
from . import complete, email, flow, make

CORE = {"complete_linked": complete.run, "email": email.run, "wait": flow.run_wait, "branch": flow.run_branch,
        "templates": lambda ex, step, state: _templates(ex, step, state)}


def _templates(ex: Any, step: Any, state: Any) -> None:
    from ...tasks.apply import run_step as apply_templates
    return apply_templates(ex, step, state)


def run_step(ex: Any, step: Any, state: Any) -> str | None:
    runner = CORE.get(step.kind)
    if runner is not None:
        return runner(ex, step, state)
    kind = kinds.get(step.kind)
    if kind is None:
        from ..runner import RunFailed
        raise RunFailed(f"{step.label}: no connector offers the step kind {step.kind!r} (is it installed?)")
    return make.run(ex, step, state, kind)
