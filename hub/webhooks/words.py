"""The run log in words: event kinds, steps and statuses as people read them ("Deal won", "Rule
matched", "Failed") instead of the codes the hub stores (`deal.won`, `rule.matched`, `failed`).

Event kinds take the label the CRM's connector gives its trigger (`CONNECTOR.triggers`), so a
kind reads the same in the rule editor and in the log; a kind no trigger names, and a step of a
connector's own (`<connector>.<what>`), are spelled out from their code."""
from __future__ import annotations

import functools

from .. import connectors

STEPS = {
    "received": "Webhook received",
    "normalized": "Event recorded",
    "duplicate": "Already recorded",
    "stale": "Arrived out of order",
    "ignored": "Nothing the hub uses",
    "error": "Could not be read",
    "replayed": "Replayed",
    "reconcile": "Checked for missed events",
    "webhooks": "Webhooks",
    "rule.matched": "Rule matched",
    "rule.requeued": "Run queued again",
    "rule.not_requeued": "Run not run again",
    "rule.not_matched": "Rule skipped this event",
    "rule.once": "Rule already ran for this object",
    "rule.done": "Rule done",
    "rule.failed": "Rule failed",
    "rule.skipped": "Run skipped",
    "rule.stopped": "Run stopped",
    "rule.retrying": "Trying again",
    "rule.waiting": "Waiting",
    "rule.reconnect": "Waiting for a reconnection",
    "rule.step_skipped": "Step skipped",
    "rule.completed": "Linked tasks completed",
    "rule.email": "E-mail sent",
    "rule.branch": "Branch",
    "flag.set": "Automation state changed",
    "tasks.close_queued": "Completing the record's open tasks",
    "tasks.closed": "Linked task completed (record closed)",
    "tasks.close_off": "Tasks left open (turned off in the settings)",
    "tasks.close_skipped": "Linked task not completed",
    "tasks.close_failed": "Linked task could not be completed",
    "tasks.status": "Linked task status",
    "tasks.checked": "Linked tasks checked",
}

# a log entry's status (ok info error) and a rule run's (queued running ... done failed)
STATUSES = {
    "ok": "OK", "info": "Note", "error": "Error",
    "queued": "Queued", "running": "Running", "retrying": "Trying again", "reconnect": "Waiting for a reconnection",
    "waiting": "Waiting", "done": "Done", "failed": "Failed", "skipped": "Skipped", "stopped": "Stopped",
}

# what an event came to, as the list shows and filters it (runlog.OUTCOMES computes it)
OUTCOMES = {"failed": "Failed", "pending": "In progress", "done": "Done", "skipped": "Skipped",
            "none": "No rule"}


def spelled(code: str) -> str:
    """`deal.stage_changed` -> "Deal stage changed": a code no table names, readable anyway."""
    text = " ".join(code.replace(".", " ").replace("_", " ").split())
    return text[:1].upper() + text[1:] if text else code


@functools.lru_cache(maxsize=32)
def _trigger_labels(provider: str | None) -> dict[str, str]:
    """The trigger labels of `provider`'s connector first, then every CRM connector's."""
    out: dict[str, str] = {}
    found = []
    if provider:
        try:
            found.append(connectors.connector(provider))
        except KeyError:
            pass
    found += connectors.connectors(role="crm")
    for c in found:
        for trigger in c.triggers or ():
            out.setdefault(trigger.kind, trigger.label)
    return out


def kind_label(kind: str, provider: str | None = None) -> str:
    return _trigger_labels(provider).get(kind) or spelled(kind)


def step_label(step: str) -> str:
    return STEPS.get(step) or spelled(step)


def status_label(status: str | None) -> str:
    return STATUSES.get(status or "", spelled(status or ""))


def outcome_label(outcome: str) -> str:
    return OUTCOMES.get(outcome, spelled(outcome))
