"""Asana emits no events the rules start from; it ships the four ready-made automations that put
CRM events into Asana (they need a connected CRM). Each is a draft rule in the rule API's shape
(contract.triggers.Preset); the workspace, project and pipeline are left for the admin to pick."""
from __future__ import annotations

from typing import Any

from ..contract.triggers import Preset


def _rule(name: str, kind: str, fires: str, task_name: str, notes: str, carry: dict[str, bool]) -> dict[str, Any]:
    return {"name": name, "trigger": {"kind": kind, "params": {}}, "fires": fires, "conditions": [],
            "steps": [{"kind": "asana.task", "settings": {}, "templates": {"name": task_name, "notes": notes},
                       "carry": dict(carry)}]}


PRESETS: tuple[Preset, ...] = (
    Preset("stage_tasks", "Add tasks when deals move to a stage",
           "When a deal reaches a chosen stage, a task with the deal's details appears in Asana.",
           _rule("Add tasks when deals move to a stage", "deal.stage_changed", "once",
                 "{{ deal.title }}: {{ deal.stage or 'next step' }}",
                 "{{ deal.title }} moved to {{ deal.stage or 'a new stage' }}"
                 "{% if deal.owner %} (owner: {{ deal.owner }}){% endif %}.",
                 {"value": True, "contacts": True, "notes": False, "attachments": False}), needs=("crm",)),
    Preset("won_handoff", "Hand off won deals",
           "When a deal is won, the delivery team gets a task with the value, contacts, pinned notes and files.",
           _rule("Hand off won deals", "deal.won", "every",
                 "Onboard {{ deal.title }}",
                 "{{ deal.title }} was won{% if deal.owner %} by {{ deal.owner }}{% endif %}. "
                 "Please start the onboarding{% if person %} with {{ person.name }}{% endif %}.",
                 {"value": True, "contacts": True, "notes": True, "attachments": True}), needs=("crm",)),
    Preset("lost_followup", "Handle lost deals",
           "When a deal is lost, a follow-up task records why and reminds someone to check back later.",
           _rule("Handle lost deals", "deal.lost", "every",
                 "Follow up on lost deal: {{ deal.title }}",
                 "{{ deal.title }} was lost{% if deal.lost_reason %} ({{ deal.lost_reason }}){% endif %}. "
                 "Check back in a few months.",
                 {"value": True, "contacts": True, "notes": True, "attachments": False}), needs=("crm",)),
    Preset("lead_nurture", "Nurture new leads",
           "When a lead is added, a task makes sure someone contacts it quickly.",
           _rule("Nurture new leads", "lead.added", "once",
                 "Contact new lead: {{ lead.title }}",
                 "A new lead arrived{% if lead.owner %} for {{ lead.owner }}{% endif %}. Reach out within a day.",
                 {"value": True, "contacts": True, "notes": False, "attachments": False}), needs=("crm",)),
)
