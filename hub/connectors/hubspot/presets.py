"""HubSpot's lead pipeline automation as ready-made rules (behaviours 1-6 of its lead settings, and
a deal won -> HubSpot task). The lead behaviours declare `per="lead_pipelines"`: the hub's lead
automation page offers them for each lead pipeline, with the `fills` the admin gives there, and
writes each as an ordinary rule. Behaviour 5 (a lead a person moved back is never advanced again)
needs no rule: the core keeps auto-advance per lead from the `moved_by`/`direction` extras of
`lead.stage_changed`, and skips `hubspot.lead_stage` (an advancing step) for such a lead.

Rule shapes follow hub/connectors/contract/triggers.py (Preset); fills' paths the rule API's."""
from __future__ import annotations

from ..contract.triggers import Fill, Preset

PIPELINES = "lead_pipelines"
STAGES = "lead_pipelines.stages"               # the stages of the pipeline being configured
# every cause of a lifecycle change but the company's stage syncing down to its contacts
NOT_COMPANY_SYNC = ["person", "automation", "integration", "import", "other"]
OUTREACH = (("email", "E-mail logged"), ("linkedin", "LinkedIn message logged"), ("call", "Call logged"),
            ("meeting", "Meeting booked"))
RESPONSE = (("email", "Contact replied to an e-mail"), ("meeting", "Contact booked a meeting"),
            ("call", "Call logged as connected"))
DAY = 86400


def _advance(key: str, title: str, description: str, direction: str, choices: tuple) -> Preset:
    return Preset(
        key=key, title=title, description=description, per=PIPELINES,
        rule={"name": title,
              "trigger": {"kind": "activity.logged", "params": {"direction": direction}},
              "fires": "every", "conditions": [],
              "steps": [{"kind": "hubspot.lead_stage", "settings": {}, "templates": {}}]},
        fills=(Fill("pipeline_id", "Pipeline", kind="entry"),
               Fill(("stage_id", "steps.0.settings.from_stage_id"), "From stage", catalog=STAGES,
                    help="only leads in this stage move"),
               Fill("steps.0.settings.to_stage_id", "To stage", catalog=STAGES),
               Fill("params.activity", "Which activities count", choices=choices, many=True)))


PRESETS = (
    # 1
    Preset(key="lead-on-lifecycle", per=PIPELINES,
           title="Create a lead when a contact enters a lifecycle stage",
           description="When a contact's lifecycle stage becomes one of the chosen ones (not when the company's "
                       "stage syncs down to it), a lead in this pipeline's first stage, named from the template, "
                       "with the contact as primary contact and the contact's owner as owner.",
           rule={"name": "Lead for new lifecycle stage",
                 "trigger": {"kind": "person.lifecycle_changed", "params": {"cause": NOT_COMPANY_SYNC}},
                 "fires": "every", "conditions": [],
                 "steps": [{"kind": "hubspot.lead", "settings": {},
                            "templates": {"name": "{{ record.title }}"}}]},
           fills=(Fill("steps.0.settings.pipeline_id", "Pipeline", kind="entry"),
                  Fill("params.to_lifecycle", "Lifecycle stages", catalog="lifecycle_stages", many=True),
                  Fill("steps.0.templates.name", "Lead name", kind="template",
                       help="a template: {{ record.title }} (the contact), {{ record.email }} ..."))),
    # 2
    Preset(key="follow-up-lead-on-disqualified", per=PIPELINES,
           title="Create a follow-up lead when a lead is disqualified",
           description="When a lead of this pipeline is disqualified for one of the chosen reasons, a new lead "
                       "for the same contact, in the pipeline and stage you pick, after an optional delay.",
           rule={"name": "Follow-up lead",
                 "trigger": {"kind": "lead.disqualified", "params": {}}, "fires": "every", "conditions": [],
                 "steps": [{"kind": "hubspot.lead", "settings": {},
                            "templates": {"name": "Follow-up: {{ lead.title }}"}}]},
           fills=(Fill("pipeline_id", "Pipeline", kind="entry"),
                  Fill("params.reason", "Disqualification reasons", catalog="disqualification_reasons", many=True),
                  Fill("steps.0.settings.pipeline_id", "Follow-up lead's pipeline", catalog=PIPELINES),
                  Fill("steps.0.settings.stage_id", "Follow-up lead's stage", catalog="lead_stages",
                       required=False, help="empty: the pipeline's first stage"),
                  Fill("steps.0.templates.name", "Follow-up lead's name", kind="template"),
                  Fill("steps.0.delay_seconds", "Create it after", kind="seconds", required=False,
                       help="0: right away"))),
    # 3
    _advance("advance-lead-on-outreach", "Move a lead forward when a user reaches out",
             "When an e-mail, LinkedIn message or call is logged or a meeting booked on a lead in the stage you "
             "pick, the lead moves to the next stage you pick (unless a person moved it back by hand).", "outreach",
             OUTREACH),
    # 4
    _advance("advance-lead-on-response", "Move a lead forward when the lead responds",
             "When the contact replies to an e-mail, books a meeting or a call is logged as connected, the lead "
             "moves from the stage you pick to the next one you pick (unless a person moved it back by hand).",
             "response", RESPONSE),
    # 6
    Preset(key="steps-on-lead-stage", per=PIPELINES,
           title="Steps when a lead enters a stage",
           description="When a lead enters the stage: a HubSpot task now; add more steps in the rule (tasks in any "
                       "connected app, e-mails, waits, branches).",
           rule={"name": "Lead entered a stage",
                 "trigger": {"kind": "lead.stage_changed", "params": {}}, "fires": "every", "conditions": [],
                 "steps": [{"kind": "hubspot.task", "settings": {"priority": "MEDIUM"}, "due_in_days": 1,
                            "templates": {"name": "Follow up: {{ lead.title }}",
                                          "notes": "The lead entered {{ lead.stage }}."}}]},
           fills=(Fill("pipeline_id", "Pipeline", kind="entry"),
                  Fill("stage_id", "When a lead enters", catalog=STAGES),
                  Fill("steps.0.templates.name", "Task subject", kind="template"))),
    # HubSpot deals drive the same rules as Pipedrive deals; its tasks are a task target
    Preset(key="hubspot-task-on-won-deal", title="A HubSpot task when a deal is won",
           description="When a deal is won: a kick-off task in HubSpot, due the next day, associated with the deal.",
           rule={"name": "Kick off won deals", "trigger": {"kind": "deal.won", "params": {}}, "fires": "every",
                 "conditions": [],
                 "steps": [{"kind": "hubspot.task", "settings": {"priority": "HIGH"}, "due_in_days": 1,
                            "templates": {"name": "Kick-off: {{ deal.title }}",
                                          "notes": "Won {{ deal.value }} {{ deal.currency }}."}}]}),
)
