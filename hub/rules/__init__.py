"""Automation rules: a CRM event (deal won, lost, moved to a stage; lead added) becomes an Asana
task or project, once, with the data the rule carries.

triggers.py  trigger kinds and conditions (what matches)      actions.py   action kinds (what is done)
presets.py   the four ready automations                        service.py   create/validate/save/preview
engine.py    event subscriber + the `rule.execute` job         sources.py   reading the CRM record
connections.py  API clients and cached dropdown catalogs       web.py       settings pages and JSON API

Importing the package registers the event subscriber and the job handler."""
from . import engine  # noqa: F401  (registers hub.events subscriber and the rule.execute handler)
