"""Tasks, for every CRM and every task target (nothing here names a provider).

Linked tasks' lifecycle:
mirror.py    each linked task's last known status (CRM task events, the hub's own steps, the check)
events.py    the CRM's task events -> the mirror
check.py     the scheduled check: re-read open linked tasks (`TaskTarget.state`), overdue, gone
closing.py   a deal won or lost, a lead converted or closed: complete its open linked tasks
settings.py  the per-installation switches for closing
board.py     the kanban board: deals by pipeline stage with their tasks' latest status
web.py       the board page, the settings card and the JSON API

Task templates and what is built on them:
config.py        task types (Email, Offer ... editable), statuses, the account's time zone, sharing
                 modes, next-task rules
sets.py          template sets and their templates (checked whole before storing); post-sale sets
deadlines.py     a delay (working or calendar days, a time of day) -> a deadline in the account's zone
apply.py         making a template's task once per effect key: the rule step `templates`, and the
                 `tasks.apply` job (applied by hand, accepted suggestions)
postsale.py      the hub-managed rules that fire a sales process's won / lost set
suggestions.py   next-task suggestions: on `task.completed` (and the hub's own tasks completed), an
                 e-mail with a signed single-use accept link and a list in the hub; or made at once
calendar.py      the team task calendar, honouring each task's sharing mode for every viewer
templates_web.py the settings page sections, the calendar page and the JSON API of the above

Importing the package registers the event subscribers, the job handlers and the schedule."""
# suggestions before events: its task.completed subscriber reads who completed the task before the
# mirror's hook would suggest to the task's owner
from . import apply, config, suggestions  # noqa: F401,I001  (config: the defaults made at install)
from . import check, closing, events  # noqa: F401  (subscribers, job handlers, schedule)
