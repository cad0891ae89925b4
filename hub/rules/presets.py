"""The four ready automations. Each makes a draft rule, prefilled, that the admin edits (any field,
the trigger included) and activates."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    key: str
    title: str
    summary: str
    trigger: str
    name_template: str
    description_template: str
    carry: dict[str, bool] = field(default_factory=dict)
    action: str = "asana.task"

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "summary": self.summary, "trigger": self.trigger,
                "action": self.action}


PRESETS: dict[str, Preset] = {p.key: p for p in (
    Preset("stage_tasks", "Add tasks when deals move to a stage",
           "When a deal reaches a chosen stage, a task with the deal's details appears in Asana.",
           "deal.stage_changed",
           "{{ deal.title }}: {{ deal.stage or 'next step' }}",
           "{{ deal.title }} moved to {{ deal.stage or 'a new stage' }}"
           "{% if deal.owner %} (owner: {{ deal.owner }}){% endif %}.",
           {"value": True, "contacts": True, "notes": False, "attachments": False}),
    Preset("won_handoff", "Hand off won deals",
           "When a deal is won, the delivery team gets a task with the value, contacts, pinned notes and files.",
           "deal.won",
           "Onboard {{ deal.title }}",
           "{{ deal.title }} was won{% if deal.owner %} by {{ deal.owner }}{% endif %}. "
           "Please start the onboarding{% if person %} with {{ person.name }}{% endif %}.",
           {"value": True, "contacts": True, "notes": True, "attachments": True}),
    Preset("lost_followup", "Handle lost deals",
           "When a deal is lost, a follow-up task records why and reminds someone to check back later.",
           "deal.lost",
           "Follow up on lost deal: {{ deal.title }}",
           "{{ deal.title }} was lost{% if deal.lost_reason %} ({{ deal.lost_reason }}){% endif %}. "
           "Check back in a few months.",
           {"value": True, "contacts": True, "notes": True, "attachments": False}),
    Preset("lead_nurture", "Nurture new leads",
           "When a lead is added, a task makes sure someone contacts it quickly.",
           "lead.added",
           "Contact new lead: {{ lead.title }}",
           "A new lead arrived{% if lead.owner %} for {{ lead.owner }}{% endif %}. Reach out within a day.",
           {"value": True, "contacts": True, "notes": False, "attachments": False}),
)}
