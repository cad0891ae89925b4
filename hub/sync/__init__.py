"""Two-way contact sync: CRM persons <-> one label of an address book (a `ContactSource` and a
`ContactStore`, picked by role from the connectors: sides.py).

`engine.SyncEngine` does one run (a `sync.run` job); `jobs` starts runs (schedule, events, "Sync
now"); `service` creates and changes syncs for the pages, the API and the CLI; `web` is the
settings page and the JSON API. Importing the package registers the job handlers, the schedule
source and the person-event subscriber."""
from . import jobs  # noqa: F401  (registers handlers, schedules and the event subscriber)
