"""Linked tasks' lifecycle, for every CRM and every task target (nothing here names a provider):

mirror.py    each linked task's last known status (CRM task events, the hub's own steps, the check)
events.py    the CRM's task events -> the mirror
check.py     the scheduled check: re-read open linked tasks (`TaskTarget.state`), overdue, gone
closing.py   a deal won or lost, a lead converted or closed: complete its open linked tasks
settings.py  the per-installation switches for closing
board.py     the kanban board: deals by pipeline stage with their tasks' latest status
web.py       the board page, the settings card and the JSON API

Importing the package registers the event subscribers, the job handlers and the schedule."""
from . import check, closing, events  # noqa: F401  (subscribers, job handlers, the schedule)
