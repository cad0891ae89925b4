"""Task templates and what is built on them, for every CRM and every task target:

config.py       task types (Email, Offer ... editable), statuses, the account's time zone, sharing modes,
                next-task rules
sets.py         template sets and their templates (checked whole before storing); post-sale sets
deadlines.py    a delay (working or calendar days, a time of day) -> a deadline in the account's zone
apply.py        making a template's task once per effect key: the rule step `templates`, and the
                `tasks.apply` job (applied by hand, accepted suggestions)
postsale.py     the hub-managed rules that fire a sales process's won / lost set
suggestions.py  next-task suggestions: on `task.completed` (and the hub's own tasks completed), an
                e-mail with a signed single-use accept link and a list in the hub; or made at once
calendar.py     the team task calendar, honouring each task's sharing mode for every viewer
web.py          the settings page sections, the calendar page and the JSON API"""
from . import apply, suggestions  # noqa: F401  (the tasks.apply job, the task.completed subscriber)
