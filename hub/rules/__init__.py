"""Automation rules: a CRM event (any kind a connected CRM emits) that matches a rule's trigger and
conditions runs the rule's ordered steps, each exactly once.

engine.py      event subscriber: match rules, a run and a job per match; effect keys
runner.py      the `rule.execute` job: a run's steps in order, waits, outcomes
steps/         how each step kind runs (a connector's step, complete linked, e-mail, wait, branch)
kinds.py       the step kinds (from the connectors' targets, and the core's)
triggers.py    the triggers (from the connectors) and how a rule matches an event
conditions.py  conditions on an object's fields
records.py     the CRM's records, through its connector's source
catalogs.py    the one cache of dropdown data          connections.py  accounts and API clients
validation.py  what a rule must be                     service.py      create/save/preview/runs
editor.py      the editor's form and step buttons      web.py          settings pages and JSON API

Nothing here names a provider: connectors give triggers, step kinds, records, catalogs and
presets through their `CONNECTOR` (hub/connectors/contract). Importing the package registers the
event subscriber and the job handler."""
from . import engine, runner  # noqa: F401  (registers hub.events subscriber and the rule.execute handler)
