"""Send an e-mail: the step's `to`, `subject` and `body` templates rendered for the record (plain
text), queued in the transaction that records the step as done (hub.mail), so it goes out once."""
from __future__ import annotations

import re
from typing import Any

ADDRESS = re.compile(r"[^\s@<>,;\"']+@[^\s@<>,;\"']+\.[^\s@<>,;\"']+")
MAX_RECIPIENTS = 10


def recipients(text: str) -> list[str]:
    found: list[str] = []
    for part in re.split(r"[,;\s]+", text or ""):
        part = part.strip().strip("<>")
        if part and ADDRESS.fullmatch(part) and part.lower() not in {f.lower() for f in found}:
            found.append(part)
    return found[:MAX_RECIPIENTS]


def run(ex: Any, step: Any, state: Any) -> None:
    from ..runner import RunFailed

    record = ex.record()
    texts = ex.renderer.render_texts({slot: step.templates.get(slot, "") for slot in ("to", "subject", "body")},
                                     record, step.carry, step.mappings, event=ex.event(), rule_name=ex.plan.rule_name)
    to = recipients(texts["to"])
    if not to:
        raise RunFailed(f"{step.label}: no e-mail address to send to (the recipients gave "
                        f"“{texts['to'].strip()[:200]}”)")
    subject = " ".join(texts["subject"].split())[:200] or f"Relay Hub: {ex.plan.rule_name}"
    ex.made.append(f"e-mail to {', '.join(to)}")
    ex.save(state, trace_step="rule.email", message=f"{step.label}: e-mail “{subject}” to {', '.join(to)}",
            mails=[(address, subject, texts["body"]) for address in to])
